package ctrsim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"
)

// relayTypeID is the module_type_id of custom relay modules.
const relayTypeID = "a14ae422-01b6-5013-9876-695ff1b0ebe0"

// module is one enabled module of the simulated org.
type module struct {
	name, instanceID, typeID string
	handles                  map[string]bool
	header                   []byte // {"module":…,"module_instance_id":…,"module_type_id":…,"data":
	// Quirks, fixed per module from its instance id.
	timeFormat string // timestamp precision: milliseconds, seconds or microseconds
	floatCount bool   // counts written as 2.0
	relay      bool   // verdicts without judgement_id, transient judgement ids
	emptyData  []byte // what it answers with no documents: {} or empty verdicts
}

// entry is one module's precomputed answer fragments for one observable.
type entry struct {
	mod        int
	typ        string
	ctxs       []ModuleContext
	added      []time.Time
	verdict    []byte
	judgements [][]byte
	sightings  [][]byte
}

// hash64 hashes parts into a uint64, for deterministic quirks and ids.
func hash64(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

// uuidOf returns a version-4-shaped UUID derived from parts.
func uuidOf(parts ...string) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hash64(append(parts, "hi")...))
	binary.BigEndian.PutUint64(b[8:], hash64(append(parts, "lo")...))
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// AddContext adds to the knowledge base what modules know about obs. An
// observable type outside the enum is accepted here but can never be
// asked. Values of hashes, domains, hostnames, e-mail, IPv6 and MAC
// addresses match regardless of case; answers carry the value as given
// here, which may differ in case from the one asked.
func (s *Server) AddContext(obs Observable, mods ...ModuleContext) {
	k := keyOf(obs)
	s.kbMu.Lock()
	defer s.kbMu.Unlock()
	now := s.now()
	for _, mc := range mods {
		mi := s.moduleFor(mc)
		var e *entry
		for _, x := range s.kb[k] {
			if x.mod == mi {
				e = x
			}
		}
		if e == nil {
			e = &entry{mod: mi, typ: obs.Type}
			s.kb[k] = append(s.kb[k], e)
		}
		e.ctxs = append(e.ctxs, mc)
		e.added = append(e.added, now)
		s.render(e, obs)
	}
}

// moduleFor finds or registers the module of mc.
func (s *Server) moduleFor(mc ModuleContext) int {
	inst := mc.InstanceID
	if inst == "" {
		inst = uuidOf("instance", mc.Module)
	}
	if i, ok := s.byInst[inst]; ok {
		m := s.modules[i]
		for _, t := range mc.Handles {
			if m.handles == nil {
				m.handles = map[string]bool{}
			}
			m.handles[t] = true
		}
		return i
	}
	typ := mc.TypeID
	if typ == "" {
		typ = uuidOf("type", mc.Module)
	}
	h := hash64(inst)
	m := &module{name: mc.Module, instanceID: inst, typeID: typ}
	for _, t := range mc.Handles {
		if m.handles == nil {
			m.handles = map[string]bool{}
		}
		m.handles[t] = true
	}
	m.timeFormat = []string{"2006-01-02T15:04:05.000Z", "2006-01-02T15:04:05Z", "2006-01-02T15:04:05.000000Z"}[h%3]
	m.floatCount = h>>8%4 == 0
	m.relay = typ == relayTypeID || h>>16%3 == 0
	if h>>24%2 == 0 {
		m.emptyData = []byte(`{}`)
	} else {
		m.emptyData = []byte(`{"verdicts":{"count":0,"docs":[]}}`)
	}
	var hb bytes.Buffer
	hb.WriteString(`{"module":`)
	hb.Write(jsonString(m.name))
	hb.WriteString(`,"module_instance_id":`)
	hb.Write(jsonString(m.instanceID))
	hb.WriteString(`,"module_type_id":`)
	hb.Write(jsonString(m.typeID))
	hb.WriteString(`,"data":`)
	m.header = hb.Bytes()
	s.modules = append(s.modules, m)
	s.byInst[inst] = len(s.modules) - 1
	return len(s.modules) - 1
}

var dispositionNames = map[int]string{1: "Clean", 2: "Malicious", 3: "Suspicious", 4: "Common", 5: "Unknown"}

// never is CTIM's "does not expire" end time.
var never = time.Date(2525, 1, 1, 0, 0, 0, 0, time.UTC)

// render precomputes the documents of e.
func (s *Server) render(e *entry, obs Observable) {
	m := s.modules[e.mod]
	ts := func(t time.Time) string { return t.UTC().Format(m.timeFormat) }
	obsJSON, _ := json.Marshal(obs)
	e.judgements, e.sightings = e.judgements[:0], e.sightings[:0]
	win, winPrio := -1, -1
	var winID string
	var winFrom, winUntil time.Time
	for i, mc := range e.ctxs {
		from, until := e.added[i], e.added[i].Add(30*24*time.Hour)
		if j := mc.Judgement; j != nil {
			if !j.ValidFrom.IsZero() {
				from = j.ValidFrom
			}
			if !j.ValidUntil.IsZero() {
				until = j.ValidUntil
			}
		}
		prio := -1
		if mc.Judgement != nil {
			prio = mc.Judgement.Priority
		}
		betterDisp := win >= 0 && prio == winPrio && mc.Disposition < e.ctxs[win].Disposition
		isWin := win < 0 || prio > winPrio || betterDisp
		var id string
		if j := mc.Judgement; j != nil {
			u := uuidOf("judgement", m.instanceID, obs.Type, obs.Value, strconv.Itoa(i))
			if m.relay {
				id = "transient:judgement-" + u
			} else {
				id = "https://private.intel.amp.cisco.com:443/ctia/judgement/judgement-" + u
			}
			doc := map[string]any{
				"type":             "judgement",
				"id":               id,
				"schema_version":   "1.3.28",
				"observable":       json.RawMessage(obsJSON),
				"disposition":      mc.Disposition,
				"disposition_name": dispositionNames[mc.Disposition],
				"priority":         j.Priority,
				"confidence":       j.Confidence,
				"severity":         j.Severity,
				"source":           j.Source,
				"tlp":              "amber",
				"valid_time":       map[string]string{"start_time": ts(from), "end_time": ts(until)},
			}
			if m.relay {
				doc["tlp"] = "white"
			}
			if j.Reason != "" {
				doc["reason"] = j.Reason
			}
			if j.SourceURI != "" {
				doc["source_uri"] = j.SourceURI
			}
			b, _ := json.Marshal(doc)
			e.judgements = append(e.judgements, b)
		}
		if isWin {
			win, winPrio, winID, winFrom, winUntil = i, prio, id, from, until
		}
		if sg := mc.Sighting; sg != nil {
			doc := map[string]any{
				"type":           "sighting",
				"id":             "transient:sighting-" + uuidOf("sighting", m.instanceID, obs.Type, obs.Value, strconv.Itoa(i)),
				"schema_version": "1.3.28",
				"count":          1,
				"confidence":     "High",
				"internal":       false,
				"observables":    []json.RawMessage{obsJSON},
				"observed_time":  map[string]string{"start_time": ts(from)},
			}
			if sg.Description != "" {
				doc["description"] = sg.Description
			}
			if sg.Source != "" {
				doc["source"] = sg.Source
			}
			if sg.SourceURI != "" {
				doc["source_uri"] = sg.SourceURI
			}
			if sg.Origin != "" {
				rel := map[string]any{
					"origin": sg.Origin, "relation": "Resolved_To",
					"source": json.RawMessage(obsJSON), "related": json.RawMessage(obsJSON),
				}
				if sg.SourceURI != "" {
					rel["origin_uri"] = sg.SourceURI
				}
				doc["relations"] = []any{rel}
			}
			b, _ := json.Marshal(doc)
			e.sightings = append(e.sightings, b)
		}
	}
	mc := e.ctxs[win]
	v := map[string]any{
		"type":        "verdict",
		"disposition": mc.Disposition,
		"observable":  json.RawMessage(obsJSON),
		"valid_time":  map[string]string{"start_time": ts(winFrom), "end_time": ts(winUntil)},
	}
	if m.typeID == "6f24c0f4-3ca7-4b38-af8b-7dbfaef3ab96" { // AMP File Reputation: never expires.
		v["valid_time"] = map[string]string{"start_time": ts(winFrom), "end_time": ts(never)}
	}
	q := hash64(m.instanceID, obs.Type, obs.Value)
	if q%3 != 0 { // disposition_name is optional; some answers leave it out.
		v["disposition_name"] = dispositionNames[mc.Disposition]
	}
	if winID != "" && !m.relay && q>>8%4 != 0 { // judgement_id is sometimes missing.
		v["judgement_id"] = winID
	}
	e.verdict, _ = json.Marshal(v)
}

// answer builds the enrich envelope for obs: every enabled module (or
// those in mids) in registration order, the documents of all observables
// mixed in each module's collections.
func (s *Server) answer(obs []Observable, mids []string, observe bool) []byte {
	s.kbMu.RLock()
	defer s.kbMu.RUnlock()
	perMod := make([][]*entry, len(s.modules))
	seen := make(map[okey]bool, len(obs))
	for _, o := range obs {
		k := keyOf(o)
		if seen[k] {
			continue
		}
		seen[k] = true
		for _, e := range s.kb[k] {
			m := s.modules[e.mod]
			if m.handles != nil && !m.handles[e.typ] {
				continue
			}
			perMod[e.mod] = append(perMod[e.mod], e)
		}
	}
	var b bytes.Buffer
	var errs [][]byte
	b.WriteString(`{"data":[`)
	first := true
	for mi, m := range s.modules {
		if len(mids) > 0 && !slices.Contains(mids, m.instanceID) {
			continue
		}
		if s.moduleFails() {
			errs = append(errs, moduleError(m))
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(m.header)
		es := perMod[mi]
		if len(es) == 0 {
			b.Write(m.emptyData)
			b.WriteByte('}')
			continue
		}
		b.WriteString(`{"verdicts":`)
		writeCollection(&b, m, es, func(e *entry) [][]byte { return [][]byte{e.verdict} })
		if observe {
			if n := countDocs(es, func(e *entry) [][]byte { return e.judgements }); n > 0 {
				b.WriteString(`,"judgements":`)
				writeCollection(&b, m, es, func(e *entry) [][]byte { return e.judgements })
			}
			if n := countDocs(es, func(e *entry) [][]byte { return e.sightings }); n > 0 {
				b.WriteString(`,"sightings":`)
				writeCollection(&b, m, es, func(e *entry) [][]byte { return e.sightings })
			}
		}
		b.WriteString(`}}`)
	}
	b.WriteString(`],"errors":[`)
	b.Write(bytes.Join(errs, []byte{','}))
	b.WriteString(`]}`)
	return b.Bytes()
}

func countDocs(es []*entry, docs func(*entry) [][]byte) int {
	n := 0
	for _, e := range es {
		n += len(docs(e))
	}
	return n
}

func writeCollection(b *bytes.Buffer, m *module, es []*entry, docs func(*entry) [][]byte) {
	n := countDocs(es, docs)
	b.WriteString(`{"count":`)
	b.WriteString(strconv.Itoa(n))
	if m.floatCount {
		b.WriteString(".0")
	}
	b.WriteString(`,"docs":[`)
	first := true
	for _, e := range es {
		for _, d := range docs(e) {
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.Write(d)
		}
	}
	b.WriteString(`]}`)
}

// moduleError is the per-module error a relay reports when its upstream
// rate-limits it; IROH adds the module's identity.
func moduleError(m *module) []byte {
	b, _ := json.Marshal(map[string]string{
		"module":             m.name,
		"module_instance_id": m.instanceID,
		"module_type_id":     m.typeID,
		"type":               "fatal",
		"code":               "too many requests",
		"message":            "Daily rate limit of 1000 requests exceeded for this endpoint. See headers for additional details.",
	})
	return b
}
