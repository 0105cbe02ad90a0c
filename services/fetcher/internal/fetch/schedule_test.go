package fetch_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/services/fetcher/internal/fetch"
)

var errUnavailable = errors.New("threatq: 503")

// schedule returns a schedule on the leases bucket of b whose lease holder
// is holder, renewing (and, on standby, retrying) every 20ms.
func schedule(t *testing.T, leases jetstream.KeyValue, holder string) *fetch.Schedule {
	t.Helper()
	return &fetch.Schedule{
		Instance: "default",
		Interval: 10 * time.Millisecond,
		Lease: func(job string) *fetch.Lease {
			return &fetch.Lease{KV: leases, Key: job + ".default", Holder: holder, Every: 20 * time.Millisecond}
		},
		Log: slog.New(slog.DiscardHandler),
	}
}

func leasesOf(t *testing.T, b *bus.Bus) jetstream.KeyValue {
	t.Helper()
	kv, err := b.KeyValue(context.Background(), bus.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// holderOf returns who holds key's lease, "" when nobody does.
func holderOf(t *testing.T, kv jetstream.KeyValue, key string) string {
	t.Helper()
	e, err := kv.Get(context.Background(), key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(e.Value())
}

// TestScheduleRunKeepsHistoricalUntilSuccess: a --historical date is given
// to every run until one succeeds, not dropped by a failed first run
// (issue 13), and not given again after.
func TestScheduleRunKeepsHistoricalUntilSuccess(t *testing.T) {
	t.Parallel()
	s := schedule(t, leasesOf(t, bustest.New(t)), "a")
	var mu sync.Mutex
	var got []*time.Time
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	job := func(_ context.Context, historical *time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, historical)
		switch len(got) {
		case 1, 2:
			return errUnavailable
		case 4:
			cancel()
		}
		return nil
	}
	date := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Run(ctx, map[string]fetch.Job{"ctr": job}, &date); err != nil {
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

// TestScheduleRunOneActive: of two fetchers of one job instance only the
// lease holder runs the job; when it stops (releasing the lease) the
// other takes over.
func TestScheduleRunOneActive(t *testing.T) {
	t.Parallel()
	kv := leasesOf(t, bustest.New(t))
	var runsA, runsB atomic.Int64
	run := func(n *atomic.Int64) fetch.Job {
		return func(context.Context, *time.Time) error { n.Add(1); return nil }
	}
	actx, acancel := context.WithCancel(context.Background())
	defer acancel()
	adone := make(chan error, 1)
	go func() { adone <- schedule(t, kv, "a").Run(actx, map[string]fetch.Job{"ctr": run(&runsA)}, nil) }()
	testkit.Eventually(t, func() bool { return runsA.Load() >= 3 }, 10*time.Second, "fetcher a to run three times")

	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	bdone := make(chan error, 1)
	b := schedule(t, kv, "b")
	var successes atomic.Int64
	b.OnSuccess = func(job string, _ time.Time) {
		if job == "ctr" {
			successes.Add(1)
		}
	}
	go func() { bdone <- b.Run(bctx, map[string]fetch.Job{"ctr": run(&runsB)}, nil) }()
	// b stands by through several of its retries and of a's runs.
	before := runsA.Load()
	testkit.Eventually(t, func() bool { return runsA.Load() >= before+5 }, 10*time.Second, "fetcher a to go on running")
	if n := runsB.Load(); n != 0 {
		t.Fatalf("the standby fetcher ran %d times while a held the lease", n)
	}
	if h := holderOf(t, kv, "ctr.default"); h != "a" {
		t.Fatalf("lease held by %q, want a", h)
	}

	acancel()
	if err := <-adone; err != nil {
		t.Fatalf("a: %v", err)
	}
	stopped := runsA.Load()
	testkit.Eventually(t, func() bool { return runsB.Load() >= 2 }, 10*time.Second, "fetcher b to take over")
	if h := holderOf(t, kv, "ctr.default"); h != "b" {
		t.Errorf("lease held by %q after the take-over, want b", h)
	}
	if runsA.Load() != stopped {
		t.Error("fetcher a ran after its context ended")
	}
	if successes.Load() < 2 {
		t.Errorf("OnSuccess called %d times for b's runs, want each", successes.Load())
	}
	bcancel()
	if err := <-bdone; err != nil {
		t.Fatalf("b: %v", err)
	}
	if h := holderOf(t, kv, "ctr.default"); h != "" {
		t.Errorf("lease still held by %q after both stopped", h)
	}
}

// TestScheduleRunOnce: every job runs once under its lease, which is free
// again after; a failed job is reported and not counted a success; a job
// whose lease another fetcher holds does not run.
func TestScheduleRunOnce(t *testing.T) {
	t.Parallel()
	kv := leasesOf(t, bustest.New(t))
	if _, err := kv.Create(context.Background(), "misp.default", []byte("other")); err != nil {
		t.Fatal(err)
	}
	s := schedule(t, kv, "a")
	var mu sync.Mutex
	succeeded := map[string]int{}
	s.OnSuccess = func(job string, _ time.Time) { mu.Lock(); succeeded[job]++; mu.Unlock() }
	ran := map[string]int{}
	var heldWhileRunning string
	jobs := map[string]fetch.Job{
		"ctr": func(context.Context, *time.Time) error {
			ran["ctr"]++
			heldWhileRunning = holderOf(t, kv, "ctr.default")
			return nil
		},
		"et":   func(context.Context, *time.Time) error { ran["et"]++; return errUnavailable },
		"misp": func(context.Context, *time.Time) error { ran["misp"]++; return nil },
	}
	err := s.RunOnce(context.Background(), jobs, nil)
	if !errors.Is(err, errUnavailable) || !errors.Is(err, fetch.ErrLeaseHeld) {
		t.Errorf("RunOnce = %v, want the et failure and the held misp lease", err)
	}
	if ran["ctr"] != 1 || ran["et"] != 1 || ran["misp"] != 0 {
		t.Errorf("runs %v, want ctr and et once, misp not (its lease is held)", ran)
	}
	if heldWhileRunning != "a" {
		t.Errorf("ctr ran with its lease held by %q, want a", heldWhileRunning)
	}
	if h := holderOf(t, kv, "ctr.default"); h != "" {
		t.Errorf("ctr lease still held by %q after the run", h)
	}
	mu.Lock()
	defer mu.Unlock()
	if succeeded["ctr"] != 1 || succeeded["et"] != 0 || succeeded["misp"] != 0 {
		t.Errorf("successes %v, want ctr once only", succeeded)
	}
}
