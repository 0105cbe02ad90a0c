package bus

import (
	"errors"
	"time"
)

// pauseError marks a failure that is no message's fault: the upstream
// refuses every call the same way (credentials refused, a scope missing)
// until someone fixes it.
type pauseError struct{ transientError }

// Pause marks err as "the upstream refuses everything for now": the
// runner neither dead-letters the message nor spends one of its
// deliveries on it. As for any error with a Retry-After, it holds the
// batch in process (kept alive with InProgress, so it stays in the
// stream, unacknowledged) and holds every worker of the process back for
// retry, then tries the batch again: consumption pauses and resumes by
// itself once the upstream answers. Unlike a rate limit, each message's
// retry is logged at debug level only: the handler logs the condition
// once, where it knows what to fix. Pause(nil, d) is nil; retry must be
// positive, and is a minute when it is not.
func Pause(err error, retry time.Duration) error {
	if err == nil {
		return nil
	}
	if retry <= 0 {
		retry = time.Minute
	}
	return pauseError{transientError{err, retry}}
}

// IsPause reports whether err, or an error it wraps, was made by [Pause].
func IsPause(err error) bool {
	var p pauseError
	return errors.As(err, &p)
}
