package service_test

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
)

// eventsByInfo returns the attribute values of each event, by info.
func eventsByInfo(s *mispsim.Server) map[string][]string {
	out := map[string][]string{}
	for _, ev := range s.Events() {
		var vs []string
		for _, a := range s.Attributes(ev.UUID) {
			vs = append(vs, a.Value)
		}
		sort.Strings(vs)
		out[ev.Org+"/"+ev.UUID+"/"+ev.Info] = vs
	}
	return out
}

// TestTwoDeploymentsNeverShareAnEvent exports two ThreatQs into one MISP
// under the same instance name: each gets its own event of the day, and an
// event of another organisation that sits under one deployment's UUID is
// left as it was.
func TestTwoDeploymentsNeverShareAnEvent(t *testing.T) {
	t.Parallel()
	s, url := newMISP(t, mispsim.Options{Seed: 11, OrgName: "Ours"})
	cfgA, cfgB := testConfig(url), testConfig(url)
	cfgA.ThreatQURL, cfgB.ThreatQURL = "https://tq-a.example/", "https://tq-b.example"
	// Another organisation's event (synced in, say) under A's chunk-1
	// UUID. Placing it needs the UUID; Foreign below proves it was met.
	foreign := misp.EventUUID(misp.Seed(url, cfgA.ThreatQURL, instance), "2025-01-15", 1)
	s.AddForeignEvent(foreign, "ThreatQ export 2025-01-15 #1", "Other Org", []string{"source:threatq-export"}, 3)

	a := []indicator{{1, "IP Address", "192.0.2.1", 5, day1}, {2, "FQDN", "a.example", 5, day1}}
	b := []indicator{{1, "IP Address", "198.51.100.1", 5, day1}, {2, "FQDN", "b.example", 5, day1}}
	busA, busB := bustest.New(t), bustest.New(t)
	publish(t, busA, a)
	publish(t, busB, b)
	statsA, _ := run(t, busA, cfgA, 2, time.Minute)
	run(t, busB, cfgB, 2, time.Minute)

	got := eventsByInfo(s)
	want := map[string]bool{
		fmt.Sprint([]string{"192.0.2.1", "a.example"}):    false,
		fmt.Sprint([]string{"198.51.100.1", "b.example"}): false,
	}
	for k, vs := range got {
		if k == "Other Org/"+foreign+"/ThreatQ export 2025-01-15 #1" {
			if len(vs) != 3 {
				t.Errorf("the foreign event was changed: %v", vs)
			}
			continue
		}
		if _, ok := want[fmt.Sprint(vs)]; !ok {
			t.Errorf("event %s holds %v: a mix, or unexpected", k, vs)
		}
		want[fmt.Sprint(vs)] = true
	}
	for vs, seen := range want {
		if !seen {
			t.Errorf("no event holds exactly %s", vs)
		}
	}
	if len(got) != 3 {
		t.Errorf("%d events, want 3 (theirs, A's, B's): %v", len(got), got)
	}
	if statsA.Foreign.Load() < 1 {
		t.Errorf("deployment A never met the foreign event under its UUID")
	}
}

// TestStateWipedBetweenRuns loses the NATS state between two runs of the
// same day: the second run finds the day's events, adds nothing it already
// added, and no event passes MaxPerEvent.
func TestStateWipedBetweenRuns(t *testing.T) {
	t.Parallel()
	s, url := newMISP(t, mispsim.Options{Seed: 12})
	cfg := testConfig(url)
	cfg.MaxPerEvent = 40
	first := generate(100, 0, day1)
	b1 := bustest.New(t)
	publish(t, b1, first)
	run(t, b1, cfg, int64(len(first)), time.Minute)
	before := eventsByInfo(s)

	b2 := bustest.New(t) // A new NATS: no day state, no claims.
	publish(t, b2, first)
	stats, sc := run(t, b2, cfg, int64(len(first)), time.Minute)
	if sc.dead.Load() != 0 {
		t.Errorf("%d dead letters: %+v", sc.dead.Load(), deadLetters(t, b2))
	}
	if n := stats.Saved.Load(); n != 0 {
		t.Errorf("the second run saved %d attributes, want 0", n)
	}
	if after := eventsByInfo(s); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("MISP changed:\n before %v\n after  %v", before, after)
	}
	if stats.Adopted.Load() != 3 {
		t.Errorf("adopted %d events, want 3", stats.Adopted.Load())
	}

	// New values after the wipe go after what the events hold.
	more := generate(30, 100, day1)
	publish(t, b2, append(first, more...))
	run(t, b2, cfg, int64(len(first)+len(more)), time.Minute)
	counts := holding(t, s, want(t, append(first, more...), time.UTC), 40)
	if c := counts["2025-01-15"]; fmt.Sprint(c) != "[40 40 40 10]" {
		t.Errorf("events hold %v, want [40 40 40 10]", c)
	}
}

// TestVariantsAreMergedByMISP sends values MISP's duplicate rule takes for
// one (case, accents): one of each is stored, the others are counted as
// merged, never as added and never as existing, in one batch, across
// batches, and after the state is lost.
func TestVariantsAreMergedByMISP(t *testing.T) {
	t.Parallel()
	s, url := newMISP(t, mispsim.Options{Seed: 13})
	cfg := testConfig(url)
	b := bustest.New(t)
	batch1 := []indicator{
		{1, "Filename", "Invoice.exe", 5, day1}, {2, "Filename", "invoice.EXE", 5, day1},
		{3, "URL", "http://a.example/Path", 5, day1},
	}
	publish(t, b, batch1)
	stats, _ := run(t, b, cfg, 3, time.Minute)
	if stats.Saved.Load() != 2 || stats.Merged.Load() != 1 || stats.Existing.Load() != 0 {
		t.Errorf("batch 1: saved %d merged %d existing %d, want 2 1 0", stats.Saved.Load(), stats.Merged.Load(), stats.Existing.Load())
	}
	publish(t, b, []indicator{{4, "Filename", "invoicé.exe", 5, day1}, {5, "URL", "http://A.example/path", 5, day1}})
	stats, _ = run(t, b, cfg, 2, time.Minute)
	if stats.Saved.Load() != 0 || stats.Merged.Load() != 2 || stats.Existing.Load() != 0 {
		t.Errorf("batch 2: saved %d merged %d existing %d, want 0 2 0", stats.Saved.Load(), stats.Merged.Load(), stats.Existing.Load())
	}
	var values []string
	for _, ev := range s.Events() {
		for _, a := range s.Attributes(ev.UUID) {
			values = append(values, a.Value)
		}
	}
	sort.Strings(values)
	var stored string // Whichever the batch put first.
	for _, v := range values {
		if v == "Invoice.exe" || v == "invoice.EXE" {
			stored = v
		}
	}
	if len(values) != 2 || stored == "" || !slices.Contains(values, "http://a.example/Path") {
		t.Fatalf("MISP holds %v, want one of each group", values)
	}
	wiped := bustest.New(t)
	publish(t, wiped, []indicator{{6, "Filename", "INVOICE.exe", 5, day1}, {1, "Filename", stored, 5, day1}})
	stats, _ = run(t, wiped, cfg, 2, time.Minute)
	if stats.Saved.Load() != 0 || stats.Merged.Load() != 1 || stats.Existing.Load() != 1 {
		t.Errorf("after a wipe: saved %d merged %d existing %d, want 0 1 1", stats.Saved.Load(), stats.Merged.Load(), stats.Existing.Load())
	}
	if n := len(s.Attributes(s.Events()[0].UUID)); n != 2 || len(s.Events()) != 1 {
		t.Errorf("MISP holds %d events, %d attributes; want 1, 2", len(s.Events()), n)
	}
}

// TestStormOf504s: every large /attributes/add answers 504 while PHP goes
// on saving. The exporter waits MISP_TIMEOUT before resending, so no
// request meets the uuid unique key (500), and MISP ends up exact.
func TestStormOf504s(t *testing.T) {
	t.Parallel()
	s, url := newMISP(t, mispsim.Options{Seed: 14, TimeoutAfter: 100, KeepSaving: 300 * time.Millisecond})
	cfg := testConfig(url)
	cfg.MISP.Timeout = time.Second
	cfg.SendSize, cfg.BatchSize = 400, 400
	inds := generate(800, 0, day1)
	b := bustest.New(t)
	publish(t, b, inds)
	_, sc := run(t, b, cfg, int64(len(inds)), 2*time.Minute)
	s.WaitWorkers()
	if sc.dead.Load() != 0 {
		t.Errorf("%d dead letters: %+v", sc.dead.Load(), deadLetters(t, b))
	}
	if n := s.Answered(http.StatusInternalServerError); n != 0 {
		t.Errorf("%d requests ended in a 500", n)
	}
	if n := s.Answered(http.StatusGatewayTimeout); n == 0 {
		t.Error("no 504 was answered: the storm did not happen")
	}
	holding(t, s, want(t, inds, time.UTC), 25_000)
}

// TestPublishOncePerRun publishes each touched event once, without
// alerts, after the run went quiet.
func TestPublishOncePerRun(t *testing.T) {
	t.Parallel()
	s, url := newMISP(t, mispsim.Options{Seed: 15})
	cfg := testConfig(url)
	// Quiet longer than the run: the shutdown publishes what the run
	// touched, each event once.
	cfg.Publish, cfg.PublishQuiet, cfg.MaxPerEvent = true, time.Minute, 30
	inds := generate(50, 0, day1)
	b := bustest.New(t)
	publish(t, b, inds)
	stats, _ := run(t, b, cfg, int64(len(inds)), time.Minute)
	if n := s.Stats.Count("POST /events/publish/{id}"); n != 2 {
		t.Errorf("%d publish calls, want 2 (one per event)", n)
	}
	for _, ev := range s.Events() {
		if !ev.Published {
			t.Errorf("event %q not published", ev.Info)
		}
	}
	if stats.Published.Load() != 2 {
		t.Errorf("stats say %d published", stats.Published.Load())
	}
}

// TestDeletedEventMovesToANewUUID deletes the day's event (MISP
// blocklists its UUID): the next values go to an event under the next
// UUID generation, whether MISP says so clearly or, before 2.4.150, with a
// 403 saved:false and empty errors, which is not a validation failure.
func TestDeletedEventMovesToANewUUID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		old  bool
	}{{"MISP 2.5", false}, {"MISP before 2.4.150", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, url := newMISP(t, mispsim.Options{Seed: 16, OldBlocklist: tt.old})
			cfg := testConfig(url)
			b := bustest.New(t)
			first := generate(10, 0, day1)
			publish(t, b, first)
			run(t, b, cfg, 10, time.Minute)
			gone := s.Events()[0].UUID
			s.DeleteEvent(gone)
			more := generate(5, 10, day1)
			publish(t, b, more)
			_, sc := run(t, b, cfg, 5, time.Minute)
			if sc.dead.Load() != 0 {
				t.Errorf("%d dead letters: %+v", sc.dead.Load(), deadLetters(t, b))
			}
			evs := s.Events()
			if len(evs) != 1 || evs[0].UUID == gone || evs[0].AttributeCount != 5 {
				t.Errorf("events after the delete: %+v", evs)
			}
		})
	}
}
