package threatq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
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
	ID       flexInt `json:"id"`
	Value    string  `json:"value"`
	Name     string  `json:"name"`
	StatusID flexInt `json:"status_id"`
	Existing *bool   `json:"existing"`
}

// Consumed is what a consume answer says of one item.
type Consumed struct {
	// ID is the object's id.
	ID int64
	// StatusID is the object's status after the call, when the answer
	// says (0 when it does not): consume sets the status of new objects
	// only, so an existing one's may differ from the one sent.
	StatusID int
	// Existing, when the answer says, tells whether the object existed
	// before the call.
	Existing *bool
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
	return idsOf(c.UpsertIndicators(ctx, ws))
}

// UpsertIndicators is [Client.ConsumeIndicators] with what the answer
// says of each item. The status sent applies to new indicators only; set
// an existing one's with [Client.SetIndicatorStatus].
func (c *Client) UpsertIndicators(ctx context.Context, ws []IndicatorWrite) ([]Consumed, error) {
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
	return idsOf(c.UpsertSignatures(ctx, ws))
}

// UpsertSignatures is [Client.ConsumeSignatures] with what the answer says
// of each item. The status sent applies to new signatures only; set an
// existing one's with [Client.SetSignatureStatus].
func (c *Client) UpsertSignatures(ctx context.Context, ws []SignatureWrite) ([]Consumed, error) {
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

func idsOf(cs []Consumed, err error) ([]int64, error) {
	if err != nil || cs == nil {
		return nil, err
	}
	ids := make([]int64, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids, nil
}

// matchIDs returns the items of a consume answer in the order of the
// request: by position when the answer has one item per request item,
// else by value.
func matchIDs(op string, got []wireID, keys []string, key func(wireID) string) ([]Consumed, error) {
	out := make([]Consumed, len(keys))
	conv := func(g wireID) Consumed {
		return Consumed{ID: int64(g.ID), StatusID: int(g.StatusID), Existing: g.Existing}
	}
	if len(got) == len(keys) {
		for i, g := range got {
			out[i] = conv(g)
		}
	} else {
		byKey := make(map[string]Consumed, len(got))
		for _, g := range got {
			byKey[key(g)] = conv(g)
		}
		for i, k := range keys {
			out[i] = byKey[k]
		}
	}
	ids := make([]int64, len(out))
	for i, c := range out {
		ids[i] = c.ID
	}
	for _, id := range ids {
		if id == 0 {
			return nil, &httpx.DecodeError{Op: op, Err: fmt.Errorf("answer gives ids for %d of %d items", countNonZero(ids), len(ids))}
		}
	}
	return out, nil
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

// IndicatorAttributes returns every attribute row of an indicator with
// the row's own sources, read page by page from GET
// /api/indicators/{id}/attributes?with=sources. A row listing no source
// has Sources empty, not nil.
func (c *Client) IndicatorAttributes(ctx context.Context, indicatorID int64) ([]Attribute, error) {
	const op = "threatq: list indicator attributes"
	const limit = 1000
	var out []Attribute
	for offset := 0; ; {
		var env envelope[list[sourcedRow[list[flexName]]]]
		r := request{op: op, method: http.MethodGet, path: attributesPath(indicatorID), idempotent: true,
			query: url.Values{"with": {"sources"}, "limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}}
		if err := c.json(ctx, r, &env); err != nil {
			return nil, err
		}
		for i := range env.Data {
			a := env.Data[i].attribute()
			if a.Sources == nil {
				a.Sources = []string{} // Asked for: none listed.
			}
			out = append(out, a)
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

// SetAttributes writes attrs on an indicator as source's rows: it reads
// the indicator's rows with their sources, adds the missing (name, value)
// rows attributed to source, then deletes the rows [StaleRows] finds. It
// is idempotent: run twice, the second run changes nothing. Other
// sources' rows are left alone.
func (c *Client) SetAttributes(ctx context.Context, indicatorID int64, attrs []Attribute, source string) error {
	rows, err := c.IndicatorAttributes(ctx, indicatorID)
	if err != nil {
		return fmt.Errorf("set attributes of indicator %d: %w", indicatorID, err)
	}
	have := make(map[rowKey]bool, len(rows))
	for _, r := range rows {
		if slices.ContainsFunc(r.Sources, func(s string) bool { return sameSource(s, source) }) {
			have[keyOf(r)] = true
		}
	}
	for _, a := range attrs {
		if have[keyOf(a)] {
			continue
		}
		have[keyOf(a)] = true
		if _, err := c.AddIndicatorAttribute(ctx, indicatorID, a, source); err != nil {
			return fmt.Errorf("set attribute %q of indicator %d: %w", a.Name, indicatorID, err)
		}
	}
	for _, row := range StaleRows(rows, attrs, source) {
		if err := c.DeleteIndicatorAttribute(ctx, indicatorID, row); err != nil {
			return fmt.Errorf("remove old attribute row %d of indicator %d: %w", row, indicatorID, err)
		}
	}
	return nil
}

// StaleRowsOf reads an indicator's rows with their sources and returns
// the ones [StaleRows] finds: what a write of attrs under source, already
// upserted, leaves to delete.
func (c *Client) StaleRowsOf(ctx context.Context, indicatorID int64, attrs []Attribute, source string) ([]int64, error) {
	rows, err := c.IndicatorAttributes(ctx, indicatorID)
	if err != nil {
		return nil, fmt.Errorf("read attribute rows of indicator %d: %w", indicatorID, err)
	}
	return StaleRows(rows, attrs, source), nil
}

// StaleRows decides which of an indicator's rows a write of attrs under
// source replaces, for normal writes and replays alike: the rows whose
// sources are source alone and whose (name, value) attrs does not hold.
// A connector owns only the rows no other feed reports
// (contracts/threatq.md, corrections 2), so:
//   - a row that also lists another source is never stale: it stays, and
//     source stays listed on it (the API has no route to take a source
//     off an attribute row);
//   - a row listing no source, or read without its sources, is not ours;
//   - rows of names attrs does not write are stale too when only ours:
//     the write is the whole of what source says of the indicator.
//
// Names compare as [SameAttributeName] says, values exactly, source names
// ignoring case and surrounding space.
func StaleRows(rows []Attribute, attrs []Attribute, source string) []int64 {
	want := make(map[rowKey]bool, len(attrs))
	for _, a := range attrs {
		want[keyOf(a)] = true
	}
	var stale []int64
	for _, r := range rows {
		if r.ID <= 0 || len(r.Sources) == 0 || want[keyOf(r)] {
			continue
		}
		if !slices.ContainsFunc(r.Sources, func(s string) bool { return !sameSource(s, source) }) {
			stale = append(stale, r.ID)
		}
	}
	return stale
}

// rowKey is a (name, value) row as [StaleRows] compares rows.
type rowKey struct{ name, value string }

func keyOf(a Attribute) rowKey { return rowKey{attributeKey(a.Name), a.Value} }

// SameAttributeName reports whether two attribute names are one name, as
// ThreatQ treats them: case and surrounding spaces do not count.
func SameAttributeName(a, b string) bool { return attributeKey(a) == attributeKey(b) }

// attributeKey is an attribute name as ThreatQ compares names: case and
// surrounding spaces do not count.
func attributeKey(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

func sameSource(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

// SetIndicatorStatus sets an indicator's status by id (PUT
// /api/indicators/{id} with {"status_id": N}); resolve the id by name with
// [Client.IndicatorStatusID].
func (c *Client) SetIndicatorStatus(ctx context.Context, indicatorID int64, statusID int) error {
	r, err := indicatorStatusRequest(indicatorID, statusID)
	if err != nil {
		return err
	}
	return c.json(ctx, r, nil)
}

// indicatorStatusRequest is the PUT that sets an indicator's status.
func indicatorStatusRequest(indicatorID int64, statusID int) (request, error) {
	return statusRequest("threatq: set indicator status", "/api/indicators/"+strconv.FormatInt(indicatorID, 10), statusID)
}

// statusRequest is the PUT of {"status_id": N} to an object's path, the
// one form of status change both indicators and signatures take.
func statusRequest(op, path string, statusID int) (request, error) {
	body, err := encode(op, map[string]int{"status_id": statusID})
	if err != nil {
		return request{}, err
	}
	return request{op: op, method: http.MethodPut, path: path, body: body, idempotent: true}, nil
}

// SetIndicatorStatusRows sets an indicator's status as
// [Client.SetIndicatorStatus] does, asking ThreatQ to answer with the
// indicator's attribute rows and their own sources
// (?with=attributes.sources, contracts/threatq.md corrections 2 and
// §5.3), which spares the writer a read of the rows after a write.
//
// shown is false, and rows nil, when the answer does not show every row
// with its sources: an instance that ignores "with" on PUT, or an answer
// of another shape. The status is set all the same; read the rows with
// [Client.IndicatorAttributes]. A row listing no source has Sources empty,
// not nil, as there.
func (c *Client) SetIndicatorStatusRows(ctx context.Context, indicatorID int64, statusID int) (rows []Attribute, shown bool, err error) {
	r, err := indicatorStatusRequest(indicatorID, statusID)
	if err != nil {
		return nil, false, err
	}
	r.query = url.Values{"with": {"attributes.sources"}}
	a, err := c.call(ctx, r)
	if err != nil {
		return nil, false, err
	}
	if err := c.check(r.op, a); err != nil {
		return nil, false, err
	}
	rows, shown = embeddedRows(a.body)
	return rows, shown, nil
}

// embeddedRows reads the attribute rows an answer's indicator embeds,
// each with its sources. shown is false unless the answer is one
// indicator object whose "attributes" is there and every row of it
// carries "sources": a row without them cannot be told ours or another
// feed's, and [StaleRows] would keep it. The rows decode in one pass
// where the answer has none of the API's quirks, and leniently where it
// has.
func embeddedRows(body []byte) (rows []Attribute, shown bool) {
	var plain struct {
		Data struct {
			Attributes *[]sourcedRow[[]wireSource] `json:"attributes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &plain); err == nil {
		return sourcedRows(plain.Data.Attributes)
	}
	var lenient struct {
		Data struct {
			Attributes *list[sourcedRow[list[flexName]]] `json:"attributes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &lenient); err != nil || lenient.Data.Attributes == nil {
		return nil, false
	}
	return sourcedRows((*[]sourcedRow[list[flexName]])(lenient.Data.Attributes))
}

// sourcedRows converts rows read with their sources; shown is false when
// there are none or one came without its sources.
func sourcedRows[S list[flexName] | []wireSource](ws *[]sourcedRow[S]) (rows []Attribute, shown bool) {
	if ws == nil {
		return nil, false
	}
	rows = make([]Attribute, 0, len(*ws))
	for i := range *ws {
		a := (*ws)[i].attribute()
		if a.Sources == nil {
			return nil, false
		}
		rows = append(rows, a)
	}
	return rows, true
}

// SetSignatureStatus sets a signature's status by id (PUT
// /api/signatures/{id} with {"status_id": N}), as for indicators: consume
// leaves an existing signature's status alone (contracts/threatq.md,
// corrections 1, by analogy). Resolve the id with [Client.SignatureStatusID].
func (c *Client) SetSignatureStatus(ctx context.Context, signatureID int64, statusID int) error {
	r, err := statusRequest("threatq: set signature status", "/api/signatures/"+strconv.FormatInt(signatureID, 10), statusID)
	if err != nil {
		return err
	}
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
func (c *Client) consume(ctx context.Context, op, path string, items any, keys []string) ([]Consumed, error) {
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
