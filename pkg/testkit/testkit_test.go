package testkit_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/testkit"
)

func TestWaitReturnsOnceTrue(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	ok := testkit.Wait(func() bool { return n.Add(1) >= 3 }, time.Second)
	if !ok || n.Load() != 3 {
		t.Fatalf("Wait = %v after %d calls, want true after 3", ok, n.Load())
	}
}

func TestWaitTimesOut(t *testing.T) {
	t.Parallel()
	start := time.Now()
	if testkit.Wait(func() bool { return false }, 50*time.Millisecond) {
		t.Fatal("Wait reported true for a condition that never holds")
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Fatalf("Wait returned after %v, want about 50ms", d)
	}
}

// fakeTB records Fatalf instead of stopping, so the failure path of
// Eventually can be checked.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
}

func TestEventuallyFailsWithDescription(t *testing.T) {
	t.Parallel()
	f := &fakeTB{TB: t}
	testkit.Eventually(f, func() bool { return false }, 20*time.Millisecond, "never")
	if f.failed == "" {
		t.Fatal("Eventually did not fail the test on timeout")
	}
	g := &fakeTB{TB: t}
	testkit.Eventually(g, func() bool { return true }, 20*time.Millisecond, "at once")
	if g.failed != "" {
		t.Fatal("Eventually failed although the condition held")
	}
}
