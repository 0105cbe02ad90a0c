package testkit_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/testkit"
)

func TestClock(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)
	c := testkit.NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { c.Advance(time.Second) })
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(10*time.Second); !got.Equal(want) {
		t.Errorf("after ten concurrent one-second advances, Now = %v, want %v", got, want)
	}
}
