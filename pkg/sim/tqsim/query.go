package tqsim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Query limits: the default and the largest page.
const (
	defaultLimit = 500
	maxLimit     = 1000
	maxCached    = 32
)

// cached is the filtered, sorted result of one query body, valid while
// the server's generation is gen.
type cached struct {
	gen  uint64
	list []*indicator
	// pred is the query's filter (nil: every indicator, and list is
	// s.order); stored says list is in the stored (updated, id) order, so
	// that it can be kept up to date incrementally.
	pred   pred
	stored bool
}

// maxIncremental is the most indicators one write may change and still be
// applied to the sorted order and the cached query lists in place; larger
// changes re-sort and re-filter on the next query.
const maxIncremental = 64

// matches reports whether in is in the entry's result.
func (c *cached) matches(in *indicator) bool { return c.pred == nil || c.pred(in) }

// removeSorted removes in from a list sorted by (updated, id), reading
// in's current fields.
func removeSorted(list []*indicator, in *indicator) []*indicator {
	if i, ok := slices.BinarySearchFunc(list, in, byUpdated); ok {
		return slices.Delete(list, i, i+1)
	}
	return list
}

// insertSorted inserts in into a list sorted by (updated, id).
func insertSorted(list []*indicator, in *indicator) []*indicator {
	i, _ := slices.BinarySearchFunc(list, in, byUpdated)
	return slices.Insert(list, i, in)
}

// mutateLocked applies change to in (a new indicator when isNew, already
// in s.inds and s.byKey) and keeps the sorted order and the live cached
// query lists up to date without a re-sort or a re-filter. s.mu must be
// held for writing.
func (s *Server) mutateLocked(in *indicator, isNew bool, change func()) {
	if s.sorted && s.inPlace >= maxIncremental {
		// Many single changes (status PUTs, one request each) cost more
		// in slice surgery than one sort at the next query: the trade a
		// bulk write makes.
		s.sorted = false
		s.gen++
	}
	s.inPlace++
	if !s.sorted {
		// Caches are already stale; the next query sorts and filters.
		change()
		if isNew {
			s.order = append(s.order, in)
		}
		return
	}
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	var live []*cached
	for k, c := range s.cache {
		switch {
		case c.gen != s.gen:
			delete(s.cache, k)
		case !c.stored:
			delete(s.cache, k) // another sort order: recomputed when asked
		default:
			live = append(live, c)
		}
	}
	if !isNew {
		for _, c := range live {
			if c.pred != nil && c.matches(in) {
				c.list = removeSorted(c.list, in)
			}
		}
		s.order = removeSorted(s.order, in)
	}
	change()
	s.order = insertSorted(s.order, in)
	for _, c := range live {
		if c.pred == nil {
			c.list = s.order
		} else if c.matches(in) {
			c.list = insertSorted(c.list, in)
		}
	}
}

// pred is a compiled filter.
type pred func(*indicator) bool

// queryBody is the body of POST /api/indicators/query.
type queryBody struct {
	Criteria json.RawMessage `json:"criteria"`
	Filters  json.RawMessage `json:"filters"`
	Fields   []string        `json:"fields"`
}

// compiler turns criteria and filters into predicates.
type compiler struct {
	s   *Server
	now time.Time
}

func decodeAny(raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// compile compiles a clause: an object whose keys are ANDed ("+and",
// "+or", or field conditions), or a list of clauses (ANDed).
func (c compiler) compile(v any) (pred, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []any:
		return c.all(v)
	case map[string]any:
		var ps []pred
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			var p pred
			var err error
			switch k {
			case "+and":
				list, ok := v[k].([]any)
				if !ok {
					list = []any{v[k]}
				}
				p, err = c.all(list)
			case "+or":
				list, ok := v[k].([]any)
				if !ok {
					return nil, errors.New("+or takes a list")
				}
				p, err = c.any(list)
			default:
				p, err = c.field(k, v[k])
			}
			if err != nil {
				return nil, err
			}
			if p != nil {
				ps = append(ps, p)
			}
		}
		return and(ps), nil
	}
	return nil, fmt.Errorf("clause of type %T", v)
}

func and(ps []pred) pred {
	switch len(ps) {
	case 0:
		return nil
	case 1:
		return ps[0]
	}
	return func(in *indicator) bool {
		for _, p := range ps {
			if !p(in) {
				return false
			}
		}
		return true
	}
}

func (c compiler) all(list []any) (pred, error) {
	var ps []pred
	for _, x := range list {
		p, err := c.compile(x)
		if err != nil {
			return nil, err
		}
		if p != nil {
			ps = append(ps, p)
		}
	}
	return and(ps), nil
}

func (c compiler) any(list []any) (pred, error) {
	var ps []pred
	for _, x := range list {
		p, err := c.compile(x)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, nil // an empty alternative matches everything
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	return func(in *indicator) bool {
		for _, p := range ps {
			if p(in) {
				return true
			}
		}
		return false
	}, nil
}

// field compiles a condition on one field.
func (c compiler) field(name string, cond any) (pred, error) {
	switch name {
	case "type_name", "type", "indicator_type":
		return c.nameSet(&c.s.ref.indTypes, cond, func(in *indicator) int { return in.typ })
	case "status_name", "status", "indicator_status":
		return c.nameSet(&c.s.ref.indStatuses, cond, func(in *indicator) int { return in.status })
	case "type_id":
		return c.idSet(&c.s.ref.indTypes, cond, func(in *indicator) int { return in.typ })
	case "status_id":
		return c.idSet(&c.s.ref.indStatuses, cond, func(in *indicator) int { return in.status })
	case "score":
		return c.number(cond, func(in *indicator) float64 { return in.effectiveScore() })
	case "id":
		return c.number(cond, func(in *indicator) float64 { return float64(in.id) })
	case "updated_at":
		return c.date(cond, func(in *indicator) int64 { return in.updated })
	case "created_at":
		return c.date(cond, func(in *indicator) int64 { return in.created })
	case "touched_at":
		return c.date(cond, func(in *indicator) int64 { return in.touched })
	case "value":
		return c.value(cond)
	case "class":
		want, ok := cond.(string)
		if !ok {
			return nil, errors.New("class takes a string")
		}
		return func(in *indicator) bool {
			return strings.EqualFold(c.s.ref.indTypes.items[in.typ].class, want)
		}, nil
	}
	return nil, fmt.Errorf("unknown filter field %s", name)
}

// operand unwraps {"is": x} and {"+is": x}.
func operand(cond any) (any, bool) {
	m, ok := cond.(map[string]any)
	if !ok {
		return cond, false
	}
	for _, k := range []string{"is", "+is", "+eq", "="} {
		if v, ok := m[k]; ok && len(m) == 1 {
			return v, false
		}
	}
	if v, ok := m["+not"]; ok && len(m) == 1 {
		return v, true
	}
	return cond, false
}

func (c compiler) nameSet(l *refList, cond any, get func(*indicator) int) (pred, error) {
	v, not := operand(cond)
	set := map[int]bool{}
	var names []any
	switch v := v.(type) {
	case string:
		names = []any{v}
	case []any:
		names = v
	default:
		return nil, errors.New("a name condition takes a name or a list of names")
	}
	for _, n := range names {
		s, ok := n.(string)
		if !ok {
			return nil, errors.New("a name condition takes names")
		}
		if i, ok := l.index(s); ok {
			set[i] = true
		}
	}
	return func(in *indicator) bool { return set[get(in)] != not }, nil
}

func (c compiler) idSet(l *refList, cond any, get func(*indicator) int) (pred, error) {
	v, not := operand(cond)
	vals, ok := v.([]any)
	if !ok {
		vals = []any{v}
	}
	set := map[int]bool{}
	for _, x := range vals {
		f, err := toFloat(x)
		if err != nil {
			return nil, err
		}
		if i, ok := l.byID[int(f)]; ok {
			set[i] = true
		}
	}
	return func(in *indicator) bool { return set[get(in)] != not }, nil
}

func toFloat(v any) (float64, error) {
	switch v := v.(type) {
	case json.Number:
		return v.Float64()
	case float64:
		return v, nil
	case string:
		return strconv.ParseFloat(strings.TrimSpace(v), 64)
	}
	return 0, fmt.Errorf("%v is not a number", v)
}

// compare builds a predicate from comparison operators.
func compare[T cmp.Ordered](m map[string]any, conv func(any) (T, error), get func(*indicator) T) (pred, error) {
	type bound struct {
		op string
		v  T
	}
	var bs []bound
	for op, x := range m {
		switch op {
		case "+gt", "+gte", "+lt", "+lte", "+eq", "is", "+is", "+not":
		default:
			return nil, fmt.Errorf("unknown operator %s", op)
		}
		v, err := conv(x)
		if err != nil {
			return nil, err
		}
		bs = append(bs, bound{op, v})
	}
	return func(in *indicator) bool {
		x := get(in)
		for _, b := range bs {
			var ok bool
			switch b.op {
			case "+gt":
				ok = x > b.v
			case "+gte":
				ok = x >= b.v
			case "+lt":
				ok = x < b.v
			case "+lte":
				ok = x <= b.v
			case "+not":
				ok = x != b.v
			default:
				ok = x == b.v
			}
			if !ok {
				return false
			}
		}
		return true
	}, nil
}

func (c compiler) number(cond any, get func(*indicator) float64) (pred, error) {
	m, ok := cond.(map[string]any)
	if !ok {
		m = map[string]any{"is": cond}
	}
	return compare(m, toFloat, get)
}

// parseDate reads "NOW", "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD".
func (c compiler) parseDate(v any) (int64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("date %v is not a string", v)
	}
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "now") {
		return c.now.Unix(), nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, errors.New("a date must be YYYY-MM-DD HH:MM:SS or NOW")
}

func (c compiler) date(cond any, get func(*indicator) int64) (pred, error) {
	m, ok := cond.(map[string]any)
	if !ok {
		m = map[string]any{"is": cond}
	}
	return compare(m, c.parseDate, get)
}

func (c compiler) value(cond any) (pred, error) {
	if m, ok := cond.(map[string]any); ok {
		if x, ok := m["+contains"]; ok && len(m) == 1 {
			sub, ok := x.(string)
			if !ok {
				return nil, errors.New("+contains takes a string")
			}
			sub = strings.ToLower(sub)
			return func(in *indicator) bool { return strings.Contains(strings.ToLower(in.value), sub) }, nil
		}
	}
	v, not := operand(cond)
	vals, ok := v.([]any)
	if !ok {
		vals = []any{v}
	}
	set := map[string]bool{}
	for _, x := range vals {
		s, ok := x.(string)
		if !ok {
			return nil, errors.New("value takes a string")
		}
		set[strings.ToLower(s)] = true
	}
	return func(in *indicator) bool { return set[strings.ToLower(in.value)] != not }, nil
}

// sorter returns the comparison of a sort parameter ("updated_at,id",
// "-score", …); nil for (updated_at, id), the stored order.
func sorter(spec string) (func(a, b *indicator) int, bool, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		spec = "id"
	}
	if spec == "updated_at,id" || spec == "updated_at" {
		return nil, true, nil
	}
	type key struct {
		get  func(*indicator) float64
		desc bool
	}
	var keys []key
	for _, f := range strings.Split(spec, ",") {
		f = strings.TrimSpace(f)
		desc := strings.HasPrefix(f, "-")
		f = strings.TrimPrefix(f, "-")
		var get func(*indicator) float64
		switch f {
		case "id":
			get = func(in *indicator) float64 { return float64(in.id) }
		case "updated_at":
			get = func(in *indicator) float64 { return float64(in.updated) }
		case "created_at":
			get = func(in *indicator) float64 { return float64(in.created) }
		case "touched_at":
			get = func(in *indicator) float64 { return float64(in.touched) }
		case "score":
			get = func(in *indicator) float64 { return in.effectiveScore() }
		default:
			return nil, false, fmt.Errorf("unknown sort field %s", f)
		}
		keys = append(keys, key{get, desc})
	}
	return func(a, b *indicator) int {
		for _, k := range keys {
			c := cmp.Compare(k.get(a), k.get(b))
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(a.id, b.id)
	}, false, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// serveQuery implements POST /api/indicators/query.
func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		validation(w, map[string][]string{"body": {"The request body could not be read."}})
		return
	}
	var qb queryBody
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &qb); err != nil {
			validation(w, map[string][]string{"body": {"The request body must be a JSON object."}})
			return
		}
	}
	q := r.URL.Query()
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			validation(w, map[string][]string{"limit": {"The limit must be a positive integer."}})
			return
		}
	}
	limit = min(limit, maxLimit)
	offset := 0
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			validation(w, map[string][]string{"offset": {"The offset must be a non-negative integer."}})
			return
		}
	}
	less, stored, err := sorter(q.Get("sort"))
	if err != nil {
		validation(w, map[string][]string{"sort": {"The sort field is invalid."}})
		return
	}
	key := string(bytes.TrimSpace(qb.Criteria)) + "\x00" + string(bytes.TrimSpace(qb.Filters)) + "\x00" + q.Get("sort")

	s.mu.RLock()
	for !s.sorted {
		s.mu.RUnlock()
		s.mu.Lock()
		s.sortLocked()
		s.mu.Unlock()
		s.mu.RLock()
	}
	// The read lock is released before the answer is written, so that a
	// slow reader does not hold writers up.
	gen := s.gen
	s.cacheMu.Lock()
	hit := s.cache[key]
	s.cacheMu.Unlock()
	var list []*indicator
	if hit != nil && hit.gen == gen {
		list = hit.list
	} else {
		c := compiler{s: s, now: s.now()}
		var ps []pred
		for _, part := range []json.RawMessage{qb.Criteria, qb.Filters} {
			v, err := decodeAny(part)
			if err != nil {
				s.mu.RUnlock()
				validation(w, map[string][]string{"filters": {"The filters must be JSON."}})
				return
			}
			p, err := c.compile(v)
			if err != nil {
				s.mu.RUnlock()
				validation(w, map[string][]string{"filters": {"The filters are invalid: " + err.Error() + "."}})
				return
			}
			if p != nil {
				ps = append(ps, p)
			}
		}
		p := and(ps)
		if p == nil {
			list = s.order
		} else {
			for _, in := range s.order {
				if p(in) {
					list = append(list, in)
				}
			}
		}
		if !stored {
			list = slices.Clone(list)
			slices.SortFunc(list, less)
		}
		s.cacheMu.Lock()
		if len(s.cache) >= maxCached {
			clear(s.cache)
		}
		s.cache[key] = &cached{gen: gen, list: list, pred: p, stored: stored}
		s.cacheMu.Unlock()
	}
	proj := projectionOf(qb.Fields, q.Get("with"))
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"total":`...)
	b = strconv.AppendInt(b, int64(len(list)), 10)
	b = append(b, `,"data":`...)
	if offset >= len(list) {
		b = append(b, s.pageEmpty...)
	} else {
		b = append(b, '[')
		for i, in := range list[offset:min(offset+limit, len(list))] {
			if i > 0 {
				b = append(b, ',')
			}
			b = s.appendIndicator(b, in, proj)
		}
		b = append(b, ']')
	}
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, int64(offset), 10)
	b = append(b, '}')
	s.mu.RUnlock()
	writeRaw(w, http.StatusOK, b)
	if cap(b) <= 8<<20 {
		*bp = b
		bufPool.Put(bp)
	}
}

// projection says which fields an indicator is rendered with.
type projection struct {
	fields      bool // a fields list was given: type and status as names
	all         bool
	set         map[string]bool
	attrs, srcs bool
	// attrSrcs renders each attribute row with its own sources
	// (with=attributes.sources, or the field attributes.sources).
	attrSrcs    bool
	scoreObject bool
}

func projectionOf(fields []string, with string) projection {
	p := projection{}
	for _, w := range strings.Split(with, ",") {
		switch strings.TrimSpace(w) {
		case "attributes":
			p.attrs = true
		case "sources":
			p.srcs = true
		case "attributes.sources":
			p.attrs, p.attrSrcs = true, true
		case "score":
			p.scoreObject = true
		}
	}
	if len(fields) == 0 {
		p.all = true
		return p
	}
	p.fields = true
	p.set = map[string]bool{"id": true}
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if f == "*" {
			p.all = true
		}
		p.set[f] = true
	}
	p.attrSrcs = p.attrSrcs || p.set["attributes.sources"]
	p.attrs = p.attrs || p.set["attributes"] || p.attrSrcs
	p.srcs = p.srcs || p.set["sources"]
	return p
}

func (p projection) has(f string) bool { return p.all || p.set[f] }

// stringScore reports whether the indicator's score is rendered as a
// string: a share of indicators, as some versions and exports do.
func stringScore(id int64) bool { return id%5 == 3 }

// appendIndicator renders one indicator. With a fields list, type and
// status are plain names; without, they are {id,name,…} objects beside
// type_id and status_id, and attributes and sources come only when asked
// for with "with" (the 2026 default, contract §4.4).
func (s *Server) appendIndicator(b []byte, in *indicator, p projection) []byte {
	typ := &s.ref.indTypes.items[in.typ]
	st := &s.ref.indStatuses.items[in.status]
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, in.id, 10)
	if p.has("value") {
		b = append(b, `,"value":`...)
		b = appendString(b, in.value)
	}
	if p.has("class") {
		b = append(b, `,"class":`...)
		b = appendString(b, typ.class)
	}
	if p.has("type_id") {
		b = append(b, `,"type_id":`...)
		b = strconv.AppendInt(b, int64(typ.id), 10)
	}
	if p.has("status_id") {
		b = append(b, `,"status_id":`...)
		b = strconv.AppendInt(b, int64(st.id), 10)
	}
	if p.has("hash") {
		b = append(b, `,"hash":"`...)
		b = appendHash(b, in)
		b = append(b, '"')
	}
	if p.has("type") {
		b = append(b, `,"type":`...)
		if p.fields {
			b = appendString(b, typ.name)
		} else {
			b = append(b, `{"id":`...)
			b = strconv.AppendInt(b, int64(typ.id), 10)
			b = append(b, `,"name":`...)
			b = appendString(b, typ.name)
			b = append(b, `,"class":`...)
			b = appendString(b, typ.class)
			b = append(b, '}')
		}
	}
	if p.has("status") {
		b = append(b, `,"status":`...)
		if p.fields {
			b = appendString(b, st.name)
		} else {
			b = append(b, `{"id":`...)
			b = strconv.AppendInt(b, int64(st.id), 10)
			b = append(b, `,"name":`...)
			b = appendString(b, st.name)
			b = append(b, `,"description":`...)
			b = appendString(b, st.desc)
			b = append(b, '}')
		}
	}
	if p.has("score") {
		b = append(b, `,"score":`...)
		switch {
		case p.scoreObject:
			b = append(b, `{"generated_score":`...)
			b = appendFloat(b, in.score)
			b = append(b, `,"manual_score":`...)
			if in.hasManual {
				b = appendFloat(b, in.manual)
			} else {
				b = append(b, "null"...)
			}
			b = append(b, '}')
		case stringScore(in.id):
			b = append(b, '"')
			b = appendFloat(b, in.effectiveScore())
			b = append(b, '"')
		default:
			b = appendFloat(b, in.effectiveScore())
		}
	}
	if p.has("description") && in.desc != "" {
		b = append(b, `,"description":`...)
		b = appendString(b, in.desc)
	}
	for _, f := range [...]struct {
		name string
		t    int64
	}{{"created_at", in.created}, {"updated_at", in.updated}, {"touched_at", in.touched}, {"published_at", in.created}} {
		if p.has(f.name) {
			b = append(b, `,"`...)
			b = append(b, f.name...)
			b = append(b, `":`...)
			b = appendTime(b, f.t)
		}
	}
	if !p.fields {
		b = append(b, `,"adversaries":[]`...)
	}
	if p.attrs {
		b = append(b, `,"attributes":[`...)
		for i := range in.attrs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendAttr(b, in.id, &in.attrs[i], p.attrSrcs)
		}
		b = append(b, ']')
	}
	if p.srcs {
		b = append(b, `,"sources":[`...)
		for i, src := range in.sources {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = strconv.AppendInt(b, in.id*16+int64(i), 10)
			b = append(b, `,"indicator_id":`...)
			b = strconv.AppendInt(b, in.id, 10)
			b = append(b, `,"name":`...)
			b = appendString(b, src)
			b = append(b, `,"source_type":"connectors","created_at":`...)
			b = appendTime(b, in.created)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendAttr renders an attribute row; with srcs, its own sources too
// (only then: a client that does not ask for them does not get them).
func appendAttr(b []byte, indID int64, a *attrRow, srcs bool) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, a.id, 10)
	b = append(b, `,"indicator_id":`...)
	b = strconv.AppendInt(b, indID, 10)
	b = append(b, `,"attribute_id":`...)
	b = strconv.AppendUint(b, uint64(len(a.name)%29+1), 10)
	b = append(b, `,"name":`...)
	b = appendString(b, a.name)
	b = append(b, `,"value":`...)
	b = appendString(b, a.value)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, a.created)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, a.updated)
	b = append(b, `,"touched_at":`...)
	b = appendTime(b, a.updated)
	if srcs {
		b = append(b, `,"sources":[`...)
		for i, src := range a.srcs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = strconv.AppendUint(b, fnv64(src)%100000+1, 10)
			b = append(b, `,"name":`...)
			b = appendString(b, src)
			b = append(b, `,"source_type":"users","pivot":{"id":`...)
			b = strconv.AppendInt(b, a.id*16+int64(i), 10)
			b = append(b, `}}`...)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendFloat(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(b, int64(f), 10)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendTime renders a Unix time as "YYYY-MM-DD HH:MM:SS".
func appendTime(b []byte, u int64) []byte {
	b = append(b, '"')
	b = time.Unix(u, 0).UTC().AppendFormat(b, "2006-01-02 15:04:05")
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendHash renders the indicator's 32-hex "hash" (a server-side dedup
// key, not the md5 of the value).
func appendHash(b []byte, in *indicator) []byte {
	h1 := fnv64(in.value) ^ uint64(in.typ)*0x9e3779b97f4a7c15
	h2 := mix64(h1 ^ uint64(in.id))
	for _, h := range [2]uint64{h1, h2} {
		for i := 60; i >= 0; i -= 4 {
			b = append(b, hexDigits[(h>>uint(i))&0xf])
		}
	}
	return b
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is splitmix64's finaliser: a bijection of uint64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// appendString renders s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x7f {
			continue
		}
		if c >= 0x80 {
			continue // UTF-8 passes through; invalid bytes are rare in generated data
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
