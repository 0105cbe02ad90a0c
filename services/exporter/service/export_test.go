package service_test

import (
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
)

// TestSixtyThousandOneIndicators is the acceptance test: 60,001
// qualifying indicators of one day make exactly three events of 25,000,
// 25,000 and 10,001 attributes, each attribute once, valid; running again
// adds nothing.
func TestSixtyThousandOneIndicators(t *testing.T) {
	if raceEnabled {
		t.Skip("skipping under the race detector: 60,001 indicators take minutes there; make test runs it without")
	}
	t.Parallel()
	s, url := newMISP(t, mispsim.Options{Seed: 1})
	b := bustest.New(t)
	inds := generate(60_001, 0, day1)
	publish(t, b, inds)
	start := time.Now()
	stats, sc := run(t, b, testConfig(url), int64(len(inds)), 3*time.Minute)
	t.Logf("60,001 indicators exported in %s, %d MISP requests", time.Since(start), s.Stats.Total())
	if sc.dead.Load() != 0 {
		t.Errorf("%d dead letters: %+v", sc.dead.Load(), deadLetters(t, b))
	}
	counts := holding(t, s, want(t, inds, time.UTC), 25_000)
	if c := counts["2025-01-15"]; len(c) != 3 || c[0] != 25_000 || c[1] != 25_000 || c[2] != 10_001 {
		t.Errorf("events of 2025-01-15 hold %v, want [25000 25000 10001]", c)
	}
	if got := stats.Saved.Load(); got != 60_001 {
		t.Errorf("saved %d, want 60001", got)
	}
	vstart := time.Now()
	checkValid(t, s, url)
	t.Logf("validated in %s", time.Since(vstart))

	// Running again (a replay) adds nothing.
	entries := s.Ledger.Len()
	publish(t, b, inds)
	start = time.Now()
	stats, _ = run(t, b, testConfig(url), int64(len(inds)), 3*time.Minute)
	t.Logf("second run in %s", time.Since(start))
	if got := s.Ledger.Len(); got != entries {
		t.Errorf("the second run changed MISP: ledger %d → %d entries", entries, got)
	}
	if stats.Saved.Load() != 0 || stats.Claimed.Load() != 0 || stats.Existing.Load() != 60_001 {
		t.Errorf("second run: saved %d claimed %d existing %d, want 0, 0, 60001",
			stats.Saved.Load(), stats.Claimed.Load(), stats.Existing.Load())
	}
	holding(t, s, want(t, inds, time.UTC), 25_000)
}
