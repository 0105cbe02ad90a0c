package service_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/services/exporter/service"
)

// TestMidnightStartsANewEvent cuts days in the configured zone: an
// indicator updated a minute before local midnight goes to that day's
// events, one updated a minute after to the next day's, and a value on
// both days is in both.
func TestMidnightStartsANewEvent(t *testing.T) {
	t.Parallel()
	s, url := newMISP(t, mispsim.Options{Seed: 2})
	b := bustest.New(t)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Date(2025, 1, 14, 23, 59, 0, 0, ny) // 04:59 UTC on the 15th.
	after := time.Date(2025, 1, 15, 0, 1, 0, 0, ny)
	inds := append(generate(7, 0, before), generate(4, 100, after)...)
	inds = append(inds, indicator{id: 999, typ: "IP Address", value: "10.0.0.0", score: 5, updated: after}) // Also on the 14th.
	publish(t, b, inds)
	cfg := testConfig(url)
	cfg.TimeZone, cfg.MaxPerEvent = "America/New_York", 5
	run(t, b, cfg, int64(len(inds)), time.Minute)
	counts := holding(t, s, want(t, inds, ny), 5)
	if c := counts["2025-01-14"]; len(c) != 2 || c[0] != 5 || c[1] != 2 {
		t.Errorf("2025-01-14 events hold %v, want [5 2]", c)
	}
	if c := counts["2025-01-15"]; len(c) != 1 || c[0] != 5 {
		t.Errorf("2025-01-15 events hold %v, want [5]", c)
	}
	checkValid(t, s, url)
}

// runReplicas runs one exporter per bus, all at once, until n messages
// are settled across them.
func runReplicas(t *testing.T, buses []*bus.Bus, cfg service.Config, n int64) {
	t.Helper()
	cfg = valid(t, cfg)
	sc := &settleCounter{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, len(buses))
	for i, b := range buses {
		wg.Go(func() {
			errs[i] = service.Run(ctx, cfg, b, slog.New(slog.DiscardHandler), &service.Stats{}, sc.onSettle)
		})
	}
	testkit.Wait(func() bool { return sc.total() >= n }, 2*time.Minute)
	cancel()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if sc.total() < n {
		t.Fatalf("%d of %d settled", sc.total(), n)
	}
}

// TestTwoReplicasGiveTheSameResult runs two exporters on separate
// connections sharing the consumer and the day state: small batches make
// them race for every chunk, and still no chunk overflows, none is
// created twice and every attribute is stored once.
func TestTwoReplicasGiveTheSameResult(t *testing.T) {
	t.Parallel()
	s, url := newMISP(t, mispsim.Options{Seed: 3})
	srv := bustest.Server(t)
	b1, b2 := bustest.Connect(t, srv), bustest.Connect(t, srv)
	inds := generate(2050, 0, day1)
	publish(t, b1, inds)
	cfg := testConfig(url)
	cfg.MaxPerEvent, cfg.BatchSize, cfg.SendSize = 100, 30, 20
	runReplicas(t, []*bus.Bus{b1, b2}, cfg, int64(len(inds)))
	counts := holding(t, s, want(t, inds, time.UTC), 100)
	c := counts["2025-01-15"]
	if len(c) != 21 || c[20] != 50 {
		t.Errorf("events hold %v, want 20 × 100 then 50", c)
	}
	for i, n := range c[:min(20, len(c))] {
		if n != 100 {
			t.Errorf("event #%d holds %d, want 100", i+1, n)
		}
	}
	if got := s.Ledger.Len(); got != 2050+21 {
		t.Errorf("ledger %d entries, want %d (each event and attribute once)", got, 2050+21)
	}
}

// TestFaultsLeaveTheSameFinalState injects MISP faults; the final state
// is always every attribute once, no chunk over its cap.
func TestFaultsLeaveTheSameFinalState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   mispsim.Options
		faults sim.Faults
	}{
		{name: "503s and dropped connections", faults: sim.Faults{ErrorRate: 0.25, DropRate: 0.05}},
		{name: "503s with HTML bodies", opts: mispsim.Options{HTMLErrors: true}, faults: sim.Faults{ErrorRate: 0.3, PathPrefix: "/attributes/"}},
		{name: "timeouts leaving batches partly saved", opts: mispsim.Options{TimeoutAfter: 150}},
		{name: "500s retried later, not dead-lettered", faults: sim.Faults{ErrorRate: 0.3, ErrorStatus: 500, PathPrefix: "/attributes/add"}},
		{name: "request body limit", opts: mispsim.Options{MaxPayloadBytes: 40_000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.Seed = 4
			s, url := newMISP(t, tt.opts)
			s.Faults.Set(tt.faults)
			b := bustest.New(t)
			inds := generate(1500, 0, day1)
			publish(t, b, inds)
			cfg := testConfig(url)
			cfg.MaxPerEvent, cfg.BatchSize, cfg.SendSize = 600, 300, 300
			if tt.opts.TimeoutAfter > 0 || tt.faults.ErrorStatus == 500 {
				// The exporter waits MISP_TIMEOUT before resending after a
				// 504: keep it short here.
				cfg.MISP.Timeout = time.Second
			}
			_, sc := run(t, b, cfg, int64(len(inds)), 2*time.Minute)
			if sc.dead.Load() != 0 {
				t.Errorf("%d dead letters: %+v", sc.dead.Load(), deadLetters(t, b))
			}
			counts := holding(t, s, want(t, inds, time.UTC), 600)
			if c := counts["2025-01-15"]; len(c) != 3 || c[0] != 600 || c[1] != 600 || c[2] != 300 {
				t.Errorf("events hold %v, want [600 600 300]", c)
			}
		})
	}
}

// TestKilledMidBatch stops the exporter while MISP calls are in flight,
// then starts it again: nothing is lost, nothing stored twice, no slot
// wasted.
func TestKilledMidBatch(t *testing.T) {
	t.Parallel()
	s, url := newMISP(t, mispsim.Options{Seed: 5})
	s.Faults.Set(sim.Faults{Latency: 50 * time.Millisecond})
	b := bustest.New(t)
	inds := generate(3000, 0, day1)
	publish(t, b, inds)
	cfg := testConfig(url)
	cfg.MaxPerEvent, cfg.BatchSize, cfg.SendSize, cfg.Concurrency = 1000, 400, 50, 2
	cfg.DrainTimeout = 20 * time.Millisecond

	sc := &settleCounter{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	cfg = valid(t, cfg)
	go func() { errc <- service.Run(ctx, cfg, b, slog.New(slog.DiscardHandler), &service.Stats{}, sc.onSettle) }()
	if !testkit.Wait(func() bool { return sc.total() >= 500 }, 2*time.Minute) {
		t.Errorf("%d indicators settled in 2 minutes, want 500 before the stop", sc.total())
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	first := sc.acked.Load()
	if first >= int64(len(inds)) {
		t.Fatal("the exporter finished before it was stopped")
	}
	s.Faults.Set(sim.Faults{})
	cfg.DrainTimeout = 5 * time.Second
	run(t, b, cfg, int64(len(inds))-first, time.Minute)
	counts := holding(t, s, want(t, inds, time.UTC), 1000)
	if c := counts["2025-01-15"]; len(c) != 3 || c[0] != 1000 || c[1] != 1000 || c[2] != 1000 {
		t.Errorf("events hold %v, want [1000 1000 1000]", c)
	}
}

// TestRejectedAttributesAreDeadLetteredAlone uses a MISP that does not
// know the email-src type: those attributes are refused (by MISP, or
// before sending when the exporter checks describeTypes) and
// dead-lettered; every other one is stored. A call where MISP refuses
// everything (a validation 403) is not taken for a wrong key.
func TestRejectedAttributesAreDeadLetteredAlone(t *testing.T) {
	t.Parallel()
	for _, check := range []bool{false, true} {
		name := map[bool]string{false: "refused by MISP", true: "refused before sending"}[check]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, url := newMISP(t, mispsim.Options{Seed: 6, DescribeTypes: describeTypes(t, "email-src")})
			b := bustest.New(t)
			inds := generate(400, 0, day1)
			var emails []indicator
			for _, in := range generate(40, 1000, day1) {
				if in.typ == "Email Address" {
					emails = append(emails, in)
				}
			}
			publish(t, b, inds)
			cfg := testConfig(url)
			cfg.CheckTypes = check
			cfg.BatchSize = 100
			run(t, b, cfg, int64(len(inds)), time.Minute)
			publish(t, b, emails) // Alone in their batch: MISP answers 403 saved:false.
			run(t, b, cfg, int64(len(emails)), time.Minute)

			var kept []indicator
			rejected := 0
			for _, in := range append(inds, emails...) {
				if in.typ == "Email Address" {
					rejected++
				} else {
					kept = append(kept, in)
				}
			}
			holding(t, s, want(t, kept, time.UTC), 25_000)
			dls := deadLetters(t, b)
			if len(dls) != rejected {
				t.Errorf("%d dead letters, want %d", len(dls), rejected)
			}
			for _, dl := range dls {
				if dl.Reason != bus.ReasonPermanent || !strings.Contains(dl.Error, "email-src") {
					t.Errorf("dead letter %s: %s", dl.Reason, dl.Error)
				}
			}
		})
	}
}

// TestValuesMISPWouldRefuse dead-letters values that do not normalise,
// with MISP's own reason, and exports the rest.
func TestValuesMISPWouldRefuse(t *testing.T) {
	t.Parallel()
	s, url := newMISP(t, mispsim.Options{Seed: 7})
	b := bustest.New(t)
	good := generate(50, 0, day1)
	bad := []indicator{
		{id: 901, typ: "SHA-256", value: "not-a-hash", updated: day1},
		{id: 902, typ: "IP Address", value: "999.1.1.1", updated: day1},
		{id: 903, typ: "CVE", value: "CVE-20-1", updated: day1},
	}
	unsupported := indicator{id: 904, typ: "Malware Family", value: "zeus", updated: day1}
	all := append(append(append([]indicator{}, good...), bad...), unsupported)
	publish(t, b, all)
	stats, _ := run(t, b, testConfig(url), int64(len(all)), time.Minute)
	holding(t, s, want(t, good, time.UTC), 25_000)
	dls := deadLetters(t, b)
	if len(dls) != len(bad) {
		t.Fatalf("%d dead letters, want %d", len(dls), len(bad))
	}
	for _, dl := range dls {
		if !strings.Contains(dl.Error, "normalise") || !strings.Contains(dl.Error, "misp: invalid") {
			t.Errorf("dead letter reason %q does not say why", dl.Error)
		}
	}
	if stats.Unsupported.Load() != 1 || stats.Invalid.Load() != int64(len(bad)) {
		t.Errorf("unsupported %d invalid %d", stats.Unsupported.Load(), stats.Invalid.Load())
	}
}

// TestBadMISPStopsBeforeConsuming checks start-up against a wrong key and
// an unreachable MISP: a clear error, and no message taken, so that the
// next start with the right settings exports everything.
func TestBadMISPStopsBeforeConsuming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		url     func(good string) string
		key     string
		wantIs  error
		wantMsg string
	}{
		{name: "wrong key", url: func(g string) string { return g }, key: strings.Repeat("x", 40),
			wantIs: misp.ErrAuth, wantMsg: "Authentication failed"},
		{name: "unreachable", url: func(string) string { return "http://127.0.0.1:1" }, key: key,
			wantMsg: "no answer within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, url := newMISP(t, mispsim.Options{Seed: 8})
			b := bustest.New(t)
			inds := generate(20, 0, day1)
			publish(t, b, inds)
			cfg := testConfig(tt.url(url))
			cfg.MISP.Key = config.Secret(tt.key)
			cfg.StartupTimeout = time.Second
			err := service.Run(context.Background(), valid(t, cfg), b, slog.New(slog.DiscardHandler), &service.Stats{}, nil)
			if err == nil || !strings.Contains(err.Error(), "check misp") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want a check misp error saying %q", err, tt.wantMsg)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.wantIs)
			}
			if strings.Contains(err.Error(), tt.key) {
				t.Error("the error shows the key")
			}
			if _, cerr := b.JetStream().Consumer(context.Background(), bus.StreamIndicators, "exporter-misp-"+instance); !errors.Is(cerr, jetstream.ErrConsumerNotFound) {
				t.Errorf("consumer lookup: %v, want not found (nothing consumed)", cerr)
			}
			run(t, b, testConfig(url), int64(len(inds)), time.Minute)
			holding(t, s, want(t, inds, time.UTC), 25_000)
		})
	}
}

// TestValidateReportsEveryProblem checks configuration errors, all at
// once, naming each variable.
func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*service.Config)
		want []string
	}{
		{name: "valid", edit: func(*service.Config) {}},
		{name: "threshold not a number", edit: func(c *service.Config) { c.ToIDsThreshold = "high" }, want: []string{"EXPORTER_TO_IDS_THRESHOLD"}},
		{name: "threshold out of range", edit: func(c *service.Config) { c.ToIDsThreshold = "11" }, want: []string{"EXPORTER_TO_IDS_THRESHOLD"}},
		{name: "threshold NaN", edit: func(c *service.Config) { c.ToIDsThreshold = "NaN" }, want: []string{"EXPORTER_TO_IDS_THRESHOLD"}},
		{name: "min score", edit: func(c *service.Config) { c.MinScore = -1 }, want: []string{"EXPORTER_MIN_SCORE"}},
		{name: "zone", edit: func(c *service.Config) { c.TimeZone = "Mars/Olympus" }, want: []string{"EXPORTER_TIMEZONE"}},
		{name: "chunk over 25000", edit: func(c *service.Config) { c.MaxPerEvent = 25_001 }, want: []string{"EXPORTER_MAX_PER_EVENT"}},
		{name: "claim ttl under two days", edit: func(c *service.Config) { c.ClaimTTL = 47 * time.Hour }, want: []string{"EXPORTER_CLAIM_TTL"}},
		{name: "claim ttl unset", edit: func(c *service.Config) { c.ClaimTTL = 0 }, want: []string{"EXPORTER_CLAIM_TTL"}},
		{name: "many at once", edit: func(c *service.Config) {
			c.ToIDsThreshold, c.DayFrom, c.Distribution, c.MISP.Key = "-2", "now", "5", "short"
		}, want: []string{"EXPORTER_TO_IDS_THRESHOLD", "EXPORTER_DAY_FROM", "EXPORTER_DISTRIBUTION", "KEY is not 40"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testConfig("https://misp.example.org")
			tt.edit(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
			if strings.Contains(err.Error(), key) {
				t.Error("the error shows the key")
			}
		})
	}
}

// TestScoreSettings follows misp.md §8: the score in the comment, to_ids
// from the threshold, the optional tag.
func TestScoreSettings(t *testing.T) {
	t.Parallel()
	s, url := newMISP(t, mispsim.Options{Seed: 9})
	b := bustest.New(t)
	inds := []indicator{
		{id: 1, typ: "IP Address", value: "192.0.2.1", score: 8.5, updated: day1},
		{id: 2, typ: "IP Address", value: "192.0.2.2", score: 3, updated: day1},
		{id: 3, typ: "Email Subject", value: "Invoice", score: 9, updated: day1}, // MISP default to_ids 0.
		{id: 4, typ: "Password", value: "hunter2", score: 1, updated: day1},
	}
	publish(t, b, inds)
	cfg := testConfig(url)
	cfg.ToIDsThreshold, cfg.ScoreTag = "7", true
	run(t, b, cfg, int64(len(inds)), time.Minute)
	evs := s.Events()
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	got := map[string]mispsim.Attribute{}
	for _, a := range s.Attributes(evs[0].UUID) {
		got[a.Value] = a
	}
	for _, tc := range []struct {
		value, comment, tag string
		toIDs               bool
	}{
		{"192.0.2.1", "ThreatQ score: 8.5", `threatq:score="8"`, true},
		{"192.0.2.2", "ThreatQ score: 3", `threatq:score="3"`, false},
		{"Invoice", "ThreatQ score: 9", `threatq:score="9"`, true},
		{"hunter2", "ThreatQ score: 1; ThreatQ type: Password", `threatq:score="1"`, false},
	} {
		a := got[tc.value]
		if a.Comment != tc.comment || a.ToIDs != tc.toIDs || len(a.Tags) != 1 || a.Tags[0] != tc.tag {
			t.Errorf("%s: comment %q to_ids %v tags %v; want %q %v %q", tc.value, a.Comment, a.ToIDs, a.Tags, tc.comment, tc.toIDs, tc.tag)
		}
	}
	if ev := evs[0]; ev.Published || ev.Analysis != "2" || ev.ThreatLevelID != "4" || ev.Distribution != "0" ||
		len(ev.Tags) != 2 || ev.Info != "ThreatQ export 2025-01-15 #1" {
		t.Errorf("event %+v", ev)
	}
}
