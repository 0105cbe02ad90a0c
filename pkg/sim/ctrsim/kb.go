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
	// Quirks, fixed per module.
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
	verdict    []byte // nil for a sightings-only entry
	judgements [][]byte
	sightings  [][]byte
	// indicators and relationships link judgements to CTIM indicators.
	indicators    [][]byte
	relationships [][]byte
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
	s.kbMu.Lock()
	defer s.kbMu.Unlock()
	s.addContext(obs, mods)
}

// SetContext replaces all the knowledge base holds about obs with what
// mods know: CTR changing its mind, as it does when the sources behind
// its modules re-assess an observable. With no mods, CTR forgets obs.
func (s *Server) SetContext(obs Observable, mods ...ModuleContext) {
	s.kbMu.Lock()
	defer s.kbMu.Unlock()
	delete(s.kb, keyOf(obs))
	s.addContext(obs, mods)
}

// addContext is AddContext with kbMu held.
func (s *Server) addContext(obs Observable, mods []ModuleContext) {
	k := keyOf(obs)
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
	idx := len(s.modules)
	m := &module{name: mc.Module, instanceID: inst, typeID: typ}
	for _, t := range mc.Handles {
		if m.handles == nil {
			m.handles = map[string]bool{}
		}
		m.handles[t] = true
	}
	// Quirks go by registration order, so that any three modules show
	// every timestamp precision.
	m.timeFormat = []string{"2006-01-02T15:04:05.000Z", "2006-01-02T15:04:05Z", "2006-01-02T15:04:05.000000Z"}[idx%3]
	m.floatCount = idx%4 == 1
	m.relay = typ == relayTypeID || idx%3 == 2
	if idx%2 == 0 {
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

type validTime struct {
	Start string `json:"start_time"`
	End   string `json:"end_time,omitempty"`
}

type judgementDoc struct {
	Type            string          `json:"type"`
	ID              string          `json:"id"`
	SchemaVersion   string          `json:"schema_version"`
	Observable      json.RawMessage `json:"observable"`
	Disposition     int             `json:"disposition"`
	DispositionName string          `json:"disposition_name"`
	Priority        int             `json:"priority"`
	Confidence      string          `json:"confidence"`
	Severity        string          `json:"severity"`
	Source          string          `json:"source"`
	SourceURI       string          `json:"source_uri,omitempty"`
	Reason          string          `json:"reason,omitempty"`
	TLP             string          `json:"tlp"`
	ValidTime       validTime       `json:"valid_time"`
}

type relationDoc struct {
	Origin    string          `json:"origin"`
	OriginURI string          `json:"origin_uri,omitempty"`
	Relation  string          `json:"relation"`
	Source    json.RawMessage `json:"source"`
	Related   json.RawMessage `json:"related"`
}

type sightingDoc struct {
	Type          string            `json:"type"`
	ID            string            `json:"id"`
	SchemaVersion string            `json:"schema_version"`
	Count         int               `json:"count"`
	Confidence    string            `json:"confidence"`
	Internal      bool              `json:"internal"`
	Observables   []json.RawMessage `json:"observables"`
	ObservedTime  validTime         `json:"observed_time"`
	Description   string            `json:"description,omitempty"`
	Source        string            `json:"source,omitempty"`
	SourceURI     string            `json:"source_uri,omitempty"`
	Relations     []relationDoc     `json:"relations,omitempty"`
}

type indicatorDoc struct {
	Type          string `json:"type"`
	ID            string `json:"id"`
	SchemaVersion string `json:"schema_version"`
	Title         string `json:"title"`
	Producer      string `json:"producer"`
	Source        string `json:"source"`
}

type relationshipDoc struct {
	Type             string `json:"type"`
	ID               string `json:"id"`
	SchemaVersion    string `json:"schema_version"`
	RelationshipType string `json:"relationship_type"`
	SourceRef        string `json:"source_ref"`
	TargetRef        string `json:"target_ref"`
	Source           string `json:"source"`
}

type verdictDoc struct {
	Type            string          `json:"type"`
	Disposition     int             `json:"disposition"`
	DispositionName string          `json:"disposition_name,omitempty"`
	Observable      json.RawMessage `json:"observable"`
	JudgementID     string          `json:"judgement_id,omitempty"`
	ValidTime       validTime       `json:"valid_time"`
}

// render precomputes the documents of e.
func (s *Server) render(e *entry, obs Observable) {
	m := s.modules[e.mod]
	ts := func(t time.Time) string { return t.UTC().Format(m.timeFormat) }
	obsJSON, _ := json.Marshal(obs)
	e.judgements, e.sightings = e.judgements[:0], e.sightings[:0]
	e.indicators, e.relationships = e.indicators[:0], e.relationships[:0]
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
		isWin := mc.Disposition != 0 && (win < 0 || prio > winPrio || betterDisp)
		var id string
		if j := mc.Judgement; j != nil && mc.Disposition != 0 {
			jdisp := mc.Disposition
			if j.Disposition != 0 {
				jdisp = j.Disposition
			}
			u := uuidOf("judgement", m.instanceID, obs.Type, obs.Value, strconv.Itoa(i))
			tlp := "amber"
			if m.relay {
				id, tlp = "transient:judgement-"+u, "white"
			} else {
				id = "https://private.intel.amp.cisco.com:443/ctia/judgement/judgement-" + u
			}
			b, _ := json.Marshal(judgementDoc{
				Type: "judgement", ID: id, SchemaVersion: "1.3.28", Observable: obsJSON,
				Disposition: jdisp, DispositionName: dispositionNames[jdisp],
				Priority: j.Priority, Confidence: j.Confidence, Severity: j.Severity,
				Source: j.Source, SourceURI: j.SourceURI, Reason: j.Reason, TLP: tlp,
				ValidTime: validTime{ts(from), ts(until)},
			})
			e.judgements = append(e.judgements, b)
			if j.Indicator != "" {
				ind := "https://intel.amp.cisco.com:443/ctia/indicator/indicator-" + uuidOf("indicator", m.instanceID, j.Indicator)
				b, _ := json.Marshal(indicatorDoc{Type: "indicator", ID: ind, SchemaVersion: "1.3.28",
					Title: j.Indicator, Producer: j.Source, Source: j.Source})
				e.indicators = append(e.indicators, b)
				b, _ = json.Marshal(relationshipDoc{Type: "relationship", SchemaVersion: "1.3.28",
					ID:               "https://intel.amp.cisco.com:443/ctia/relationship/relationship-" + uuidOf("relationship", id, ind),
					RelationshipType: "element-of", SourceRef: id, TargetRef: ind, Source: j.Source})
				e.relationships = append(e.relationships, b)
			}
		}
		if isWin {
			win, winPrio, winID, winFrom, winUntil = i, prio, id, from, until
		}
		if sg := mc.Sighting; sg != nil {
			doc := sightingDoc{
				Type: "sighting", SchemaVersion: "1.3.28", Count: 1, Confidence: "High",
				ID:          "transient:sighting-" + uuidOf("sighting", m.instanceID, obs.Type, obs.Value, strconv.Itoa(i)),
				Observables: []json.RawMessage{obsJSON}, ObservedTime: validTime{Start: ts(from)},
				Description: sg.Description, Source: sg.Source, SourceURI: sg.SourceURI,
			}
			if sg.Origin != "" {
				doc.Relations = []relationDoc{{
					Origin: sg.Origin, OriginURI: sg.SourceURI, Relation: "Resolved_To",
					Source: obsJSON, Related: obsJSON,
				}}
			}
			b, _ := json.Marshal(doc)
			e.sightings = append(e.sightings, b)
		}
	}
	if win < 0 { // Sightings only: no verdict.
		e.verdict = nil
		return
	}
	mc := e.ctxs[win]
	v := verdictDoc{
		Type: "verdict", Disposition: mc.Disposition, Observable: obsJSON,
		ValidTime: validTime{ts(winFrom), ts(winUntil)},
	}
	if m.typeID == "6f24c0f4-3ca7-4b38-af8b-7dbfaef3ab96" { // AMP File Reputation: never expires.
		v.ValidTime.End = ts(never)
	}
	q := hash64(m.instanceID, obs.Type, obs.Value)
	if q%3 != 0 { // disposition_name is optional; some answers leave it out.
		v.DispositionName = dispositionNames[mc.Disposition]
	}
	if winID != "" && !m.relay && q>>8%4 != 0 { // judgement_id is sometimes missing.
		v.JudgementID = winID
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
			errs = append(errs, moduleError(m, mi))
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
		writeCollection(&b, m, es, func(e *entry) [][]byte {
			if e.verdict == nil {
				return nil
			}
			return [][]byte{e.verdict}
		})
		if observe {
			for _, c := range []struct {
				name string
				docs func(*entry) [][]byte
			}{
				{"indicators", func(e *entry) [][]byte { return e.indicators }},
				{"relationships", func(e *entry) [][]byte { return e.relationships }},
			} {
				if countDocs(es, c.docs) > 0 {
					b.WriteString(`,"` + c.name + `":`)
					writeCollection(&b, m, es, c.docs)
				}
			}
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
//
// Modules alternate between the two errors the relay modules' tests
// show: AbuseIPDB's upstream rate limit and Pulsedive's request timeout.
func moduleError(m *module, idx int) []byte {
	code, msg := "too many requests", "Daily rate limit of 1000 requests exceeded for this endpoint. See headers for additional details."
	if idx%2 == 1 {
		code, msg = "request timeout", "Request(s) still processing."
	}
	b, _ := json.Marshal(map[string]string{
		"module":             m.name,
		"module_instance_id": m.instanceID,
		"module_type_id":     m.typeID,
		"type":               "fatal",
		"code":               code,
		"message":            msg,
	})
	return b
}
