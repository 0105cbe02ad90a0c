package misp

import (
	"errors"
	"sort"
	"strings"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// ErrAuth says MISP refused the API key: wrong, disabled, expired or not
// allowed from this address. It is fatal for a run.
var ErrAuth = errors.New("misp: authentication rejected")

// ErrForbidden says the key is valid but its role may not do this, e.g.
// modify an event of another organisation. It is fatal for a run.
var ErrForbidden = errors.New("misp: permission denied")

// ErrEventBlocked says the event UUID is on MISP's event blocklist, as every
// deleted event's UUID is by default: "Event blocked by event blocklist."
// or, before MISP 2.4.150, a 403 saved:false with empty errors. Move to
// another UUID (a new generation of the day's chunk) and log it. "Event
// blocked by organisation blocklist." is ErrForbidden: no UUID helps.
var ErrEventBlocked = errors.New("misp: event blocked by blocklist")

// ErrValidation says MISP refused the data (HTTP 403 with saved:false and
// errors). [*Error.Fields] holds MISP's reasons. Do not retry the same data.
var ErrValidation = errors.New("misp: validation failed")

// ErrNotFound says the event (or attribute) does not exist or is not
// visible to the user.
var ErrNotFound = errors.New("misp: not found")

// ErrTooLarge says the request body was over a limit (HTTP 413, usually a
// reverse proxy's). Send smaller chunks.
var ErrTooLarge = errors.New("misp: request too large")

// ErrInvalidValue says a value can not be stored under its MISP type; see
// [InvalidValueError] for why.
var ErrInvalidValue = errors.New("misp: invalid value")

// ErrUnknownType says a MISP attribute type is not one [Normalize] knows.
var ErrUnknownType = errors.New("misp: unknown attribute type")

// Error is an error answer MISP classified beyond its status: it wraps one
// of the sentinels above (Kind) and the [*httpx.StatusError] (Status), so
// both errors.Is(err, ErrAuth) and httpx.IsTransient(err) work.
type Error struct {
	// Kind is ErrAuth, ErrForbidden, ErrEventBlocked, ErrValidation,
	// ErrNotFound or ErrTooLarge.
	Kind error
	// Status is the HTTP side: operation, status code and MISP's message.
	Status *httpx.StatusError
	// Fields holds validation reasons, field name → messages, for
	// ErrValidation (e.g. "value" → ["A similar attribute already exists
	// for this event."]). Nested maps are flattened with dots
	// ("Event.threat_level_id").
	Fields map[string][]string
}

// Error implements error.
func (e *Error) Error() string { return e.Status.Error() }

// Unwrap returns the sentinel and the status error.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Status} }

// InvalidValueError says why [Normalize] refused a value. Reason is, where
// MISP has one, the message MISP itself would give.
type InvalidValueError struct {
	// Type is the MISP attribute type.
	Type string
	// Reason says what is wrong, without repeating the value.
	Reason string
}

// Error implements error.
func (e *InvalidValueError) Error() string {
	return "misp: invalid " + e.Type + " value: " + e.Reason
}

// Is reports whether target is ErrInvalidValue.
func (e *InvalidValueError) Is(target error) bool { return target == ErrInvalidValue }

// Messages MISP uses for an attribute that is already stored: on a retry
// they mean success.
const (
	msgDuplicateValue = "A similar attribute already exists for this event."
	msgDuplicateUUID  = "The UUID provided is not unique"
)

// isDuplicateMessage reports whether a MISP validation message says the
// attribute (value or uuid) is already there. MISP's messages are stable,
// untranslated English.
func isDuplicateMessage(m string) bool {
	return strings.Contains(m, "already exists") || strings.Contains(m, "not unique")
}

// onlyDuplicates reports whether every message in fields says "already
// there" (and there is at least one).
func onlyDuplicates(fields map[string][]string) bool {
	n := 0
	for _, msgs := range fields {
		for _, m := range msgs {
			if !isDuplicateMessage(m) {
				return false
			}
			n++
		}
	}
	return n > 0
}

// uuidTaken reports whether MISP refused an attribute's UUID as not
// unique, i.e. the attribute sent (by its deterministic UUID) is stored.
func uuidTaken(fields map[string][]string) bool {
	for _, m := range fields["uuid"] {
		if strings.Contains(m, "not unique") {
			return true
		}
	}
	return false
}

// summary renders fields as "field: msg; field: msg", sorted.
func summary(fields map[string][]string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, m := range fields[k] {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(m)
		}
	}
	return b.String()
}
