package httpx

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StatusError is an HTTP answer whose status code says the call did not
// succeed.
type StatusError struct {
	// Op says what was being done, e.g. "threatq: consume indicators".
	Op string
	// StatusCode is the HTTP status code of the answer.
	StatusCode int
	// Retry is the delay the server asked for in Retry-After, or zero.
	Retry time.Duration
	// Detail is a short summary of the answer's body, free of secrets and of
	// request data: clients fill it from the API's error fields, never with
	// the raw body.
	Detail string
}

// Error implements error.
func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: HTTP %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Retry > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.Retry)
	}
	return b.String()
}

// Transient reports whether the same call may succeed later: a timeout, a
// rate limit or a server-side failure.
func (e *StatusError) Transient() bool {
	switch {
	case e.StatusCode == http.StatusRequestTimeout,
		e.StatusCode == http.StatusTooEarly,
		e.StatusCode == http.StatusTooManyRequests:
		return true
	case e.StatusCode >= 500:
		return e.StatusCode != http.StatusNotImplemented
	}
	return false
}

// RetryAfter returns the delay the server asked for, or zero.
func (e *StatusError) RetryAfter() time.Duration { return e.Retry }

// DecodeError is an answer that could not be decoded: malformed JSON or an
// unexpected shape. It is permanent: the same answer will not decode later.
type DecodeError struct {
	// Op says what was being done.
	Op string
	// Err is the decoder's error.
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string { return fmt.Sprintf("%s: decode response: %v", e.Op, e.Err) }

// Unwrap returns the decoder's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Transient reports false: a malformed answer is not retried.
func (e *DecodeError) Transient() bool { return false }

// WholeCall reports true: an answer that cannot be decoded (malformed,
// oversized) blames none of the items the call was about, so pkg/bus's
// Bisect does not split the call to find them.
func (e *DecodeError) WholeCall() bool { return true }

// TransportError is a call that got no HTTP answer: a refused or dropped
// connection, or a timeout. It is transient.
type TransportError struct {
	// Op says what was being done.
	Op string
	// Err is the transport's error.
	Err error
}

// Error implements error.
func (e *TransportError) Error() string { return fmt.Sprintf("%s: %v", e.Op, e.Err) }

// Unwrap returns the transport's error.
func (e *TransportError) Unwrap() error { return e.Err }

// Transient reports true.
func (e *TransportError) Transient() bool { return true }

// IsTransient reports whether err, or an error it wraps, says it is
// transient. Errors that say nothing are not transient by this function;
// pkg/bus has its own default.
func IsTransient(err error) bool {
	var t interface{ Transient() bool }
	if errors.As(err, &t) {
		return t.Transient()
	}
	return false
}

// RetryAfterOf returns the delay asked for by err or an error it wraps, or
// zero.
func RetryAfterOf(err error) time.Duration {
	var r interface{ RetryAfter() time.Duration }
	if errors.As(err, &r) {
		return r.RetryAfter()
	}
	return 0
}

// ParseRetryAfter reads a Retry-After header value: delay-seconds or an
// HTTP date. It returns zero for an empty, malformed or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64(1<<62) / int64(time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
