package service

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
)

// TestRunKeepsHistoricalUntilSuccess: a --historical date is given to
// every run until one succeeds, not dropped by a failed first run (issue
// 13), and not given again after.
func TestRunKeepsHistoricalUntilSuccess(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	leases, err := b.KeyValue(context.Background(), bus.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*time.Time
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f := &Fetcher{cfg: Config{Interval: 10 * time.Millisecond, Instance: "default"}, bus: b, log: slog.New(slog.DiscardHandler), leases: leases,
		jobs: map[string]job{"ctr": func(_ context.Context, historical *time.Time, _ *Reports) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, historical)
			switch len(got) {
			case 1, 2:
				return errors.New("threatq: 503")
			case 4:
				cancel()
			}
			return nil
		}}}
	date := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := f.Run(ctx, &date); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 4 {
		t.Fatalf("%d runs, want 4", len(got))
	}
	for i, h := range got[:4] {
		wantDate := i < 3 // Two failures, then the run that succeeds with it.
		if (h != nil) != wantDate || (h != nil && !h.Equal(date)) {
			t.Errorf("run %d got historical %v, want the date: %v", i+1, h, wantDate)
		}
	}
}
