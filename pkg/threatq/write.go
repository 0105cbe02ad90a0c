package threatq

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// MaxConsumeSignatures is the most signatures [Client.ConsumeSignatures]
// sends in one call (the vendor SDK's batch size; larger payloads are
// refused by the server).
const MaxConsumeSignatures = 500

// IndicatorWrite is one indicator to upsert through the consume endpoint.
type IndicatorWrite struct {
	Value string
	// Type is the indicator type's name.
	Type string
	// Status is the status's name; StatusID, when not zero, is sent
	// instead. With neither, an existing indicator keeps its status and a
	// new one gets the instance's default.
	Status   string
	StatusID int
	// Source names the source the indicator and its attributes are
	// attributed to; empty attributes them to the API user's source.
	Source      string
	Description string
	// Attributes are added as rows; a row of the same name and value
	// already there is kept, not duplicated.
	Attributes []Attribute
}

// SignatureWrite is one signature to upsert through the consume endpoint.
type SignatureWrite struct {
	Name  string
	Value string
	// Type is the signature type's name ("Suricata", "Snort"); TypeID,
	// when not zero, is sent instead.
	Type   string
	TypeID int
	// Status is the status's name; StatusID, when not zero, is sent
	// instead.
	Status      string
	StatusID    int
	Source      string
	Description string
	Attributes  []Attribute
}

type wireRef struct {
	Name string `json:"name"`
}

type wireWriteAttr struct {
	Name    string    `json:"name"`
	Value   string    `json:"value"`
	Sources []wireRef `json:"sources,omitempty"`
}

type wireIndicatorWrite struct {
	Value       string          `json:"value"`
	Type        wireRef         `json:"type"`
	Status      *wireRef        `json:"status,omitempty"`
	StatusID    int             `json:"status_id,omitempty"`
	Description string          `json:"description,omitempty"`
	Sources     []wireRef       `json:"sources,omitempty"`
	Attributes  []wireWriteAttr `json:"attributes,omitempty"`
}

type wireSignatureWrite struct {
	Name        string          `json:"name"`
	Value       string          `json:"value"`
	Type        *wireRef        `json:"type,omitempty"`
	TypeID      int             `json:"type_id,omitempty"`
	Status      *wireRef        `json:"status,omitempty"`
	StatusID    int             `json:"status_id,omitempty"`
	Description string          `json:"description,omitempty"`
	Sources     []wireRef       `json:"sources,omitempty"`
	Attributes  []wireWriteAttr `json:"attributes,omitempty"`
}

// wireID is an item of a consume answer.
type wireID struct {
	ID    flexInt `json:"id"`
	Value string  `json:"value"`
	Name  string  `json:"name"`
}

func sourcesOf(source string) []wireRef {
	if source == "" {
		return nil
	}
	return []wireRef{{Name: source}}
}

func writeAttrs(as []Attribute, source string) []wireWriteAttr {
	if len(as) == 0 {
		return nil
	}
	out := make([]wireWriteAttr, len(as))
	for i, a := range as {
		out[i] = wireWriteAttr{Name: a.Name, Value: a.Value, Sources: sourcesOf(source)}
	}
	return out
}

func nameRef(name string) *wireRef {
	if name == "" {
		return nil
	}
	return &wireRef{Name: name}
}

// ConsumeIndicators upserts ws in one POST /api/indicators/consume call and
// returns their ids, in the order of ws. Consume is idempotent: resending
// an indicator returns its id and adds no attribute row twice. A batch
// refused as invalid is a [*ValidationError] (permanent), so the caller
// can bisect it to find the items at fault.
func (c *Client) ConsumeIndicators(ctx context.Context, ws []IndicatorWrite) ([]int64, error) {
	const op = "threatq: consume indicators"
	if len(ws) == 0 {
		return nil, nil
	}
	items := make([]wireIndicatorWrite, len(ws))
	for i, w := range ws {
		items[i] = wireIndicatorWrite{
			Value: w.Value, Type: wireRef{Name: w.Type}, Description: w.Description,
			Sources: sourcesOf(w.Source), Attributes: writeAttrs(w.Attributes, w.Source),
		}
		if w.StatusID != 0 {
			items[i].StatusID = w.StatusID
		} else {
			items[i].Status = nameRef(w.Status)
		}
	}
	keys := make([]string, len(ws))
	for i, w := range ws {
		keys[i] = w.Value
	}
	return c.consume(ctx, op, "/api/indicators/consume", items, keys)
}

// ConsumeSignatures upserts ws (at most [MaxConsumeSignatures]) in one POST
// /api/signatures/consume call and returns their ids, in the order of ws. A
// larger batch is refused without a call, with a permanent error wrapping
// [ErrTooMany]. A batch refused as invalid is a [*ValidationError].
func (c *Client) ConsumeSignatures(ctx context.Context, ws []SignatureWrite) ([]int64, error) {
	const op = "threatq: consume signatures"
	if len(ws) == 0 {
		return nil, nil
	}
	if len(ws) > MaxConsumeSignatures {
		return nil, permanent(ErrTooMany, fmt.Errorf("%s: %d signatures, at most %d per call: %w", op, len(ws), MaxConsumeSignatures, ErrTooMany))
	}
	items := make([]wireSignatureWrite, len(ws))
	for i, w := range ws {
		items[i] = wireSignatureWrite{
			Name: w.Name, Value: w.Value, Description: w.Description,
			Sources: sourcesOf(w.Source), Attributes: writeAttrs(w.Attributes, w.Source),
		}
		if w.TypeID != 0 {
			items[i].TypeID = w.TypeID
		} else {
			items[i].Type = nameRef(w.Type)
		}
		if w.StatusID != 0 {
			items[i].StatusID = w.StatusID
		} else {
			items[i].Status = nameRef(w.Status)
		}
	}
	keys := make([]string, len(ws))
	for i, w := range ws {
		keys[i] = w.Value
	}
	return c.consume(ctx, op, "/api/signatures/consume", items, keys)
}

// matchIDs returns the ids of a consume answer in the order of the request:
// by position when the answer has one item per request item, else by value.
func matchIDs(op string, got []wireID, keys []string, key func(wireID) string) ([]int64, error) {
	ids := make([]int64, len(keys))
	if len(got) == len(keys) {
		for i, g := range got {
			ids[i] = int64(g.ID)
		}
	} else {
		byKey := make(map[string]int64, len(got))
		for _, g := range got {
			byKey[key(g)] = int64(g.ID)
		}
		for i, k := range keys {
			ids[i] = byKey[k]
		}
	}
	for _, id := range ids {
		if id == 0 {
			return nil, &httpx.DecodeError{Op: op, Err: fmt.Errorf("answer gives ids for %d of %d items", countNonZero(ids), len(ids))}
		}
	}
	return ids, nil
}

func countNonZero(ids []int64) int {
	n := 0
	for _, id := range ids {
		if id != 0 {
			n++
		}
	}
	return n
}

func attributesPath(indicatorID int64) string {
	return "/api/indicators/" + strconv.FormatInt(indicatorID, 10) + "/attributes"
}

// DeleteIndicatorAttribute deletes an attribute row of an indicator
// (DELETE /api/indicators/{id}/attributes/{row}). A row already gone (404)
// counts as deleted, so a redelivered delete succeeds.
func (c *Client) DeleteIndicatorAttribute(ctx context.Context, indicatorID, rowID int64) error {
	const op = "threatq: delete indicator attribute"
	r := request{op: op, method: http.MethodDelete, path: attributesPath(indicatorID) + "/" + strconv.FormatInt(rowID, 10), idempotent: true}
	a, err := c.call(ctx, r)
	if err != nil {
		return err
	}
	if a.status == http.StatusNotFound {
		return nil
	}
	return c.check(op, a)
}

// IndicatorAttributes returns every attribute row of an indicator, read
// page by page from GET /api/indicators/{id}/attributes.
func (c *Client) IndicatorAttributes(ctx context.Context, indicatorID int64) ([]Attribute, error) {
	const op = "threatq: list indicator attributes"
	const limit = 1000
	var out []Attribute
	for offset := 0; ; {
		var env envelope[list[wireAttribute]]
		r := request{op: op, method: http.MethodGet, path: attributesPath(indicatorID), idempotent: true,
			query: url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}}
		if err := c.json(ctx, r, &env); err != nil {
			return nil, err
		}
		for _, w := range env.Data {
			out = append(out, Attribute{ID: int64(w.ID), Name: w.Name, Value: string(w.Value)})
		}
		offset += len(env.Data)
		if len(env.Data) == 0 || (env.Total != nil && int64(offset) >= int64(*env.Total)) || (env.Total == nil && len(env.Data) < limit) {
			return out, nil
		}
	}
}

// AddIndicatorAttribute adds an attribute row to an indicator (POST
// /api/indicators/{id}/attributes), attributed to source when not empty,
// and returns the row's id.
func (c *Client) AddIndicatorAttribute(ctx context.Context, indicatorID int64, a Attribute, source string) (int64, error) {
	const op = "threatq: add indicator attribute"
	body, err := encode(op, wireWriteAttr{Name: a.Name, Value: a.Value, Sources: sourcesOf(source)})
	if err != nil {
		return 0, err
	}
	var env envelope[list[wireAttribute]]
	if err := c.json(ctx, request{op: op, method: http.MethodPost, path: attributesPath(indicatorID), body: body}, &env); err != nil {
		return 0, err
	}
	if len(env.Data) == 0 {
		return 0, &httpx.DecodeError{Op: op, Err: errors.New("answer has no attribute row")}
	}
	return int64(env.Data[0].ID), nil
}

// SetAttributes gives an indicator exactly one value per attribute name of
// attrs (the last one, when a name repeats): it lists the indicator's rows,
// adds the missing (name, value) rows attributed to source, then deletes
// the rows of those names holding other values. Names are matched
// case-insensitively. It is idempotent: run twice, the second run changes
// nothing. Rows of other names are left alone.
func (c *Client) SetAttributes(ctx context.Context, indicatorID int64, attrs []Attribute, source string) error {
	if len(attrs) == 0 {
		return nil
	}
	want, order := wanted(attrs)
	rows, err := c.IndicatorAttributes(ctx, indicatorID)
	if err != nil {
		return fmt.Errorf("set attributes of indicator %d: %w", indicatorID, err)
	}
	stale, have := sortRows(rows, want)
	for _, k := range order {
		if have[k] {
			continue
		}
		if _, err := c.AddIndicatorAttribute(ctx, indicatorID, want[k], source); err != nil {
			return fmt.Errorf("set attribute %q of indicator %d: %w", want[k].Name, indicatorID, err)
		}
	}
	for _, row := range stale {
		if err := c.DeleteIndicatorAttribute(ctx, indicatorID, row); err != nil {
			return fmt.Errorf("remove old attribute row %d of indicator %d: %w", row, indicatorID, err)
		}
	}
	return nil
}

// StaleAttributeRows returns the ids of the indicator's rows that hold,
// under one of attrs' names, a value attrs does not give that name, for a
// caller that adds attrs another way (the consume route). A name may have
// several values in attrs (several CTR modules answer for one indicator,
// and ThreatQ keeps one row per name and value): each is kept.
func (c *Client) StaleAttributeRows(ctx context.Context, indicatorID int64, attrs []Attribute) ([]int64, error) {
	if len(attrs) == 0 {
		return nil, nil
	}
	values := make(map[string]map[string]bool, len(attrs))
	for _, a := range attrs {
		k := attributeKey(a.Name)
		if values[k] == nil {
			values[k] = map[string]bool{}
		}
		values[k][a.Value] = true
	}
	rows, err := c.IndicatorAttributes(ctx, indicatorID)
	if err != nil {
		return nil, fmt.Errorf("read attribute rows of indicator %d: %w", indicatorID, err)
	}
	var stale []int64
	for _, r := range rows {
		if vs, ours := values[attributeKey(r.Name)]; ours && !vs[r.Value] {
			stale = append(stale, r.ID)
		}
	}
	return stale, nil
}

// attributeKey is an attribute name as ThreatQ compares names: case and
// surrounding spaces do not count.
func attributeKey(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// wanted maps each name of attrs to the attribute it should hold (the last
// one, when a name repeats), and lists the names in first-seen order.
func wanted(attrs []Attribute) (map[string]Attribute, []string) {
	want := make(map[string]Attribute, len(attrs))
	var order []string
	for _, a := range attrs {
		k := attributeKey(a.Name)
		if _, ok := want[k]; !ok {
			order = append(order, k)
		}
		want[k] = a
	}
	return want, order
}

// sortRows returns the rows holding another value under a wanted name, and
// the wanted names some row already holds with their value.
func sortRows(rows []Attribute, want map[string]Attribute) (stale []int64, have map[string]bool) {
	have = map[string]bool{}
	for _, r := range rows {
		k := attributeKey(r.Name)
		w, ok := want[k]
		switch {
		case !ok:
		case r.Value == w.Value:
			have[k] = true
		default:
			stale = append(stale, r.ID)
		}
	}
	return stale, have
}

// SetIndicatorStatus sets an indicator's status by id (PUT
// /api/indicators/{id} with {"status_id": N}); resolve the id by name with
// [Client.IndicatorStatusID].
func (c *Client) SetIndicatorStatus(ctx context.Context, indicatorID int64, statusID int) error {
	const op = "threatq: set indicator status"
	body, err := encode(op, map[string]int{"status_id": statusID})
	if err != nil {
		return err
	}
	r := request{op: op, method: http.MethodPut, path: "/api/indicators/" + strconv.FormatInt(indicatorID, 10), body: body, idempotent: true}
	return c.json(ctx, r, nil)
}

// Indicator returns one indicator with its attributes, sources, score,
// type and status (GET /api/indicators/{id}).
func (c *Client) Indicator(ctx context.Context, id int64) (Indicator, error) {
	const op = "threatq: get indicator"
	r := request{op: op, method: http.MethodGet, path: "/api/indicators/" + strconv.FormatInt(id, 10), idempotent: true,
		query: url.Values{"with": {"attributes,sources,score,type,status"}}}
	a, err := c.call(ctx, r)
	if err != nil {
		return Indicator{}, err
	}
	if err := c.check(op, a); err != nil {
		return Indicator{}, err
	}
	inds, _, err := DecodeIndicators(a.body)
	if err != nil {
		return Indicator{}, &httpx.DecodeError{Op: op, Err: err}
	}
	if len(inds) != 1 {
		return Indicator{}, &httpx.DecodeError{Op: op, Err: fmt.Errorf("answer holds %d indicators", len(inds))}
	}
	if err := c.fillNames(ctx, inds); err != nil {
		return Indicator{}, err
	}
	return inds[0], nil
}

// consume posts items to a consume route and returns the ids of the
// objects it answers, in the order of keys (each item's value).
func (c *Client) consume(ctx context.Context, op, path string, items any, keys []string) ([]int64, error) {
	body, err := encode(op, items)
	if err != nil {
		return nil, err
	}
	var env envelope[list[wireID]]
	if err := c.json(ctx, request{op: op, method: http.MethodPost, path: path, body: body}, &env); err != nil {
		return nil, err
	}
	return matchIDs(op, env.Data, keys, func(w wireID) string { return w.Value })
}
