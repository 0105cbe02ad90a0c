package threatq

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// ErrNotFound says a named thing does not exist on the instance: a saved
// search, an indicator status, a signature type. Callers can fall back, e.g.
// from the "Suricata" signature type to "Snort".
var ErrNotFound = errors.New("threatq: not found")

// ErrCredentials says the token endpoint refused the credentials (a 4xx
// answer, or a redirect): wrong password or client id, a disabled user or
// client. It is a configuration error; retrying does not help.
var ErrCredentials = errors.New("threatq: credentials rejected")

// ErrTooMany says a batch is larger than the API takes in one call. Split
// it; the error is permanent, so pkg/bus's Bisect does.
var ErrTooMany = errors.New("threatq: batch too large")

// UnknownStatusError is a configured status name the instance does not
// have, as spelt: ThreatQ's own SDK resolves status names exactly
// (contracts/threatq.md, corrections 4). It lists the instance's statuses
// of that kind, so the message says what to write instead.
type UnknownStatusError struct {
	// Var is the setting that names the status, e.g. CTR_STATUS.
	Var string
	// Name is the name configured.
	Name string
	// Kind is "indicator" or "signature".
	Kind string
	// Available are the instance's statuses of that kind, as it spells
	// them.
	Available []string
}

// Error implements error.
func (e *UnknownStatusError) Error() string {
	return e.Var + " " + strconv.Quote(e.Name) + ": ThreatQ has no " + e.Kind + " status of that name (names match exactly); its " +
		e.Kind + " statuses are: " + strings.Join(e.Available, ", ")
}

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *UnknownStatusError) Is(target error) bool { return target == ErrNotFound }

// ValidationError is a write ThreatQ refused as invalid: a 400 (or 422)
// whose body names the fields at fault, or a 2xx answer carrying an
// "errors" key. It is permanent: the same request fails again, so a batch
// writer bisects the batch to find the items at fault.
type ValidationError struct {
	// Op says what was being done.
	Op string
	// Fields maps a field (e.g. "value", "attributes.0.value") to
	// ThreatQ's messages about it, with quoted request data redacted. The
	// list form of errors is under the key "".
	Fields map[string][]string
	// Status is the HTTP side of the answer.
	Status *httpx.StatusError
}

// Error implements error.
func (e *ValidationError) Error() string { return e.Status.Error() }

// Unwrap returns the status error, so errors.As finds the
// [*httpx.StatusError] too.
func (e *ValidationError) Unwrap() error { return e.Status }

// Transient reports false: an invalid request stays invalid.
func (e *ValidationError) Transient() bool { return false }

// kindError joins a sentinel to the error that explains it, so that both
// errors.Is(err, sentinel) and errors.As(err, &statusErr) work.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// Transient reports false: the kinds used here are all permanent.
func (e *kindError) Transient() bool { return false }

// permanent marks err as permanent for httpx.IsTransient and pkg/bus.
func permanent(kind, err error) error { return &kindError{kind: kind, err: err} }

// maxDetail bounds the length of an error detail.
const maxDetail = 300

// quoted matches quoted text in an API message, which is where servers
// echo the values they were sent.
var quoted = regexp.MustCompile(`"[^"]*"|'[^']*'|“[^”]*”`)

// sanitize shortens an API message and redacts what it quotes.
func sanitize(s string) string {
	s = quoted.ReplaceAllString(strings.TrimSpace(s), `"…"`)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// apiErrors is what an error body of any of the three shapes of the
// contract (§8), or an OAuth error, can hold.
type apiErrors struct {
	Data struct {
		Errors json.RawMessage `json:"errors"`
	} `json:"data"`
	Errors           json.RawMessage `json:"errors"`
	Message          string          `json:"message"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// parseErrors reads the error fields of body: field messages (validation
// shape, list shape under "") and a one-line detail. It never returns the
// raw body.
func parseErrors(body []byte) (map[string][]string, string) {
	var e apiErrors
	if json.Unmarshal(body, &e) != nil {
		// An object whose data is not an object, or not JSON at all: try
		// the top-level keys alone.
		var top struct {
			Errors  json.RawMessage `json:"errors"`
			Message string          `json:"message"`
		}
		if json.Unmarshal(body, &top) != nil {
			return nil, ""
		}
		e.Errors, e.Message = top.Errors, top.Message
	}
	fields := map[string][]string{}
	addErrors(fields, e.Data.Errors)
	addErrors(fields, e.Errors)
	if len(fields) == 0 {
		fields = nil
	}
	var parts []string
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		msgs := strings.Join(fields[k], "; ")
		if k == "" {
			parts = append(parts, msgs)
		} else {
			parts = append(parts, sanitize(k)+": "+msgs)
		}
	}
	for _, s := range []string{e.Message, e.Error, e.ErrorDescription} {
		if s = sanitize(s); s != "" && !slices.Contains(parts, s) {
			parts = append(parts, s)
		}
	}
	detail := strings.Join(parts, "; ")
	if len(detail) > maxDetail {
		detail = detail[:maxDetail] + "…"
	}
	return fields, detail
}

// addErrors adds the messages of an "errors" value: an object of field to
// message(s), or a list of messages and lists of message parts.
func addErrors(fields map[string][]string, raw json.RawMessage) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	var byField map[string]json.RawMessage
	if json.Unmarshal(raw, &byField) == nil {
		for k, v := range byField {
			fields[k] = append(fields[k], messages(v)...)
		}
		return
	}
	if msgs := messages(raw); len(msgs) > 0 {
		fields[""] = append(fields[""], msgs...)
	}
}

// messages flattens a message, a list of messages or a list of lists into
// sanitized strings.
func messages(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s = sanitize(s); s != "" {
			return []string{s}
		}
		return nil
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	var out []string
	for _, item := range list {
		out = append(out, messages(item)...)
	}
	return out
}

// hasErrorsKey reports whether a 2xx body carries a non-empty top-level
// "errors" key, which the vendor SDK treats as a failure.
func hasErrorsKey(body []byte) bool {
	var top struct {
		Errors json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	switch strings.TrimSpace(string(top.Errors)) {
	case "", "null", "[]", "{}", `""`, "false":
		return false
	}
	return true
}
