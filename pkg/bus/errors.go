package bus

import (
	"context"
	"errors"
	"time"
)

// ErrStopped is returned by [Bus.Run] and [Bus.RunBatch] when the consumer
// was stopped from outside (deleted) rather than by the context.
var ErrStopped = errors.New("consumer stopped")

// permanentError marks an error as not worth retrying.
type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Transient() bool { return false }

// Permanent marks err as permanent: the runner dead-letters the message
// instead of retrying it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// transientError marks an error as worth retrying, optionally after a delay.
type transientError struct {
	err   error
	delay time.Duration
}

func (e transientError) Error() string             { return e.err.Error() }
func (e transientError) Unwrap() error             { return e.err }
func (e transientError) Transient() bool           { return true }
func (e transientError) RetryAfter() time.Duration { return e.delay }

// Transient marks err as transient, to be retried no sooner than after
// delay (zero: the runner's backoff decides). Transient(nil, d) is nil.
func Transient(err error, delay time.Duration) error {
	if err == nil {
		return nil
	}
	return transientError{err, delay}
}

// RetryAfterer is an error that says how long to wait before trying
// again: a server's Retry-After (pkg/httpx's StatusError is one), or the
// delay given to [Transient] or [Pause]. The runner holds the message in
// process that long instead of spending one of its deliveries.
type RetryAfterer interface {
	// RetryAfter returns the delay asked for, or zero for none.
	RetryAfter() time.Duration
}

// RetryAfterOf returns the delay asked for by err or an error it wraps
// (the first [RetryAfterer] in its chain), or zero.
func RetryAfterOf(err error) time.Duration {
	var r RetryAfterer
	if errors.As(err, &r) {
		return r.RetryAfter()
	}
	return 0
}

// IsPermanent reports whether the runner would dead-letter a message whose
// handler returned err: err, or an error it wraps, has a Transient method
// that reports false. Errors that say nothing, and context cancellation,
// are transient.
func IsPermanent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var t interface{ Transient() bool }
	if errors.As(err, &t) {
		return !t.Transient()
	}
	return false
}

// ErrAuth is returned by [Connect] when the server refuses the connection's
// credentials (or their absence): retrying would not change its answer.
var ErrAuth = errors.New("NATS refused the credentials")
