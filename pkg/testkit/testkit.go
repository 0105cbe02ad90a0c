// Package testkit holds the few helpers tests across the workspace share,
// so that waiting for something is written once and always has a deadline.
package testkit

import (
	"testing"
	"time"
)

// pollInterval is how often Eventually re-checks its condition: short
// enough that a test waits little past the moment the condition holds,
// long enough not to spin a shared 2-core machine.
const pollInterval = 10 * time.Millisecond

// Eventually calls cond until it reports true and fails the test with
// what (a short description of the awaited state, e.g. "consumer has 3
// pending") once timeout has passed without it. cond runs on the calling
// goroutine, so it may use t.Error but not t.Fatal. It returns only when
// cond held: callers go on knowing the state was reached.
func Eventually(t testing.TB, cond func() bool, timeout time.Duration, what string) {
	t.Helper()
	if !Wait(cond, timeout) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Wait calls cond until it reports true or timeout passes, and says which.
// Use it where the caller must decide what a timeout means (a goroutine
// that cannot call t.Fatal, or a loop that reports on its own); use
// Eventually otherwise.
func Wait(cond func() bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}
