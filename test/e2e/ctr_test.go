package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/testkit"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
	writersvc "github.com/tqflow/tqflow/services/writer/service"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestCTRJob is the CTR enrichment job end to end: a saved search of 5,000
// indicators of types CTR does and does not support, CTR context for a
// known subset; then an incremental run and a historical one.
func TestCTRJob(t *testing.T) {
	t.Parallel()
	h, clock := newClockedHarness(t, sandbox.Options{Seed: 11, Indicators: 5000, ContextShare: 0.3})
	want := h.expected()
	unsupported := 0
	for _, in := range h.sb.Dataset.Indicators {
		if _, ok := sandbox.CTRType(in.Type); !ok {
			unsupported++
		}
	}
	if len(want) < 500 || unsupported < 200 {
		t.Fatalf("dataset too thin to prove anything: %d with context, %d unsupported", len(want), unsupported)
	}

	s := h.runOnce(nil, nil)
	h.checkLedger(h.sb.ThreatQ.Ledger.Entries(), want, "Review")
	rep := s.Reports["ctr"]
	if rep.Read != 5000 || s.Enricher.Enriched.Load() != int64(len(want)) ||
		s.Enricher.Unsupported.Load() != int64(unsupported) || s.DeadLetter != 0 {
		t.Errorf("summary: read %d, enriched %d (want %d), unsupported %d (want %d), dead letters %d",
			rep.Read, s.Enricher.Enriched.Load(), len(want), s.Enricher.Unsupported.Load(), unsupported, s.DeadLetter)
	}
	if got := s.Writer.Indicators.Load(); got != int64(len(want)) {
		t.Errorf("writer wrote %d indicators, want %d", got, len(want))
	}
	entries := h.sb.ThreatQ.Ledger.Len()

	// Setting a status changes updated_at, so the next run reads back the
	// indicators whose status the first run set: it finds them as CTR says
	// (from the cache: CTR is not asked) and writes nothing.
	asked := h.sb.CTR.ObservablesReceived()
	clock.Advance(1100 * time.Millisecond) // Changes of a run's last second are the next run's.
	s = h.runOnce(nil, nil)
	if n := h.sb.ThreatQ.Ledger.Len(); n != entries {
		t.Errorf("ledger grew from %d to %d entries on the run after", entries, n)
	}
	if got := h.sb.CTR.ObservablesReceived(); got != asked {
		t.Errorf("the run after asked CTR about %d observables, want 0 (cache)", got-asked)
	}
	if s.Writer.Indicators.Load() != 0 || s.Enricher.Unchanged.Load() != s.Enricher.Received.Load()-s.Enricher.NoContext.Load()-s.Enricher.Unsupported.Load() {
		t.Errorf("the run after wrote %d indicators, found %d unchanged of %d received", s.Writer.Indicators.Load(), s.Enricher.Unchanged.Load(), s.Enricher.Received.Load())
	}

	t.Run("incremental", func(t *testing.T) {
		// 100 indicators updated since: only they are processed, and since
		// CTR says the same, ThreatQ does not change.
		var ids []int64
		for _, in := range h.sb.Dataset.Indicators[:100] {
			ids = append(ids, in.ID)
		}
		clock.Advance(1100 * time.Millisecond) // ThreatQ timestamps have one-second resolution.
		h.sb.ThreatQ.Touch(ids, clock.Now().UTC())
		clock.Advance(1100 * time.Millisecond) // A run reads up to the start of its second.
		s := h.runOnce(nil, nil)
		rep := s.Reports["ctr"]
		if fresh := rep.Published - rep.Duplicates; fresh != 100 || s.Enricher.Received.Load() != 100 {
			t.Errorf("second run: %d new to the pipeline, enricher received %d; want 100 and 100", fresh, s.Enricher.Received.Load())
		}
		if n := h.sb.ThreatQ.Ledger.Len(); n != entries {
			t.Errorf("ledger grew from %d to %d entries on a run that changes nothing", entries, n)
		}
	})

	t.Run("historical", func(t *testing.T) {
		since := h.sb.Dataset.Indicators[0].UpdatedAt.Add(-time.Hour)
		for _, in := range h.sb.Dataset.Indicators {
			if in.UpdatedAt.Before(since) {
				since = in.UpdatedAt
			}
		}
		date := time.Date(since.Year(), since.Month(), since.Day()+10, 0, 0, 0, 0, time.UTC)
		wantRead := 0
		for _, d := range h.sb.Dataset.Indicators {
			in, _ := h.sb.ThreatQ.Indicator(d.ID)
			if in.UpdatedAt.After(date) {
				wantRead++
			}
		}
		s := h.runOnce(&date, nil)
		rep := s.Reports["ctr"]
		if rep.Read != wantRead || s.Enricher.Received.Load() != int64(wantRead) {
			t.Errorf("historical run from %s: read %d, enricher received %d; want %d re-processed",
				date.Format(time.DateOnly), rep.Read, s.Enricher.Received.Load(), wantRead)
		}
		if n := h.sb.ThreatQ.Ledger.Len(); n != entries {
			t.Errorf("ledger grew from %d to %d entries on a re-processing run", entries, n)
		}
	})
}

// TestCTRJobFaults: the same final ledger whatever goes wrong on the way.
func TestCTRJobFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(h *harness)
	}{
		{"threatq answers 20% 503s", func(h *harness) {
			h.sb.ThreatQ.Faults.Set(sim.Faults{ErrorRate: 0.2})
		}},
		{"ctr rate limits with retry-after", func(h *harness) {
			h.sb.CTR.Faults.Set(sim.Faults{RateLimitRate: 0.3, RetryAfter: time.Second, PathPrefix: "/iroh/iroh-enrich/"})
		}},
		{"ctr drops connections and answers 500s", func(h *harness) {
			h.sb.CTR.Faults.Set(sim.Faults{DropRate: 0.1, ErrorRate: 0.1, ErrorStatus: 500, PathPrefix: "/iroh/iroh-enrich/"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, sandbox.Options{Seed: 21, Indicators: 1200, ContextShare: 0.4})
			want := h.expected()
			tt.setup(h)
			s := h.runOnce(nil, nil)
			h.checkLedger(h.sb.ThreatQ.Ledger.Entries(), want, "Review")
			if s.DeadLetter != 0 {
				t.Errorf("%d dead letters: transient faults must be retried, not dead-lettered", s.DeadLetter)
				for _, dl := range h.deadLetters("*", "*") {
					t.Logf("dead letter of %s/%s: %s after %d deliveries: %s", dl.Stream, dl.Consumer, dl.Reason, dl.Deliveries, dl.Error)
				}
			}
		})
	}
}

// TestCTRJobEnricherCrash kills the enricher mid-run (its connection closes
// without draining, as on SIGKILL) and starts another: the ledger is the
// same, nothing lost, nothing twice.
func TestCTRJobEnricherCrash(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sandbox.Options{Seed: 31, Indicators: 2000, ContextShare: 0.4})
	want := h.expected()
	// Slow CTR down so the crash lands mid-run.
	h.sb.CTR.Faults.Set(sim.Faults{Latency: 20 * time.Millisecond})
	cfg := h.config(map[string]string{"ENRICHER_ACK_WAIT": "2s", "ENRICHER_CONCURRENCY": "2", "ENRICHER_BATCH_SIZE": "20"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	main, victim := h.connect(), h.connect()
	p, err := pipeline.New(ctx, cfg, pipeline.Buses{Default: main, Enricher: victim}, h.logger())
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorkers := context.WithCancel(ctx)
	wait := p.StartWorkers(wctx)
	if _, err := p.Fetcher().RunOnce(ctx, nil); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, func() bool { return h.sb.ThreatQ.Ledger.Len() > 0 }, time.Minute, "a first write to ThreatQ")
	victim.Conn().Close() // The crash.
	// A new enricher takes over on its own connection.
	var stats enrichersvc.Stats
	rctx, stopReplacement := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- enrichersvc.Run(rctx, cfg.Enricher, h.connect(), h.logger(), &stats, nil) }()
	if err := p.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	stopReplacement()
	stopWorkers()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = wait()
	h.checkLedger(h.sb.ThreatQ.Ledger.Entries(), want, "Review")
	if stats.Received.Load() == 0 {
		t.Error("the replacement enricher received nothing: the crash came too late to prove anything")
	}
}

// TestCTRJobPermanentFailure: ThreatQ refuses one indicator's write with a
// validation error; it ends in the dead-letter stream with its reason, and
// everything else goes through.
func TestCTRJobPermanentFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sandbox.Options{Seed: 41, Indicators: 1000, ContextShare: 0.4})
	want := h.expected()
	var victim int64
	var victimValue string
	for _, in := range h.sb.Dataset.Indicators {
		if _, ok := want[in.ID]; ok {
			victim, victimValue = in.ID, in.Value
			break
		}
	}
	h.sb.ThreatQ.RejectValue(victimValue)
	s := h.runOnce(nil, nil)
	delete(want, victim)
	h.checkLedger(h.sb.ThreatQ.Ledger.Entries(), want, "Review")
	dls := h.deadLetters(writersvc.ConsumerName, bus.StreamWrites)
	if len(dls) != 1 || s.DeadLetter != 1 {
		t.Fatalf("dead letters: %d in the stream, %d counted; want exactly 1", len(dls), s.DeadLetter)
	}
	dl := dls[0]
	if dl.Reason != bus.ReasonPermanent || !strings.Contains(string(dl.Data), victimValue) || !strings.Contains(dl.Error, "400") {
		t.Errorf("dead letter: reason %q, error %q, data %.80q", dl.Reason, dl.Error, dl.Data)
	}
}

// ctrCalls counts the calls CTR received: tokens and enrich calls.
func ctrCalls(h *harness) int64 {
	return h.sb.CTR.Stats.Count(ctrsim.RouteToken) + h.sb.CTR.Stats.Count(ctrsim.RouteObserve) +
		h.sb.CTR.Stats.Count(ctrsim.RouteDeliberate)
}

// TestCTRJobRefusedOnce: tqflow run --once against a CTR that answers every
// call 403 missing_scope ends within seconds, non-zero, naming the
// missing scope, after at most 3 CTR calls, with no dead letter; the
// indicators stay queued.
func TestCTRJobRefusedOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		refusal  ctrsim.Refusal
		sentinel error
		names    string
	}{
		{ctrsim.RefuseMissingScope, ctr.ErrMissingScope, "enrich:read"},
		{ctrsim.RefuseRevoked, ctr.ErrCredentials, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(string(tt.refusal), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, sandbox.Options{Seed: 61, Indicators: 600, ContextShare: 0.4})
			h.sb.CTR.SetRefusal(tt.refusal)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, err := pipeline.New(ctx, h.config(nil), pipeline.Buses{Default: h.connect()}, h.logger())
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			s, err := p.RunOnce(ctx, nil)
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tt.names) || !errors.Is(err, tt.sentinel) {
				t.Fatalf("run --once: %v; want an error naming %s", err, tt.names)
			}
			if took > 10*time.Second {
				t.Errorf("the run took %s to give up", took)
			}
			if n := ctrCalls(h); n > 3 {
				t.Errorf("%d CTR calls, want at most 3", n)
			}
			if s.DeadLetter != 0 || len(h.deadLetters("*", "*")) != 0 {
				t.Errorf("%d dead letters, want none", s.DeadLetter)
			}
			if n := h.sb.ThreatQ.Ledger.Len(); n != 0 {
				t.Errorf("%d ledger entries", n)
			}
			t.Logf("refused run: %s, %d CTR calls: %v", took.Round(time.Millisecond), ctrCalls(h), err)
		})
	}
}

// TestCTRJobRefusedMidRun: CTR starts refusing every call mid-run: at most
// 3 CTR calls follow, nothing is dead-lettered, readiness fails with the
// reason; once the scope is granted again the job completes by itself
// with the exact ledger.
func TestCTRJobRefusedMidRun(t *testing.T) {
	t.Parallel()
	h := newOpsHarness(t, sandbox.Options{Seed: 62, Indicators: 1500, ContextShare: 0.4, CTRModuleErrors: -1})
	want := h.expected()
	h.sb.CTR.Faults.Set(sim.Faults{Latency: 30 * time.Millisecond, PathPrefix: "/iroh/iroh-enrich/"})
	cfg := h.config(map[string]string{"CTR_REFUSED_RETRY": "3s", "ENRICHER_CONCURRENCY": "2", "ENRICHER_BATCH_SIZE": "50"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := pipeline.New(ctx, cfg, pipeline.Buses{Default: h.connect()}, h.logger())
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	wait := p.StartWorkers(wctx)
	if _, err := p.Fetcher().RunOnce(ctx, nil); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, func() bool { return h.sb.ThreatQ.Ledger.Len() > 0 }, time.Minute, "a first write to ThreatQ")
	h.sb.CTR.SetRefusal(ctrsim.RefuseMissingScope)
	refusedAt := ctrCalls(h)
	check := enrichersvc.Check(p.EnricherStats())
	testkit.Wait(func() bool { return check(ctx) != nil }, 20*time.Second)
	err = check(ctx)
	if err == nil || !strings.Contains(err.Error(), "enrich:read") {
		t.Fatalf("readiness while refused: %v; want the missing scope named", err)
	}
	// The subject: 2s within CTR_REFUSED_RETRY (3s), in which nothing
	// more may go out to CTR.
	time.Sleep(2 * time.Second)
	after := ctrCalls(h) - refusedAt
	if code, out, errOut := h.tqflow("status"); code != 0 || !strings.Contains(out, "CTR REFUSES EVERY CALL") || !strings.Contains(out, "enrich:read") {
		t.Errorf("tqflow status while refused: exit %d\n%s%s", code, out, errOut)
	}
	if after > 3 {
		t.Errorf("%d CTR calls after the refusal, want at most 3", after)
	}
	h.sb.CTR.SetRefusal(ctrsim.RefuseNone)
	if err := p.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if err := check(ctx); err != nil {
		t.Errorf("readiness after the scope came back: %v", err)
	}
	if _, out, _ := h.tqflow("status"); strings.Contains(out, "CTR REFUSES") {
		t.Errorf("tqflow status after the scope came back:\n%s", out)
	}
	h.checkLedger(h.sb.ThreatQ.Ledger.Entries(), want, "Review")
	if dls := h.deadLetters("*", "*"); len(dls) != 0 {
		t.Errorf("%d dead letters, want none", len(dls))
	}
	t.Logf("%d CTR calls in the 2s after the refusal (calls in flight included)", after)
}

// TestCTRJobModuleErrors: with 20% of module answers failing, the ledger
// after two runs equals the ledger with no errors; module errors are
// counted by module.
func TestCTRJobModuleErrors(t *testing.T) {
	t.Parallel()
	h, clock := newClockedHarness(t, sandbox.Options{Seed: 63, Indicators: 1200, ContextShare: 0.4, CTRModuleErrors: 0.2})
	want := h.expected()
	s := h.runOnce(nil, nil)
	mods := s.Enricher.ModuleErrors()
	total := int64(0)
	for _, n := range mods {
		total += n
	}
	if len(mods) < 3 || total < 20 {
		t.Errorf("module errors by module: %v; want several modules failing", mods)
	}
	clock.Advance(1100 * time.Millisecond) // Changes of a run's last second are the next run's.
	s2 := h.runOnce(nil, nil)
	h.checkLedger(h.sb.ThreatQ.Ledger.Entries(), want, "Review")
	if s.DeadLetter+s2.DeadLetter != 0 {
		t.Errorf("%d dead letters", s.DeadLetter+s2.DeadLetter)
	}
	t.Logf("module errors %v; CTR calls %d then %d; left to a later run %d then %d",
		mods, s.Enricher.Calls.Load(), s2.Enricher.Calls.Load(), s.Enricher.Incomplete.Load(), s2.Enricher.Incomplete.Load())
}

// TestCTRJobBudgetReplicas: four enricher replicas sharing a budget scaled
// down to 10 calls a second never exceed it in any window, as the
// simulator's request log shows, and the run completes.
func TestCTRJobBudgetReplicas(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sandbox.Options{Seed: 64, Indicators: 800, ContextShare: 0.4, CTRModuleErrors: -1})
	want := h.expected()
	const budget, window = 10, time.Second
	cfg := h.config(map[string]string{
		"CTR_MAX_REQUESTS_PER_HOUR": "10", "CTR_BUDGET_WINDOW": "1s", "CTR_BATCH_SIZE": "10",
		"ENRICHER_BATCH_SIZE": "10", "ENRICHER_CONCURRENCY": "2", "ENRICHER_ACK_WAIT": "30s",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := pipeline.New(ctx, cfg, pipeline.Buses{Default: h.connect(), Enricher: h.connect()}, h.logger())
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	wait := p.StartWorkers(wctx)
	var replicas []chan error
	stats := make([]enrichersvc.Stats, 3)
	for i := range stats {
		done := make(chan error, 1)
		replicas = append(replicas, done)
		go func() { done <- enrichersvc.Run(wctx, cfg.Enricher, h.connect(), h.logger(), &stats[i], nil) }()
	}
	if _, err := p.Fetcher().RunOnce(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	for _, done := range replicas {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	h.checkLedger(h.sb.ThreatQ.Ledger.Entries(), want, "Review")
	log := h.sb.CTR.Requests()
	if got := ctrsim.MaxInWindow(log, window); got > budget {
		t.Errorf("%d CTR requests in one %s window, budget %d", got, window, budget)
	}
	busy := 0
	for i := range stats {
		if stats[i].Calls.Load() > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("only %d of the 3 extra replicas called CTR: the test proves little", busy)
	}
	t.Logf("%d CTR requests, at most %d in any %s window; replicas' calls %d %d %d, pipeline's %d",
		len(log), ctrsim.MaxInWindow(log, window), window, stats[0].Calls.Load(), stats[1].Calls.Load(), stats[2].Calls.Load(),
		p.EnricherStats().Calls.Load())
}
