package threatq

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/internal/jsonlit"
)

// TimeLayout is ThreatQ's timestamp format. Timestamps carry no zone and
// are UTC.
const TimeLayout = "2006-01-02 15:04:05"

// FormatTime formats t in ThreatQ's layout, in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Indicator is an indicator as read from the Threat Library.
type Indicator struct {
	ID    int64
	Value string
	// Type and Status are names ("IP Address", "Active"); TypeID and
	// StatusID their instance-specific ids, when the answer gave them.
	Type, Status     string
	TypeID, StatusID int64
	// Score is the effective score: the manual score when set, else the
	// generated one (0..10).
	Score                float64
	CreatedAt, UpdatedAt time.Time
	Attributes           []Attribute
	// Sources are the names of the indicator's sources.
	Sources []string
}

// Attribute is one attribute row of an object: ThreatQ keeps one row per
// (name, value).
type Attribute struct {
	// ID is the attribute row's id (what DELETE .../attributes/{id}
	// takes), not the attribute name's id; zero for one not yet written.
	ID    int64
	Name  string
	Value string
	// Sources are the row's own sources (several feeds can report one
	// row), when the row was read with them ([Client.IndicatorAttributes]
	// and [Client.SetIndicatorStatusRows] do, and [Client.Query] with
	// [Query.RowSources]); empty when the row lists none, nil when they
	// were not read.
	Sources []string
}

// Status is an indicator or signature status.
type Status struct {
	ID   int64
	Name string
}

// Type is an indicator or signature type.
type Type struct {
	ID    int64
	Name  string
	Class string
}

// flexInt is an id or count sent as a number or a numeric string.
type flexInt int64

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(bytes.TrimSpace(b), `"`))
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*f = flexInt(n)
		return nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
		return fmt.Errorf("id %.20q is not an integer", s)
	}
	*f = flexInt(x)
	return nil
}

// flexNumber is a number sent as a number or a numeric string; null and
// "" are absent.
type flexNumber struct {
	v  float64
	ok bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexNumber) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(bytes.Trim(bytes.TrimSpace(b), `"`)))
	if s == "" || s == "null" {
		*f = flexNumber{}
		return nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return fmt.Errorf("number %.20q is not numeric", s)
	}
	*f = flexNumber{x, true}
	return nil
}

// flexScore is a score sent as a number, a numeric string or an object
// {generated_score, manual_score}, where the manual score wins when set.
type flexScore float64

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexScore) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var o struct {
			Generated flexNumber `json:"generated_score"`
			Manual    flexNumber `json:"manual_score"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return fmt.Errorf("score object: %w", err)
		}
		switch {
		case o.Manual.ok:
			*f = flexScore(o.Manual.v)
		default:
			*f = flexScore(o.Generated.v)
		}
		return nil
	}
	var n flexNumber
	if err := n.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	*f = flexScore(n.v)
	return nil
}

// flexName is a type or status sent as a plain name or as an object
// {id, name, ...}.
type flexName struct {
	ID   flexInt
	Name string
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexName) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0, string(b) == "null":
		*f = flexName{}
		return nil
	case b[0] == '"':
		f.ID = 0
		if name, ok := jsonlit.String(b); ok {
			f.Name = name
			return nil
		}
		return json.Unmarshal(b, &f.Name) // The error says what is wrong.
	case b[0] == '{':
		var o struct {
			ID   flexInt `json:"id"`
			Name string  `json:"name"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*f = flexName{o.ID, o.Name}
		return nil
	}
	// A bare id.
	f.Name = ""
	return f.ID.UnmarshalJSON(b)
}

// flexTime is a timestamp in ThreatQ's layout (UTC); RFC 3339 is accepted
// too. null and "" are the zero time.
type flexTime time.Time

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = flexTime{}
		return nil
	}
	s, ok := jsonlit.String(b)
	if !ok {
		var v string
		err := json.Unmarshal(b, &v)
		return fmt.Errorf("timestamp: %w", cmp.Or(err, errors.New("not a string")))
	}
	t, err := ParseTime(s)
	if err != nil {
		return err
	}
	*f = flexTime(t)
	return nil
}

// ParseTime reads a ThreatQ timestamp, "YYYY-MM-DD HH:MM:SS" in UTC (RFC
// 3339 is accepted too); "" is the zero time.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation(TimeLayout, s, time.UTC); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", s, time.UTC); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("timestamp %.40q is not YYYY-MM-DD HH:MM:SS", s)
}

// list is a collection that may come as an array, an empty object {} or
// null (contract §1: an empty page can be "data": {}).
type list[T any] []T

// UnmarshalJSON implements json.Unmarshaler.
func (l *list[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*l = nil
		return nil
	}
	if b[0] == '{' {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		if len(m) == 0 {
			*l = nil
			return nil
		}
		// A single object where a collection was expected (some
		// single-item answers): take it as a one-element list.
		var one T
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*l = list[T]{one}
		return nil
	}
	if b[0] != '[' {
		return errors.New("collection is neither an array nor an object")
	}
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	*l = out
	return nil
}

// envelope is the {"data": …, "total": …} wrapper of every answer.
type envelope[T any] struct {
	Data   T        `json:"data"`
	Total  *flexInt `json:"total"`
	Limit  *flexInt `json:"limit"`
	Offset *flexInt `json:"offset"`
}

// wireIndicator is an indicator as the API sends it: A and S are
// list[sourcedRow[list[flexName]]] and list[flexName], which take the
// quirks, or []sourcedRow[[]wireSource] and []wireSource, which decode
// faster when there are none.
type wireIndicator[A ~[]sourcedRow[S], S list[flexName] | []wireSource] struct {
	ID         flexInt   `json:"id"`
	Value      string    `json:"value"`
	Type       flexName  `json:"type"`
	TypeID     flexInt   `json:"type_id"`
	Status     flexName  `json:"status"`
	StatusID   flexInt   `json:"status_id"`
	Score      flexScore `json:"score"`
	CreatedAt  flexTime  `json:"created_at"`
	UpdatedAt  flexTime  `json:"updated_at"`
	Attributes A         `json:"attributes"`
	Sources    S         `json:"sources"`
}

// wireAttribute is an attribute row as the API sends it.
type wireAttribute struct {
	ID    flexInt `json:"id"`
	Name  string  `json:"name"`
	Value flexStr `json:"value"`
}

// sourcedRow is an attribute row as the API sends it, with its own
// sources when it was read with them (GET …/attributes?with=sources,
// with=attributes.sources); Sources is nil when the row came without
// them.
type sourcedRow[S list[flexName] | []wireSource] struct {
	wireAttribute
	Sources *S `json:"sources"`
}

// attribute converts a row: Sources nil when the row came without its
// sources, else the names, empty (not nil) when it lists none.
func (w *sourcedRow[S]) attribute() Attribute {
	a := Attribute{ID: int64(w.ID), Name: w.Name, Value: string(w.Value)}
	if w.Sources != nil {
		a.Sources = sourceNames(*w.Sources)
		if a.Sources == nil {
			a.Sources = []string{}
		}
	}
	return a
}

// flexStr is a string value that may be sent as a number or a boolean.
type flexStr string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexStr) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*f = ""
	case len(b) > 0 && b[0] == '"':
		s, ok := jsonlit.String(b)
		if !ok {
			var v string
			return cmp.Or(json.Unmarshal(b, &v), errors.New("attribute value is not a string"))
		}
		*f = flexStr(s)
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		return errors.New("attribute value is not a scalar")
	default:
		*f = flexStr(b)
	}
	return nil
}

// lenientIndicator decodes every shape of indicator the API sends;
// plainIndicator only those whose collections are arrays or null, without
// a nested json.Unmarshal per collection.
type (
	lenientIndicator = wireIndicator[list[sourcedRow[list[flexName]]], list[flexName]]
	plainIndicator   = wireIndicator[[]sourcedRow[[]wireSource], []wireSource]
)

// wireSource is a source as the API sends it within an indicator, when it
// is an object.
type wireSource struct {
	ID   flexInt `json:"id"` // Unused, but checked as list[flexName] does.
	Name string  `json:"name"`
}

// sourceNames returns the non-empty source names of a list of sources.
func sourceNames[S list[flexName] | []wireSource](sources S) []string {
	if len(sources) == 0 {
		return nil
	}
	out := make([]string, 0, len(sources))
	add := func(name string) {
		if name != "" {
			out = append(out, name)
		}
	}
	switch s := any(sources).(type) {
	case list[flexName]:
		for _, n := range s {
			add(n.Name)
		}
	case []wireSource:
		for _, n := range s {
			add(n.Name)
		}
	}
	return out
}

func (w *wireIndicator[A, S]) indicator() Indicator {
	in := Indicator{
		ID:        int64(w.ID),
		Value:     w.Value,
		Type:      w.Type.Name,
		TypeID:    int64(w.TypeID),
		Status:    w.Status.Name,
		StatusID:  int64(w.StatusID),
		Score:     float64(w.Score),
		CreatedAt: time.Time(w.CreatedAt),
		UpdatedAt: time.Time(w.UpdatedAt),
	}
	if in.TypeID == 0 {
		in.TypeID = int64(w.Type.ID)
	}
	if in.StatusID == 0 {
		in.StatusID = int64(w.Status.ID)
	}
	if len(w.Attributes) > 0 {
		in.Attributes = make([]Attribute, len(w.Attributes))
		for i := range w.Attributes {
			in.Attributes[i] = w.Attributes[i].attribute()
		}
	}
	in.Sources = sourceNames(w.Sources)
	return in
}

// DecodeIndicators decodes an answer of the indicator routes (query, list,
// get by id, consume, export by hash): the envelope with data as an array,
// a single object, {} or null. It returns the indicators and the envelope's
// total (-1 when absent). It is what [Client.Query] uses, exported for
// tests and tools that read saved answers.
//
// A page is first decoded as what the API almost always sends, an array of
// indicators with array collections, in one pass; only when that fails is
// it decoded again with every quirk handled (data or a collection as {} or
// a single object), which is also what reports the error of a bad page.
func DecodeIndicators(body []byte) ([]Indicator, int64, error) {
	if out, total, err := decodeIndicators[[]plainIndicator](body); err == nil {
		return out, total, nil
	}
	return decodeIndicators[list[lenientIndicator]](body)
}

func decodeIndicators[L ~[]wireIndicator[A, S], A ~[]sourcedRow[S], S list[flexName] | []wireSource](body []byte) ([]Indicator, int64, error) {
	var env envelope[L]
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, -1, err
	}
	out := make([]Indicator, len(env.Data))
	for i := range env.Data {
		out[i] = env.Data[i].indicator()
	}
	total := int64(-1)
	if env.Total != nil {
		total = int64(*env.Total)
	}
	return out, total, nil
}

// DecodeIndicator decodes one indicator object, without envelope (a line of
// an NDJSON export).
func DecodeIndicator(b []byte) (Indicator, error) {
	var w lenientIndicator
	if err := json.Unmarshal(b, &w); err != nil {
		return Indicator{}, err
	}
	return w.indicator(), nil
}
