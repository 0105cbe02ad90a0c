package misp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// AddResult sorts the attributes sent to [Client.AddAttributes] by outcome.
// Indexes point into the submitted slice; every index is in exactly one of
// Saved, Existing, Merged and Rejected.
type AddResult struct {
	// Saved are the attributes this call stored.
	Saved []int
	// Existing are the attributes MISP refused only because they are
	// already there ("A similar attribute already exists for this event.",
	// "The UUID provided is not unique"): a retry of an earlier call. They
	// count as done. MISP says so with both messages: the UUID is ours and
	// the value is there.
	Existing []int
	// Merged are the attributes MISP refused only as "A similar attribute
	// already exists for this event." while their UUID is new to it: the
	// event holds another value MISP's duplicate rule takes for the same
	// (it ignores case and accents, misp.md correction 1), so this exact
	// value is not in MISP. They are done, but not as Existing.
	Merged []int
	// Rejected are the attributes MISP refused for another reason, which
	// a retry will not change: dead-letter them.
	Rejected []Rejection
	// Attributes are the saved attributes as MISP returned them (ids,
	// values after MISP's normalisation), in MISP's order.
	Attributes []Attribute
}

// Rejection is one attribute MISP refused, with its reasons.
type Rejection struct {
	// Index points into the submitted slice.
	Index int
	// Fields holds MISP's reasons, field → messages, e.g. "value" →
	// ["Checksum has an invalid length or format (expected: 64 hexadecimal
	// characters). …"].
	Fields map[string][]string
}

// Reason renders the reasons as one line: "field: message; …".
func (r Rejection) Reason() string { return summary(r.Fields) }

// AddAttributes adds attributes to an event (by id or UUID) with one POST
// /attributes/add/{event} carrying a JSON array. MISP saves them one by one,
// with no transaction, so a timeout or 5xx can leave the batch partly
// saved: give every attribute a deterministic UUID ([AttributeUUID]) and
// retry the whole batch; the attributes already stored then come back in
// AddResult.Existing.
//
// Per-attribute refusals are not errors: they are sorted into the result,
// whether MISP answered 200 with "errors" (some saved) or 403 with saved
// false (none saved). The error is for the call as a whole: a wrong key
// (ErrAuth), a missing permission (ErrForbidden), an unknown event
// (ErrNotFound), a body too large (ErrTooLarge, send smaller chunks), 5xx or
// 429 (transient), an undecodable answer.
func (c *Client) AddAttributes(ctx context.Context, event string, attrs []Attribute) (AddResult, error) {
	const op = "misp: add attributes"
	if len(attrs) == 0 {
		return AddResult{}, nil
	}
	sent := make([]Attribute, len(attrs))
	for i, at := range attrs {
		at.UUID = strings.ToLower(at.UUID)
		sent[i] = at
	}
	a, err := c.call(ctx, op, http.MethodPost, "/attributes/add/"+url.PathEscape(event), sent)
	if err != nil {
		return AddResult{}, err
	}
	var body struct {
		Attribute json.RawMessage `json:"Attribute"`
		Errors    json.RawMessage `json:"errors"`
	}
	switch {
	case a.ok():
		if err := decode(op, a, &body); err != nil {
			return AddResult{}, err
		}
	case a.status == http.StatusForbidden:
		eb, ok := parseErrorBody(a)
		if !ok || !eb.validation() {
			return AddResult{}, c.apiError(op, a, ErrAuth)
		}
		body.Errors = eb.Errors
	default:
		return AddResult{}, c.apiError(op, a, ErrForbidden)
	}
	res, err := sortOutcomes(sent, body.Attribute, body.Errors, a.ok())
	if err != nil {
		return AddResult{}, &httpx.DecodeError{Op: op, Err: err}
	}
	return res, nil
}

// sortOutcomes builds the AddResult from the Attribute and errors parts of
// an answer. anySaved is false for a 403 (nothing was saved).
func sortOutcomes(sent []Attribute, rawAttrs, rawErrs json.RawMessage, anySaved bool) (AddResult, error) {
	var res AddResult
	saved, err := decodeAttributes(rawAttrs)
	if err != nil {
		return res, err
	}
	if anySaved {
		res.Attributes = saved
	}
	perIndex, general, err := indexErrors(rawErrs)
	if err != nil {
		return res, err
	}
	n := len(sent)
	for i := range perIndex {
		if i < 0 || i >= n {
			return res, errors.New("errors name attribute_" + strconv.Itoa(i) + ", beyond the " + strconv.Itoa(n) + " sent")
		}
	}
	if general != nil && n == 1 {
		perIndex[0] = general
		general = nil
	}

	// Which were saved: by UUID when every returned attribute matches one
	// sent, else every index without an error.
	isSaved := make([]bool, n)
	if anySaved {
		if byUUID, ok := matchByUUID(sent, res.Attributes); ok {
			isSaved = byUUID
		} else {
			if general != nil {
				return res, errors.New("errors are not keyed by attribute index and saved attributes can not be matched by uuid")
			}
			for i := range isSaved {
				_, failed := perIndex[i]
				isSaved[i] = !failed
			}
		}
	}
	for i := range n {
		fields, failed := perIndex[i]
		switch {
		case isSaved[i]:
			res.Saved = append(res.Saved, i)
		case failed && onlyDuplicates(fields) && !uuidTaken(fields):
			res.Merged = append(res.Merged, i)
		case failed && onlyDuplicates(fields):
			res.Existing = append(res.Existing, i)
		case failed:
			res.Rejected = append(res.Rejected, Rejection{Index: i, Fields: fields})
		case general != nil && onlyDuplicates(general) && !uuidTaken(general):
			res.Merged = append(res.Merged, i)
		case general != nil && onlyDuplicates(general):
			res.Existing = append(res.Existing, i)
		case general != nil:
			res.Rejected = append(res.Rejected, Rejection{Index: i, Fields: general})
		default:
			res.Rejected = append(res.Rejected, Rejection{Index: i, Fields: map[string][]string{
				"error": {"not saved, and MISP gave no reason"},
			}})
		}
	}
	return res, nil
}

// decodeAttributes reads the Attribute part: an object for one saved
// attribute, an array for several, absent or null for none.
func decodeAttributes(raw json.RawMessage) ([]Attribute, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, nil
	case raw[0] == '[':
		var out []Attribute
		err := json.Unmarshal(raw, &out)
		return out, err
	case raw[0] == '{':
		var one Attribute
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, err
		}
		return []Attribute{one}, nil
	}
	return nil, errors.New("Attribute is neither an object nor an array")
}

// indexErrors reads the errors part: {"attribute_N": {...}} per submitted
// index, or (one attribute sent, or a generic failure) bare fields, or a
// string.
func indexErrors(raw json.RawMessage) (map[int]map[string][]string, map[string][]string, error) {
	perIndex := map[int]map[string][]string{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || string(raw) == "[]" || string(raw) == "{}" {
		return perIndex, nil, nil
	}
	if raw[0] != '{' {
		return perIndex, flattenErrors(raw), nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, err
	}
	var general map[string][]string
	for k, v := range m {
		if idx, ok := strings.CutPrefix(k, "attribute_"); ok {
			if i, err := strconv.Atoi(idx); err == nil {
				fields := flattenErrors(v)
				if len(fields) == 0 {
					fields = map[string][]string{"error": {"not saved, and MISP gave no reason"}}
				}
				perIndex[i] = fields
				continue
			}
		}
		if general == nil {
			general = map[string][]string{}
		}
		sub := map[string][]string{}
		flattenInto(sub, k, v)
		for f, msgs := range sub {
			general[f] = append(general[f], msgs...)
		}
	}
	return perIndex, general, nil
}

// matchByUUID marks the sent attributes whose UUID came back. It succeeds
// only when every sent attribute has a UUID and every returned one matches.
func matchByUUID(sent, got []Attribute) ([]bool, bool) {
	pos := make(map[string]int, len(sent))
	for i, at := range sent {
		if at.UUID == "" {
			return nil, false
		}
		pos[at.UUID] = i
	}
	out := make([]bool, len(sent))
	for _, at := range got {
		i, ok := pos[strings.ToLower(at.UUID)]
		if !ok {
			return nil, false
		}
		out[i] = true
	}
	return out, true
}

// Done returns the indexes that need no further attempt: saved now or
// already there, sorted.
func (r AddResult) Done() []int {
	out := make([]int, 0, len(r.Saved)+len(r.Existing)+len(r.Merged))
	out = append(out, r.Saved...)
	out = append(out, r.Existing...)
	out = append(out, r.Merged...)
	sort.Ints(out)
	return out
}
