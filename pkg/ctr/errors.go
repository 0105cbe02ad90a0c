package ctr

import (
	"errors"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// ErrRegion says a region is not one of us, eu and apjc.
var ErrRegion = errors.New("ctr: unknown region")

// ErrCredentials says the token endpoint refused the client id and
// password (a 4xx answer): wrong, deleted or disabled API client. It is a
// configuration error, fatal for a run; retrying does not help.
var ErrCredentials = errors.New("ctr: credentials rejected")

// ErrUnauthorized says an API call was answered 401 even with a freshly
// minted token.
var ErrUnauthorized = errors.New("ctr: unauthorized")

// ErrMissingScope says the API client lacks a scope the route needs (403
// missing_scope): the client must be granted Enrich (enrich:read). It is a
// configuration error; [*Error.MissingScopes] names the scopes.
var ErrMissingScope = errors.New("ctr: missing scope")

// ErrBadRequest says CTR refused the request body (400): a malformed
// observable or one of a type it does not know. Do not retry the same
// batch.
var ErrBadRequest = errors.New("ctr: bad request")

// ErrTooLarge says CTR refused a single observable as too large (413).
// Larger batches are split in half and retried before this is returned.
var ErrTooLarge = errors.New("ctr: request too large")

// ErrBatchTooLong says Observe or Deliberate was given more observables
// than BatchSize: chunking is the caller's.
var ErrBatchTooLong = errors.New("ctr: more observables than the batch size")

// Fatal reports whether err says CTR will refuse every call the same way,
// whatever is asked: credentials refused (ErrCredentials, ErrUnauthorized)
// or a missing scope (ErrMissingScope). Such an error is not a property of
// one observable (ctr.md, corrections 3): retrying observable by
// observable only spends the org's quota. The reason is err's text.
func Fatal(err error) bool {
	return errors.Is(err, ErrCredentials) || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrMissingScope)
}

// Error is an error answer CTR classified beyond its status: it wraps one
// of the sentinels above (Kind) and the [*httpx.StatusError] (Status), so
// both errors.Is(err, ErrMissingScope) and httpx.IsTransient(err) work.
type Error struct {
	// Kind is ErrCredentials, ErrUnauthorized, ErrMissingScope,
	// ErrBadRequest or ErrTooLarge.
	Kind error
	// Status is the HTTP side: operation, status code and CTR's message.
	Status *httpx.StatusError
	// MissingScopes lists the scopes a 403 missing_scope answer named.
	MissingScopes []string
}

// Error implements error.
func (e *Error) Error() string { return e.Status.Error() }

// Unwrap returns the sentinel and the status error.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Status} }
