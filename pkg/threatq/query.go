package threatq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// DefaultFields returns the projection asked of POST
// /api/indicators/query, a new slice at each call. Attributes and sources
// are named explicitly: since 2026 the Threat Library leaves them out by
// default (contract §4.4).
func DefaultFields() []string {
	return []string{
		"id", "value", "type", "type_id", "status", "status_id", "score", "class",
		"created_at", "updated_at", "touched_at", "attributes", "sources",
	}
}

// QuerySort is the order query pages are asked in, so that offsets stay
// meaningful and a checkpoint on (updated_at, id) is monotonic.
const QuerySort = "updated_at,id"

// Search is a Threat Library saved search ("Data Collection").
type Search struct {
	ID   int64
	Name string
	// Hash is the collection's hash, when the server sent one.
	Hash string
	// Criteria and Filters are the search's api_query parts; nil when
	// empty.
	Criteria, Filters json.RawMessage
}

// Query returns the search as a [Query] with no window.
func (s Search) Query() Query { return Query{Criteria: s.Criteria, Filters: s.Filters} }

// Query is a structured indicator search: a saved search's criteria and
// filters, extra filter clauses, and an updated_at window.
type Query struct {
	// Criteria and Filters are the API's criteria and filters objects, as
	// JSON; nil, {} and [] are empty.
	Criteria, Filters json.RawMessage
	// Clauses are extra filter clauses, each a JSON-encodable value such as
	// map[string]any{"status_name": "Active"}, ANDed with the rest.
	Clauses []any
	// UpdatedAfter and UpdatedBefore bound updated_at, exclusively, at
	// the API's one-second resolution: After is truncated to the second,
	// Before rounded up, so that consecutive windows (After = previous
	// Before) neither lose nor repeat an indicator. A zero bound is open.
	// When either is set, any updated_at clause of the search is replaced.
	UpdatedAfter, UpdatedBefore time.Time
	// Fields is the projection; [DefaultFields] when empty.
	Fields []string
	// RowSources asks for each attribute row's own sources
	// (with=attributes.sources, contracts/threatq.md corrections 2), so
	// that a reader can tell its own rows from other feeds'. An instance
	// that ignores it sends the rows without: their Sources stay nil.
	RowSources bool
}

// And returns a copy of q with clauses added to its filters.
func (q Query) And(clauses ...any) Query {
	q.Clauses = append(slices.Clip(q.Clauses), clauses...)
	return q
}

// ActiveAbove returns the query of the MISP job: Active indicators whose
// score is at least threshold. The score clause is {"+gt": floor(t)-1}, the
// form every version takes (+gte is not certain, contract §4.3); it can let
// through fractional scores just under threshold, so callers re-check the
// score client-side.
func ActiveAbove(threshold float64) Query {
	return Query{}.And(
		map[string]any{"status_name": "Active"},
		map[string]any{"score": map[string]any{"+gt": math.Floor(threshold) - 1}},
	)
}

// Body returns the JSON body of POST /api/indicators/query for q.
func (q Query) Body() ([]byte, error) {
	crit, err := parseObject(q.Criteria)
	if err != nil {
		return nil, fmt.Errorf("parse criteria: %w", err)
	}
	filt, err := parseObject(q.Filters)
	if err != nil {
		return nil, fmt.Errorf("parse filters: %w", err)
	}
	var adds []any
	adds = append(adds, q.Clauses...)
	if !q.UpdatedAfter.IsZero() || !q.UpdatedBefore.IsZero() {
		crit = dropDateClause(crit, "updated_at")
		filt = dropDateClause(filt, "updated_at")
		window := map[string]any{}
		if !q.UpdatedAfter.IsZero() {
			window["+gt"] = FormatTime(q.UpdatedAfter.Truncate(time.Second))
		}
		if !q.UpdatedBefore.IsZero() {
			b := q.UpdatedBefore.Truncate(time.Second)
			if b.Before(q.UpdatedBefore) {
				b = b.Add(time.Second)
			}
			window["+lt"] = FormatTime(b)
		}
		adds = append(adds, map[string]any{"updated_at": window})
	}
	if len(adds) > 0 {
		// Into filters' "+and", or criteria's when filters is empty and
		// criteria is not (the vendor SDK's inject_date).
		if len(filt) == 0 && len(crit) > 0 {
			crit = addClauses(crit, adds)
		} else {
			filt = addClauses(filt, adds)
		}
	}
	fields := q.Fields
	if len(fields) == 0 {
		fields = DefaultFields()
	}
	body := struct {
		Criteria map[string]any `json:"criteria"`
		Filters  map[string]any `json:"filters"`
		Fields   []string       `json:"fields"`
	}{orEmpty(crit), orEmpty(filt), fields}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode query: %w", err)
	}
	return b, nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// parseObject reads a criteria or filters value: an object; null, [] and
// {} are empty; a non-empty array is taken as the clauses of an "+and".
func parseObject(raw json.RawMessage) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			return nil, nil
		}
		return v, nil
	case []any:
		if len(v) == 0 {
			return nil, nil
		}
		return map[string]any{"+and": v}, nil
	}
	return nil, errors.New("not an object")
}

// dropDateClause removes the field's clauses from m: its own key and those
// of the clauses of its "+and" list.
func dropDateClause(m map[string]any, field string) map[string]any {
	if m == nil {
		return nil
	}
	delete(m, field)
	if and, ok := m["+and"].([]any); ok {
		kept := and[:0]
		for _, c := range and {
			if cm, ok := c.(map[string]any); ok {
				delete(cm, field)
				if len(cm) == 0 {
					continue
				}
			}
			kept = append(kept, c)
		}
		if len(kept) == 0 {
			delete(m, "+and")
		} else {
			m["+and"] = kept
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// addClauses appends clauses to m's "+and" list.
func addClauses(m map[string]any, clauses []any) map[string]any {
	if m == nil {
		m = map[string]any{}
	}
	and, _ := m["+and"].([]any)
	if existing, ok := m["+and"]; ok && and == nil {
		and = []any{existing} // a single clause where a list was expected
	}
	m["+and"] = append(and, clauses...)
	return m
}

// Query runs q with POST /api/indicators/query, sorted by (updated_at, id),
// and calls page with each page's indicators, never holding the whole
// result. It stops at the end, on page's first error (returned as is), or
// on a failed call. Idempotent page requests are retried on transient
// failures. Indicators whose answer named their type or status only by id
// get the name from the instance's reference data.
//
// Pages are keyed, not offset: each page asks again from the second of the
// last indicator delivered (updated_at has one-second resolution) and drops
// the indicators of that second already delivered. Offset paging over a
// live set skips indicators: when anyone (tqflow's own writer, typically)
// changes an indicator while the search is read, it leaves the window, and
// every later offset overshoots by one. A key on updated_at is stable,
// since an unchanged indicator never moves; only a tie group larger than a
// page is walked by offset, within its second.
func (c *Client) Query(ctx context.Context, q Query, page func([]Indicator) error) error {
	const op = "threatq: query indicators"
	limit := c.pageSize
	var tie time.Time        // the second of the last indicator delivered
	seen := map[int64]bool{} // indicators of that second already delivered
	offset := 0              // within tie, for a tie group larger than a page
	for {
		pq := q
		if !tie.IsZero() {
			pq.UpdatedAfter = tie.Add(-time.Second) // > tie-1s: from tie on.
		}
		body, err := pq.Body()
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		r := request{
			op: op, method: http.MethodPost, path: "/api/indicators/query", body: body, idempotent: true,
			query: url.Values{
				"limit":  {strconv.Itoa(limit)},
				"offset": {strconv.Itoa(offset)},
				"sort":   {QuerySort},
			},
		}
		if q.RowSources {
			r.query.Set("with", "attributes.sources")
		}
		at := offset // where this page starts within the re-keyed query
		a, err := c.call(ctx, r)
		if err == nil {
			err = c.check(op, a)
		}
		where := "from the start"
		if !tie.IsZero() {
			where = "from " + FormatTime(tie)
		}
		if offset > 0 {
			where += fmt.Sprintf(" (offset %d)", offset)
		}
		if err != nil {
			return fmt.Errorf("fetch page %s: %w", where, err)
		}
		inds, total, err := DecodeIndicators(a.body)
		if err != nil {
			return &httpx.DecodeError{Op: op + " " + where, Err: err}
		}
		if len(inds) == 0 {
			return nil
		}
		fresh := inds[:0:0]
		for _, in := range inds {
			if !seen[in.ID] {
				fresh = append(fresh, in)
			}
		}
		if len(fresh) > 0 {
			if err := c.fillNames(ctx, fresh); err != nil {
				return err
			}
			if err := page(fresh); err != nil {
				return err
			}
		}
		last := inds[len(inds)-1].UpdatedAt.UTC().Truncate(time.Second)
		if !tie.IsZero() && last.Equal(tie) {
			// The whole page is one second: walk it by offset.
			offset += len(inds)
			for _, in := range inds {
				seen[in.ID] = true
			}
		} else {
			tie, offset = last, 0
			clear(seen)
			for _, in := range inds {
				if in.UpdatedAt.UTC().Truncate(time.Second).Equal(last) {
					seen[in.ID] = true
				}
			}
		}
		// total counts the current (re-keyed) query, so it says exactly
		// whether more remain, even from a server that caps limit below
		// ours; without it, a short page is the last.
		if (total >= 0 && int64(at+len(inds)) >= total) || (total < 0 && len(inds) < limit) {
			return nil
		}
	}
}

// fillNames gives indicators sent with type_id or status_id only their
// names.
func (c *Client) fillNames(ctx context.Context, inds []Indicator) error {
	var types, statuses map[int64]string
	for i := range inds {
		in := &inds[i]
		if in.Type == "" && in.TypeID != 0 {
			if types == nil {
				ts, err := c.IndicatorTypes(ctx)
				if err != nil {
					return err
				}
				types = map[int64]string{}
				for _, t := range ts {
					types[t.ID] = t.Name
				}
			}
			in.Type = types[in.TypeID]
		}
		if in.Status == "" && in.StatusID != 0 {
			if statuses == nil {
				ss, err := c.IndicatorStatuses(ctx)
				if err != nil {
					return err
				}
				statuses = map[int64]string{}
				for _, s := range ss {
					statuses[s.ID] = s.Name
				}
			}
			in.Status = statuses[in.StatusID]
		}
	}
	return nil
}

// wireSearch is a saved search as GET /api/search/query sends it.
type wireSearch struct {
	ID   flexInt         `json:"id"`
	Name string          `json:"name"`
	Hash string          `json:"hash"`
	JSON json.RawMessage `json:"json"`
}

// maxNamesShown bounds the names listed when a saved search is not found.
const maxNamesShown = 10

// SavedSearch returns the Threat Library saved search named name (an exact
// match), from GET /api/search/query. Its json may be an object or a string
// holding JSON; the query is its api_query, or the json itself when it has
// none. An unknown name is an error wrapping [ErrNotFound] that lists the
// names available.
func (c *Client) SavedSearch(ctx context.Context, name string) (Search, error) {
	const op = "threatq: list saved searches"
	var names []string
	const limit = 500
	for offset := 0; ; {
		var env envelope[list[wireSearch]]
		r := request{op: op, method: http.MethodGet, path: "/api/search/query", idempotent: true,
			query: url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}}
		if err := c.json(ctx, r, &env); err != nil {
			return Search{}, fmt.Errorf("find saved search: %w", err)
		}
		for _, w := range env.Data {
			if w.Name == name {
				s, err := w.search()
				if err != nil {
					return Search{}, &httpx.DecodeError{Op: "threatq: read saved search " + strconv.Quote(name), Err: err}
				}
				return s, nil
			}
			names = append(names, w.Name)
		}
		offset += len(env.Data)
		// A server that does not page sends everything at once.
		if len(env.Data) == 0 || env.Total == nil || int64(offset) >= int64(*env.Total) {
			break
		}
	}
	shown := names[:min(len(names), maxNamesShown)]
	for i, n := range shown {
		shown[i] = strconv.Quote(n)
	}
	more := ""
	if len(names) > maxNamesShown {
		more = fmt.Sprintf(" and %d more", len(names)-maxNamesShown)
	}
	if len(names) == 0 {
		return Search{}, fmt.Errorf("find saved search %q: none exist: %w", name, ErrNotFound)
	}
	return Search{}, fmt.Errorf("find saved search %q: have %s%s: %w", name, strings.Join(shown, ", "), more, ErrNotFound)
}

// search reads the saved search's json: an object or a string holding one;
// its api_query (itself maybe a string), else the json itself.
func (w wireSearch) search() (Search, error) {
	obj, err := objectOrString(w.JSON)
	if err != nil {
		return Search{}, fmt.Errorf("json: %w", err)
	}
	q := obj
	if raw, ok := obj["api_query"]; ok {
		if q, err = objectOrString(raw); err != nil {
			return Search{}, fmt.Errorf("api_query: %w", err)
		}
	}
	return Search{ID: int64(w.ID), Name: w.Name, Hash: w.Hash, Criteria: nonEmpty(q["criteria"]), Filters: nonEmpty(q["filters"])}, nil
}

// objectOrString decodes an object, or a string holding one; null and ""
// are an empty object.
func objectOrString(raw json.RawMessage) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		raw = bytes.TrimSpace([]byte(s))
	}
	if len(raw) == 0 || string(raw) == "null" || string(raw) == "[]" {
		return map[string]json.RawMessage{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// nonEmpty returns nil for an absent or empty criteria or filters value.
func nonEmpty(raw json.RawMessage) json.RawMessage {
	switch strings.TrimSpace(string(raw)) {
	case "", "null", "{}", "[]", `""`:
		return nil
	}
	return raw
}
