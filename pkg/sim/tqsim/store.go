package tqsim

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Indicator is an indicator as [Server.Load] takes it and
// [Server.Indicator] returns it.
type Indicator struct {
	// ID is assigned by Load when zero.
	ID    int64
	Value string
	// Type and Status are names; Status defaults to "Active" in Load.
	Type, Status string
	// Score is the generated score (0..10); ManualScore, when set, wins.
	Score       float64
	ManualScore *float64
	Description string
	// CreatedAt, UpdatedAt and TouchedAt default to the load time.
	CreatedAt, UpdatedAt, TouchedAt time.Time
	Attributes                      []Attribute
	Sources                         []string
}

// Attribute is an attribute row. A row holds its own list of sources:
// several feeds can report the same (name, value), and each is listed on
// the one row (shared/contracts/threatq.md, corrections 2).
type Attribute struct {
	// ID is the row id; assigned when zero.
	ID    int64
	Name  string
	Value string
	// Source is the row's first source (Sources[0]); Load takes it as the
	// only source when Sources is empty.
	Source string
	// Sources are every source of the row, in the order they reported it.
	Sources []string
}

// ikey identifies an indicator or a signature: its type and value.
type ikey struct {
	typ   int
	value string
}

// indicator is the stored form: indexes into the reference lists, times in
// Unix seconds, shared source slices.
type indicator struct {
	id                        int64
	value                     string
	typ, status               int
	score                     float64
	manual                    float64
	hasManual                 bool
	desc                      string
	created, updated, touched int64
	attrs                     []attrRow
	sources                   []string
}

type attrRow struct {
	id          int64
	name, value string
	srcs        []string
	created     int64
	updated     int64
}

// rowSources are the sources Load gives a row: a's Sources (kept, not
// copied: a row's list is copied before it grows), else its Source alone,
// else none.
func rowSources(a Attribute) []string {
	if len(a.Sources) > 0 {
		return a.Sources
	}
	if a.Source != "" {
		return []string{a.Source}
	}
	return nil
}

// effectiveScore is the manual score when set, else the generated one.
func (in *indicator) effectiveScore() float64 {
	if in.hasManual {
		return in.manual
	}
	return in.score
}

func unix(t time.Time, def int64) int64 {
	if t.IsZero() {
		return def
	}
	return t.Unix()
}

func fromUnix(u int64) time.Time { return time.Unix(u, 0).UTC() }

// Load adds indicators in bulk, without ledger entries. Ids and attribute
// row ids are assigned where zero. An unknown type or status, a duplicate
// (type, value) or a duplicate id is an error, and nothing is loaded.
func (s *Server) Load(inds []Indicator) error {
	now := s.now().Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	loaded := make([]*indicator, 0, len(inds))
	keys := make(map[ikey]bool, len(inds))
	ids := make(map[int64]bool)
	next := s.nextInd
	for i := range inds {
		in := &inds[i]
		t, ok := s.ref.indTypes.index(in.Type)
		if !ok {
			return fmt.Errorf("load indicator %d: unknown type %q", i, in.Type)
		}
		st := 0
		if in.Status == "" {
			st, _ = s.ref.indStatuses.index("Active")
		} else if st, ok = s.ref.indStatuses.index(in.Status); !ok {
			return fmt.Errorf("load indicator %d: unknown status %q", i, in.Status)
		}
		if strings.TrimSpace(in.Value) == "" {
			return fmt.Errorf("load indicator %d: empty value", i)
		}
		k := ikey{t, in.Value}
		if s.byKey[k] != nil || keys[k] {
			return fmt.Errorf("load indicator %d: duplicate %s %q", i, in.Type, in.Value)
		}
		keys[k] = true
		id := in.ID
		if id == 0 {
			for s.inds[next] != nil || ids[next] {
				next++
			}
			id = next
			next++
		}
		if s.inds[id] != nil || ids[id] {
			return fmt.Errorf("load indicator %d: duplicate id %d", i, id)
		}
		ids[id] = true
		updated := unix(in.UpdatedAt, now)
		d := &indicator{
			id: id, value: in.Value, typ: t, status: st, score: in.Score, desc: in.Description,
			created: unix(in.CreatedAt, updated), updated: updated, touched: unix(in.TouchedAt, updated),
			sources: in.Sources,
		}
		if in.ManualScore != nil {
			d.manual, d.hasManual = *in.ManualScore, true
		}
		if len(in.Attributes) > 0 {
			d.attrs = make([]attrRow, len(in.Attributes))
			for j, a := range in.Attributes {
				d.attrs[j] = attrRow{id: a.ID, name: a.Name, value: a.Value, srcs: rowSources(a), created: d.created, updated: d.created}
			}
		}
		loaded = append(loaded, d)
	}
	rows := s.nextRow
	for _, d := range loaded {
		for j := range d.attrs {
			if d.attrs[j].id == 0 {
				d.attrs[j].id = rows
				rows++
			} else if d.attrs[j].id >= rows {
				rows = d.attrs[j].id + 1
			}
		}
		s.inds[d.id] = d
		s.byKey[ikey{d.typ, d.value}] = d
		if d.id >= next {
			next = d.id + 1
		}
	}
	s.nextRow, s.nextInd = rows, next
	// Generated data comes in updated order, so the next query's sort
	// usually finds the order sorted already and costs one pass.
	s.order = append(s.order, loaded...)
	s.sorted = false
	s.gen++
	return nil
}

// sortLocked sorts s.order by (updated, id); s.mu must be held for
// writing.
func (s *Server) sortLocked() {
	if s.sorted {
		return
	}
	if !slices.IsSortedFunc(s.order, byUpdated) {
		slices.SortFunc(s.order, byUpdated)
	}
	s.sorted, s.inPlace = true, 0
}

func byUpdated(a, b *indicator) int {
	if c := cmp.Compare(a.updated, b.updated); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// Touch sets updated_at (and touched_at) of the indicators ids to at, as
// a change in ThreatQ would, for incremental-run tests. Unknown ids are
// ignored; it returns how many were touched.
func (s *Server) Touch(ids []int64, at time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := at.Unix()
	n := 0
	for _, id := range ids {
		in := s.inds[id]
		if in == nil {
			continue
		}
		n++
		if len(ids) <= maxIncremental {
			s.mutateLocked(in, false, func() { in.updated, in.touched = u, u })
			continue
		}
		in.updated, in.touched = u, u
		s.sorted = false
	}
	if !s.sorted {
		s.gen++
	}
	return n
}

// Len returns the number of indicators.
func (s *Server) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.inds)
}

// Indicator returns the indicator id as stored, and whether it exists.
func (s *Server) Indicator(id int64) (Indicator, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in := s.inds[id]
	if in == nil {
		return Indicator{}, false
	}
	return s.export(in), true
}

// Lookup returns the indicator of a type and value, and whether it exists.
func (s *Server) Lookup(typ, value string) (Indicator, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.ref.indTypes.index(typ)
	if !ok {
		return Indicator{}, false
	}
	in := s.byKey[ikey{t, value}]
	if in == nil {
		return Indicator{}, false
	}
	return s.export(in), true
}

// Attributes returns the attribute rows of indicator id, in row order.
func (s *Server) Attributes(id int64) []Attribute {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in := s.inds[id]
	if in == nil {
		return nil
	}
	return exportAttrs(in.attrs)
}

func exportAttrs(rows []attrRow) []Attribute {
	if len(rows) == 0 {
		return nil
	}
	out := make([]Attribute, len(rows))
	for i, a := range rows {
		out[i] = Attribute{ID: a.id, Name: a.name, Value: a.value, Sources: slices.Clone(a.srcs)}
		if len(a.srcs) > 0 {
			out[i].Source = a.srcs[0]
		}
	}
	return out
}

func (s *Server) export(in *indicator) Indicator {
	out := Indicator{
		ID: in.id, Value: in.value, Type: s.ref.indTypes.items[in.typ].name, Status: s.ref.indStatuses.items[in.status].name,
		Score: in.score, Description: in.desc,
		CreatedAt: fromUnix(in.created), UpdatedAt: fromUnix(in.updated), TouchedAt: fromUnix(in.touched),
		Attributes: exportAttrs(in.attrs), Sources: slices.Clone(in.sources),
	}
	if in.hasManual {
		m := in.manual
		out.ManualScore = &m
	}
	return out
}

// RejectValue makes every later write whose value (an indicator's or a
// signature's value or name, or an attribute value) contains substr fail
// with a validation 400, as a value ThreatQ refuses would: for dead-letter
// tests. An empty substr is ignored.
func (s *Server) RejectValue(substr string) {
	if substr == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects = append(s.rejects, substr)
}

// AcceptValue undoes RejectValue(substr): later writes containing it go
// through again, as after the cause of a refusal is fixed. Other rejected
// substrings stay rejected; a substr never rejected is ignored.
func (s *Server) AcceptValue(substr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects = slices.DeleteFunc(s.rejects, func(r string) bool { return r == substr })
}

// rejectedLocked reports whether v contains a rejected substring.
func (s *Server) rejectedLocked(v string) bool {
	for _, r := range s.rejects {
		if strings.Contains(v, r) {
			return true
		}
	}
	return false
}

// search is a saved search.
type search struct {
	id       int64
	name     string
	apiQuery json.RawMessage
}

// AddSavedSearch adds a Threat Library saved search whose api_query
// ({"criteria": …, "filters": …}) is apiQuery, and returns its id. Odd ids
// are served with json as a JSON-encoded string, even ones as an object.
func (s *Server) AddSavedSearch(name string, apiQuery json.RawMessage) (int64, error) {
	if !json.Valid(apiQuery) {
		return 0, errors.New("add saved search: api_query is not JSON")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextSrch
	s.nextSrch++
	s.searches = append(s.searches, &search{id: id, name: name, apiQuery: append(json.RawMessage(nil), apiQuery...)})
	return id, nil
}

// searchJSON renders a saved search's json: the ui_query and api_query of
// the vendor SDK, as a string for odd ids.
func searchJSON(sr *search) any {
	obj := map[string]any{
		"ui_query": map[string]any{
			"columns": map[string]any{}, "criteria": map[string]any{}, "filters": map[string]any{},
			"objects": map[string]any{"current": "indicators", "selected": []any{}}, "filter_sets": []any{},
		},
		"api_query": sr.apiQuery,
	}
	if sr.id%2 == 1 {
		b, _ := json.Marshal(obj)
		return string(b)
	}
	return obj
}

func (s *Server) serveSearches(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	list := slices.Clone(s.searches)
	s.mu.RUnlock()
	q := r.URL.Query()
	offset, _ := strconv.Atoi(q.Get("offset"))
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = len(list)
	}
	offset = min(max(offset, 0), len(list))
	end := min(offset+limit, len(list))
	data := make([]map[string]any, 0, end-offset)
	for _, sr := range list[offset:end] {
		data = append(data, map[string]any{
			"id": sr.id, "name": sr.name, "hash": fmt.Sprintf("%016x%016x", mix64(uint64(sr.id)), mix64(^uint64(sr.id))),
			"user_id": 1, "object": "indicators", "json": searchJSON(sr),
			"created_at": refStamp, "updated_at": refStamp,
		})
	}
	if len(data) == 0 {
		writeRaw(w, http.StatusOK, []byte(`{"total":`+strconv.Itoa(len(list))+`,"data":`+string(s.pageEmpty)+`}`))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": len(list), "data": data, "limit": limit, "offset": offset})
}

func (s *Server) createSearch(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		validation(w, map[string][]string{"json": {"The json field is required."}})
		return
	}
	var in struct {
		Name string          `json:"name"`
		JSON json.RawMessage `json:"json"`
	}
	errs := map[string][]string{}
	if json.Unmarshal(body, &in) != nil {
		errs["json"] = []string{"The request body is not valid JSON."}
	}
	if strings.TrimSpace(in.Name) == "" {
		errs["name"] = []string{"The name field is required."}
	}
	var obj struct {
		APIQuery json.RawMessage `json:"api_query"`
	}
	if len(in.JSON) == 0 || json.Unmarshal(in.JSON, &obj) != nil {
		errs["json"] = append(errs["json"], "The json field must be an object.")
	}
	if len(errs) > 0 {
		validation(w, errs)
		return
	}
	s.mu.RLock()
	for _, sr := range s.searches {
		if sr.name == in.Name {
			s.mu.RUnlock()
			validation(w, map[string][]string{"name": {"The name has already been taken."}})
			return
		}
	}
	s.mu.RUnlock()
	q := obj.APIQuery
	if len(q) == 0 {
		q = in.JSON
	}
	id, _ := s.AddSavedSearch(in.Name, q)
	writeJSON(w, http.StatusCreated, map[string]any{"data": map[string]any{"id": id, "name": in.Name, "json": json.RawMessage(in.JSON)}})
}
