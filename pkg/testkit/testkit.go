// Package testkit holds the few helpers tests across the workspace share,
// so that waiting for something is written once and always has a deadline.
//
// The waiting helper is Eventually(t, cond, timeout, what): the issue's
// eventually(t, cond, timeout) plus what, the awaited state in words,
// because "timed out waiting for the writer's consumer to drain" says at
// once what "condition not met" does not. Wait is the same loop without
// the test, for callers that report the timeout themselves (with the
// last state they saw) or that wait outside the test's goroutine.
package testkit

import (
	"testing"
	"time"
)

// firstInterval and maxInterval bound the time between two checks of a
// condition. Checks start 10ms apart, so that a test waits little past the
// moment a quick condition holds, and the gap doubles up to a hundredth of
// the timeout (at most a second): a condition that takes minutes (a
// container's health, a docker inspect) is not asked fifty times a second
// on a shared 2-core machine.
const (
	firstInterval = 10 * time.Millisecond
	maxInterval   = time.Second
)

// Eventually calls cond (at once, then at growing intervals) until it
// reports true, and fails the test with what (the awaited state, e.g.
// "three messages pending") once timeout has passed without it. cond runs
// on the calling goroutine. Eventually returns only when cond held:
// callers go on knowing the state was reached.
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
	ceiling := min(max(timeout/100, firstInterval), maxInterval)
	for interval := firstInterval; ; interval = min(2*interval, ceiling) {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(interval, left))
	}
}
