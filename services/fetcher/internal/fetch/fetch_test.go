package fetch_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/fetcher/internal/fetch"
)

// memSource serves indicators by updated_at window, like a saved search
// with an injected window, page by page.
type memSource struct {
	mu   sync.Mutex
	inds []schemas.IndicatorData
	fail error // returned after the first page when set
}

func (s *memSource) Fetch(_ context.Context, w fetch.Window, page func([]schemas.IndicatorData) error) error {
	s.mu.Lock()
	var sel []schemas.IndicatorData
	for _, d := range s.inds {
		if d.UpdatedAt.After(w.After) && d.UpdatedAt.Before(w.Before) {
			sel = append(sel, d)
		}
	}
	fail := s.fail
	s.mu.Unlock()
	sort.Slice(sel, func(i, j int) bool { return sel[i].ID < sel[j].ID })
	for i := 0; i < len(sel); i += 7 {
		if err := page(sel[i:min(i+7, len(sel))]); err != nil {
			return err
		}
		if fail != nil {
			return fail
		}
	}
	return nil
}

func (s *memSource) touch(at time.Time, ids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.inds {
		for _, id := range ids {
			if s.inds[i].ID == id {
				s.inds[i].UpdatedAt = at
			}
		}
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(t *testing.T, n int) (*bus.Bus, *memSource, *fetch.Fetcher, *clock) {
	t.Helper()
	b := bustest.New(t)
	kv, err := b.KeyValue(context.Background(), bus.BucketCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	src := &memSource{}
	for i := range n {
		src.inds = append(src.inds, schemas.IndicatorData{
			ID: int64(i + 1), Value: "v", Type: "URL", Score: float64(i % 11),
			UpdatedAt: base.Add(time.Duration(i) * time.Minute),
		})
	}
	clk := &clock{base.Add(30 * 24 * time.Hour)}
	f := &fetch.Fetcher{Bus: b, Checkpoints: fetch.Checkpoints{KV: kv}, Source: src, Job: "ctr", Instance: "t1", Now: clk.now}
	return b, src, f, clk
}

func streamMsgs(t *testing.T, b *bus.Bus) uint64 {
	t.Helper()
	s, err := b.JetStream().Stream(context.Background(), bus.StreamIndicators)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestRunOnceIsIncremental(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, src, f, clk := setup(t, 100)
	rep, err := f.RunOnce(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Read != 100 || rep.Published != 100 || rep.Duplicates != 0 {
		t.Fatalf("first run %+v, want 100 read and published", rep)
	}
	cp, _, err := f.Checkpoints.Load(ctx, fetch.CheckpointKey("ctr", "t1"))
	if err != nil || !cp.Through.Equal(clk.t) {
		t.Fatalf("checkpoint %+v (%v), want through %v", cp, err, clk.t)
	}
	// Nothing changed: nothing new.
	clk.t = clk.t.Add(time.Hour)
	if rep, err = f.RunOnce(ctx, nil); err != nil || rep.Published-rep.Duplicates != 0 {
		t.Fatalf("idle run %+v (%v), want nothing new", rep, err)
	}
	// Three indicators updated: exactly those three.
	src.touch(clk.t.Add(time.Minute), 5, 50, 99)
	clk.t = clk.t.Add(time.Hour)
	rep, err = f.RunOnce(ctx, nil)
	if err != nil || rep.Published-rep.Duplicates != 3 {
		t.Fatalf("run after touch %+v (%v), want 3 new", rep, err)
	}
	if got := streamMsgs(t, b); got != 103 {
		t.Errorf("stream holds %d messages, want 103", got)
	}
	// Historical: everything since the date again, as new messages.
	hist := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	clk.t = clk.t.Add(time.Hour)
	rep, err = f.RunOnce(ctx, &hist)
	if err != nil || rep.Read != 99 || rep.Published-rep.Duplicates != 99 || !rep.Historical {
		t.Fatalf("historical run %+v (%v), want 99 (after the date, exclusive) re-published", rep, err)
	}
}

func TestRunOnceKeepsCheckpointOnFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, src, f, _ := setup(t, 30)
	src.fail = errors.New("threatq: HTTP 503")
	if _, err := f.RunOnce(ctx, nil); err == nil {
		t.Fatal("want the source's error")
	}
	if _, rev, _ := f.Checkpoints.Load(ctx, fetch.CheckpointKey("ctr", "t1")); rev != 0 {
		t.Fatal("a failed run must not move the checkpoint")
	}
	src.fail = nil
	rep, err := f.RunOnce(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The retry reads the same window; what the failed run published is
	// dropped as duplicates.
	if rep.Read != 30 || rep.Duplicates != 7 || rep.Published != 30 {
		t.Errorf("retry %+v, want 30 read, 7 duplicates of the failed run's first page", rep)
	}
}

func TestRunOnceKeep(t *testing.T) {
	t.Parallel()
	_, _, f, _ := setup(t, 22)
	f.Keep = func(d schemas.IndicatorData) bool { return d.Score >= 5 }
	rep, err := f.RunOnce(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Skipped != 10 || rep.Published != 12 {
		t.Errorf("report %+v, want 10 skipped (scores 0-4 twice), 12 published", rep)
	}
}

func TestLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := bustest.New(t)
	kv, err := b.KeyValue(ctx, bus.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	a := &fetch.Lease{KV: kv, Key: "ctr.x", Holder: "a", Every: time.Second}
	other := &fetch.Lease{KV: kv, Key: "ctr.x", Holder: "b", Every: time.Second}
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Acquire(ctx); !errors.Is(err, fetch.ErrLeaseHeld) {
		t.Fatalf("second holder: err = %v, want ErrLeaseHeld", err)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	again := &fetch.Lease{KV: kv, Key: "ctr.x", Holder: "a", Every: time.Second}
	if err := again.Acquire(ctx); err != nil {
		t.Fatalf("the same holder restarting must get its lease back: %v", err)
	}
	if err := a.Renew(ctx); err == nil {
		t.Error("a stale handle must not renew over a newer revision")
	}
	if err := again.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Acquire(ctx); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestMsgIDSeparatesJobs(t *testing.T) {
	t.Parallel()
	d := schemas.IndicatorData{ID: 7, UpdatedAt: time.Unix(1700000000, 0)}
	if fetch.MsgID("ctr", "default", d, "") == fetch.MsgID("misp", "default", d, "") {
		t.Error("the ctr and misp jobs publish one indicator with one ID: the stream would drop one as a duplicate")
	}
	if fetch.MsgID("ctr", "default", d, "") == fetch.MsgID("ctr", "default", d, "run1") {
		t.Error("a historical run must not be deduplicated against the runs before it")
	}
}
