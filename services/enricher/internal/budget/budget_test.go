package budget_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/services/enricher/internal/budget"
)

// TestSharedAcrossReplicas: four budgets on one KV entry (four replicas)
// taking as fast as they can never grant more than Max in any window, and
// still grant at about the rate allowed.
func TestSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := b.KeyValue(ctx, bus.BucketCTRBudget)
	if err != nil {
		t.Fatal(err)
	}
	const most, window = 20, time.Second
	var mu sync.Mutex
	var grants []time.Time
	var wg sync.WaitGroup
	run, stop := context.WithTimeout(ctx, 3*window)
	defer stop()
	for range 4 {
		bg, err := budget.New(budget.Config{KV: kv, Key: "org", Max: most, Window: window})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for bg.Wait(run) == nil {
				mu.Lock()
				grants = append(grants, time.Now())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(grants, func(a, b time.Time) int { return a.Compare(b) })
	if got := ctrsim.MaxInWindow(grants, window); got > most {
		t.Errorf("%d grants in one %s window, budget %d", got, window, most)
	}
	// 3 windows: at least the refill of two of them.
	if len(grants) < 2*(most-3) {
		t.Errorf("%d grants in 3 windows of %d: the budget starves its users", len(grants), most)
	}
}

// TestHoldStopsEveryReplica: a hold set through one budget holds another
// on the same key, and survives a new Budget (a restart).
func TestHoldStopsEveryReplica(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	kv, err := b.KeyValue(ctx, bus.BucketCTRBudget)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var slept []time.Duration
	cfg := budget.Config{KV: kv, Key: "org", Max: 8000, Window: time.Hour, Now: func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); now = now.Add(d); return nil }}
	one, err := budget.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := one.Hold(ctx, 3172*time.Second); err != nil {
		t.Fatal(err)
	}
	other, err := budget.New(cfg) // another replica, or this one restarted
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := other.HeldFor(ctx); d != 3172*time.Second {
		t.Errorf("held for %v, want 3172s", d)
	}
	if err := other.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for _, d := range slept {
		total += d
	}
	if total != 3172*time.Second {
		t.Errorf("waited %v (%v), want 3172s", total, slept)
	}
}

func TestNewRefusesNonsense(t *testing.T) {
	t.Parallel()
	if _, err := budget.New(budget.Config{Max: 1, Window: time.Hour}); err == nil {
		t.Error("a budget of 1 and no bucket accepted")
	}
}
