package mispsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/sim"
)

// addAttributes is AttributesController::add.
func (s *Server) addAttributes(w http.ResponseWriter, r *http.Request, body []byte) {
	const url = "/attributes/add"
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.findEvent(r.PathValue("event"))
	if e == nil {
		writeException(w, http.StatusNotFound, "Invalid event", r.URL.Path)
		return
	}
	items, err := parseAttributes(body)
	if err != nil {
		writeException(w, http.StatusMethodNotAllowed, msgInvalidJSON, r.URL.Path)
		return
	}
	if e.org != s.orgs[0] {
		// __canModifyEvent: not the user's organisation.
		writeException(w, http.StatusForbidden, "You do not have permission to do that.", r.URL.Path)
		return
	}
	n := len(items)
	timeout := s.opts.TimeoutAfter > 0 && n > s.opts.TimeoutAfter
	var rest []inAttr
	if timeout {
		items, rest = items[:s.opts.TimeoutAfter], items[s.opts.TimeoutAfter:]
	}
	var saved []*attribute
	errs := map[string]any{}
	var single map[string][]string
	for i, in := range items {
		if s.pending[strings.ToLower(strings.TrimSpace(in.UUID))] {
			// The row passed validation but its INSERT hits the uuid
			// UNIQUE KEY a still-running worker has just filled: PDO
			// throws, PHP answers 500 and the rest of the batch is lost.
			s.touch(e, saved)
			writeHTML(w, http.StatusInternalServerError, "Internal Error",
				"SQLSTATE[23000]: Integrity constraint violation: 1062 Duplicate entry for key 'uuid'")
			return
		}
		a, fails := s.capture(e, in)
		if a != nil {
			saved = append(saved, a)
			continue
		}
		errs["attribute_"+itoaInt(i)] = fails
		single = fails
	}
	s.touch(e, saved)
	if timeout {
		if s.opts.KeepSaving > 0 {
			s.keepSaving(e, rest)
		}
		writeHTML(w, http.StatusGatewayTimeout, "504 Gateway Time-out", "Maximum execution time of 300 seconds exceeded")
		return
	}
	switch {
	case len(saved) == 0 && n == 1:
		writeValidation(w, "Attribute", url, single)
	case len(saved) == 0:
		writeValidation(w, "Attribute", url, errs)
	case len(saved) == 1:
		out := map[string]any{"Attribute": saved[0].wire(false), "AttributeTag": attributeTags(saved[0])}
		if len(errs) > 0 {
			out["errors"] = errs
		}
		writeJSON(w, http.StatusOK, out)
	default:
		list := make([]wireAttr, len(saved))
		for i, a := range saved {
			list[i] = a.wire(true)
		}
		out := map[string]any{"Attribute": list}
		if len(errs) > 0 {
			out["errors"] = errs
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// touch unpublishes an event that got attributes. Callers hold mu.
func (s *Server) touch(e *event, saved []*attribute) {
	if len(saved) > 0 {
		e.published = false
		e.timestamp = s.nowUnix()
	}
}

// keepSaving is the PHP worker going on after the proxy's 504: it saves
// rest one by one over KeepSaving. Their UUIDs are pending meanwhile.
// Callers hold mu.
func (s *Server) keepSaving(e *event, rest []inAttr) {
	var mine []string
	for _, in := range rest {
		u := strings.ToLower(strings.TrimSpace(in.UUID))
		if u != "" && !s.attrUUIDs[u] && !s.pending[u] {
			s.pending[u] = true
			mine = append(mine, u)
		}
	}
	step := s.opts.KeepSaving / time.Duration(len(rest)+1)
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		for _, in := range rest {
			time.Sleep(step)
			s.mu.Lock()
			delete(s.pending, strings.ToLower(strings.TrimSpace(in.UUID)))
			if a, _ := s.capture(e, in); a != nil {
				s.touch(e, []*attribute{a})
			}
			s.mu.Unlock()
		}
		s.mu.Lock()
		for _, u := range mine {
			delete(s.pending, u)
		}
		s.mu.Unlock()
	}()
}

func itoaInt(i int) string { return itoa(int64(i)) }

func attributeTags(a *attribute) []map[string]string {
	out := make([]map[string]string, 0, len(a.tags))
	for _, t := range a.tags {
		out = append(out, map[string]string{"attribute_id": itoa(a.id), "event_id": itoa(a.eventID), "tag_id": itoa(t.id)})
	}
	return out
}

// parseAttributes reads the three body shapes: one object ({…} or
// {"Attribute":{…}}), an array ([…] or {"Attribute":[…]}), and a template
// whose value is a list (or, with batch_import, newline-separated values).
func parseAttributes(body []byte) ([]inAttr, error) {
	raw := unwrap(bytes.TrimSpace(body), "Attribute")
	if len(raw) == 0 {
		return nil, errors.New("empty body")
	}
	var list []json.RawMessage
	if raw[0] == '[' {
		if err := decodeBody(raw, &list); err != nil {
			return nil, err
		}
	} else {
		list = []json.RawMessage{raw}
	}
	var out []inAttr
	for _, item := range list {
		var in inAttr
		if err := decodeBody(item, &in); err != nil {
			return nil, err
		}
		out = append(out, expand(in)...)
	}
	if len(out) == 0 {
		return nil, errors.New("no attributes")
	}
	return out, nil
}

// expand turns a template with several values into one attribute per
// value, all sharing the other fields.
func expand(in inAttr) []inAttr {
	v := bytes.TrimSpace(in.Value)
	if len(v) > 0 && v[0] == '[' {
		var vals []lenientString
		if json.Unmarshal(v, &vals) == nil {
			out := make([]inAttr, 0, len(vals))
			for _, val := range vals {
				one := in
				one.Value, _ = json.Marshal(string(val))
				one.UUID = ""
				out = append(out, one)
			}
			return out
		}
	}
	if in.BatchImport {
		var s lenientString
		if json.Unmarshal(v, &s) == nil && strings.Contains(string(s), "\n") {
			var out []inAttr
			for _, line := range strings.Split(string(s), "\n") {
				one := in
				one.Value, _ = json.Marshal(line)
				one.UUID = ""
				out = append(out, one)
			}
			return out
		}
	}
	return []inAttr{in}
}

// capture is MispAttribute::captureAttribute for one attribute: it
// validates, and saves when valid. It returns the saved attribute, or the
// validation errors (field → messages). Callers hold mu.
func (s *Server) capture(e *event, in inAttr) (*attribute, map[string][]string) {
	errs := map[string][]string{}
	typ := in.Type
	switch {
	case typ == "":
		errs["type"] = []string{"No type set."}
		return nil, errs
	case !s.types.hasType(typ):
		errs["type"] = []string{"Invalid type."}
		return nil, errs
	}
	category := in.Category
	if category == "" {
		category, _ = s.types.defaults(typ)
	}
	switch {
	case !s.types.hasCategory(category):
		errs["category"] = []string{"Options : Payload delivery, Antivirus detection, Payload installation, Files dropped ..."}
	case !s.types.allowed(typ, category):
		errs["type"] = []string{"Options depend on the selected category."}
	}
	var raw lenientString
	if len(in.Value) > 0 {
		_ = json.Unmarshal(in.Value, &raw)
	}
	value := massage(typ, string(raw))
	if msg := checkValue(typ, value, composite(typ)); msg != "" {
		errs["value"] = []string{msg}
	}
	// findAttributeByValue: same event, type, category and value1 under
	// value1's utf8mb3_unicode_ci collation (case and accents ignored).
	key := typ + "|" + category + "|" + foldKey(value)
	if errs["value"] == nil && e.keys[key] {
		errs["value"] = []string{"A similar attribute already exists for this event."}
	}
	uuid := strings.ToLower(strings.TrimSpace(in.UUID))
	switch {
	case uuid == "":
	case !cakeUUID.MatchString(uuid):
		errs["uuid"] = []string{"Please provide a valid RFC 4122 UUID"}
	case s.attrUUIDs[uuid]:
		errs["uuid"] = []string{"The UUID provided is not unique"}
	}
	dist := string(in.Distribution)
	if dist == "" {
		dist = "5"
	}
	if !inList(dist, "0", "1", "2", "3", "4", "5") {
		errs["distribution"] = []string{"Options: Your organisation only, This community only, Connected communities, All communities, Sharing group, Inherit event"}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	_, toIDs := s.types.defaults(typ)
	if in.ToIDs != nil {
		toIDs = bool(*in.ToIDs)
	}
	if uuid == "" {
		uuid = s.uuid4()
	}
	s.nextAttrID++
	a := &attribute{
		id: s.nextAttrID, eventID: e.id, uuid: uuid, typ: typ, category: category, value: value,
		comment: in.Comment, distribution: dist, toIDs: toIDs, noCorrelate: bool(in.DisableCorrelation),
		timestamp: s.nowUnix(), firstSeen: in.FirstSeen, lastSeen: in.LastSeen, tags: s.tagList(in.Tag),
	}
	e.attrs = append(e.attrs, a)
	e.keys[key] = true
	s.attrUUIDs[uuid] = true
	s.Ledger.Record(sim.Entry{System: "misp", Op: "attribute.add", Object: "event/" + e.uuid, Name: typ, Value: value})
	return a, nil
}
