package e2e_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
	"github.com/tqflow/tqflow/pkg/threatq"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
)

// ctrNames are the attribute names CTR enrichment writes; the generated
// dataset's feeds write rows under several of them too.
var ctrNames = []string{"CTR Module", "Disposition", "Confidence", "Severity", "Description", "Source", "Priority", "Origin", "Reference"}

// TestCTROwnRowsAndStatuses holds the CTR job to how ThreatQ really
// behaves (contracts/threatq.md, corrections 1 and 2): consume does not
// set the status of an existing indicator, and rows under the nine names
// CTR writes also come from other feeds. Over two runs between which
// CTR's answer changes: indicators with context end at CTR_STATUS
// whatever status they had, the others keep theirs; every other feed's
// row is still there, with its sources; every row removed was ours alone;
// and our rows are exactly what CTR's modules say now (the simulator's
// own knowledge base), the stale ones gone.
func TestCTROwnRowsAndStatuses(t *testing.T) {
	t.Parallel()
	const seed = 23
	h, clock := newClockedHarness(t, sandbox.Options{Seed: seed, Indicators: 1500, ContextShare: 0.4})
	vars := map[string]string{"ENRICHER_CACHE": "false"} // Run 2 must hear CTR's new answer.
	inds := h.sb.Dataset.Indicators
	ctxOther, noCtxOther, feedRows := 0, 0, 0
	for _, in := range inds {
		switch {
		case h.sb.Dataset.WithContext[in.ID] && in.Status != "Review":
			ctxOther++
		case !h.sb.Dataset.WithContext[in.ID] && in.Status != "Active":
			noCtxOther++
		}
		for _, a := range in.Attributes {
			if slices.Contains(ctrNames, a.Name) && h.sb.Dataset.WithContext[in.ID] {
				feedRows++
			}
		}
	}
	if ctxOther < 100 || noCtxOther < 50 || feedRows < 100 {
		t.Fatalf("dataset too thin: %d with context at another status, %d without at a non-Active one, %d feed rows under CTR's names on them",
			ctxOther, noCtxOther, feedRows)
	}

	h.runOnce(nil, vars)
	h.checkOwnRows(t, "run 1")

	// CTR changes its mind on a share of what it knew.
	soc := ctrsim.ModuleContext{
		Module: "SOC Review", Disposition: 1,
		Judgement: &ctrsim.Judgement{Confidence: "Low", Severity: "Info", Priority: 10, Reason: "Re-assessed: sinkholed", Source: "SOC analyst"},
	}
	var revised []int64
	var revisedObs []ctrsim.Observable
	for _, in := range inds {
		if h.sb.Dataset.WithContext[in.ID] && len(revised) < 60 {
			revised = append(revised, in.ID)
			o := ctrsim.Observable{Type: mustType(t, in.Type), Value: in.Value}
			revisedObs = append(revisedObs, o)
			h.sb.CTR.SetContext(o, soc)
		}
	}
	// rerun touches the revised indicators and runs once more, and
	// returns how many rows the run removed.
	rerun := func(name string) int {
		t.Helper()
		clock.Advance(1100 * time.Millisecond) // ThreatQ timestamps have one-second resolution.
		h.sb.ThreatQ.Touch(revised, clock.Now().UTC())
		clock.Advance(1100 * time.Millisecond) // A run reads up to the start of its second.
		ledger := h.sb.ThreatQ.Ledger.Len()
		s := h.runOnce(nil, vars)
		h.checkOwnRows(t, name)
		removed := 0
		for _, e := range h.sb.ThreatQ.Ledger.Entries()[ledger:] {
			if e.Op == "attribute.delete" {
				removed++
			}
		}
		if s.Writer.Removed.Load() != int64(removed) {
			t.Errorf("%s removed %d rows, the writer says %d", name, removed, s.Writer.Removed.Load())
		}
		return removed
	}
	if removed := rerun("run 2"); removed == 0 {
		t.Errorf("run 2 removed no row: CTR's changed answer left no stale row of ours, the test proves nothing")
	}

	// CTR learns more of them from another module, then forgets it while
	// what SOC Review says stands: the other module's rows are ours alone
	// and stale, though every value CTR still gives is there and the
	// status is set. Only the rows' sources, as the fetcher read them,
	// tell the enricher that a write is due.
	for _, o := range revisedObs {
		h.sb.CTR.AddContext(o, ctrsim.ModuleContext{
			Module: "Campaign Tracker", Disposition: 2,
			Judgement: &ctrsim.Judgement{Confidence: "High", Severity: "High", Priority: 90, Reason: "Seen in a campaign", Source: "Campaign Tracker"},
		})
	}
	rerun("run 3")
	for _, o := range revisedObs {
		h.sb.CTR.SetContext(o, soc)
	}
	if removed := rerun("run 4"); removed < len(revised) {
		t.Errorf("run 4 removed %d rows for %d indicators: the forgotten module's rows of ours were left", removed, len(revised))
	}
}

// checkOwnRows checks ThreatQ against the dataset after a run.
func (h *harness) checkOwnRows(t *testing.T, run string) {
	t.Helper()
	ours := enrichersvc.DefaultSource
	problems := 0
	report := func(format string, args ...any) {
		if problems++; problems <= 20 {
			t.Errorf(run+": "+format, args...)
		}
	}
	otherRemoved := 0
	for _, e := range h.sb.ThreatQ.Ledger.Entries() {
		if e.Op == "attribute.delete" && !slices.Equal(e.Sources, []string{ours}) {
			otherRemoved++
			report("%s: removed %s=%q of %v", e.Object, e.Name, e.Value, e.Sources)
		}
	}
	if otherRemoved != 0 {
		t.Errorf("%s: rows of other sources removed: %d, want 0", run, otherRemoved)
	}
	for _, was := range h.sb.Dataset.Indicators {
		now, _ := h.sb.ThreatQ.Indicator(was.ID)
		withContext := h.sb.Dataset.WithContext[was.ID]
		if wantStatus := map[bool]string{true: "Review", false: was.Status}[withContext]; now.Status != wantStatus {
			report("indicator %d (context %v): status %q, want %q (was %q)", was.ID, withContext, now.Status, wantStatus, was.Status)
		}
		for _, a := range was.Attributes {
			if !slices.ContainsFunc(now.Attributes, func(r tqsim.Attribute) bool {
				return r.Name == a.Name && r.Value == a.Value && !slices.ContainsFunc(a.Sources, func(s string) bool { return !slices.Contains(r.Sources, s) })
			}) {
				report("indicator %d: %v's row %s=%q is gone", was.ID, a.Sources, a.Name, a.Value)
			}
		}
		// Rows of ours alone are exactly what CTR's modules say now, and
		// each of those is held with our source (on a row of ours, or on
		// another feed's row it joined). A row another feed also reports
		// keeps our source when our value moves on (the API has no route
		// to take a source off a row), so it is not counted.
		type row struct{ name, value string }
		want := map[row]bool{}
		if withContext {
			typ, _ := sandbox.CTRType(was.Type)
			for _, a := range h.sb.CTR.Attributes(ctrsim.Observable{Type: typ, Value: was.Value}) {
				want[row{a.Name, a.Value}] = true
			}
		}
		held := map[row]bool{}
		withOurs := 0
		for _, r := range now.Attributes {
			if slices.Contains(r.Sources, ours) {
				withOurs++
				held[row{r.Name, r.Value}] = true
			}
			if slices.Equal(r.Sources, []string{ours}) && !want[row{r.Name, r.Value}] {
				report("indicator %d: our row %s=%q is not what CTR says now: a stale one was left", was.ID, r.Name, r.Value)
			}
		}
		for r := range want {
			if !held[r] {
				report("indicator %d: CTR says %s=%q but no row holds it with our source", was.ID, r.name, r.value)
			}
		}
		if withContext && withOurs == 0 {
			report("indicator %d has context but no row of ours", was.ID)
		}
		if !withContext && withOurs > 0 {
			report("indicator %d has no context but %d rows of ours", was.ID, withOurs)
		}
	}
	if problems > 20 {
		t.Errorf("%s: ... and %d more problems", run, problems-20)
	}
}

// TestMisspeltStatus: a status name ThreatQ does not have, as spelt, stops
// start-up with one message naming it and listing the instance's
// statuses, before anything is fetched or published.
func TestMisspeltStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sandbox.Options{Seed: 3, Indicators: 50, ContextShare: 0.5})
	tests := []struct {
		name      string
		vars      map[string]string
		wantLines int
		wantMsgs  []string
	}{
		{"CTR_STATUS in another case", map[string]string{"CTR_STATUS": "review"}, 1,
			[]string{`CTR_STATUS "review"`, "indicator statuses are: Active, Expired, Indirect, Review, Whitelisted, False Positive"}},
		{"ET statuses", map[string]string{"JOBS": "et", "ET_NONSTANDARD_STATUS": "Reveiw", "ET_RETIRED_STATUS": "Retired"}, 2,
			[]string{`ET_NONSTANDARD_STATUS "Reveiw"`, `ET_RETIRED_STATUS "Retired"`, "signature statuses are: Active, Expired, Indirect, Non-malicious, Review, Whitelisted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: the subtests share the harness's server.
			b := h.connect()
			_, err := pipeline.New(context.Background(), h.config(tt.vars), pipeline.Buses{Default: b}, h.logger())
			var usage *config.Error
			var unknown *threatq.UnknownStatusError
			if !errors.As(err, &usage) || !errors.As(err, &unknown) {
				t.Fatalf("start-up: %v, want a usage error naming the status", err)
			}
			for _, w := range tt.wantMsgs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not say %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != tt.wantLines {
				t.Errorf("message has %d lines, want one per misspelt name:\n%s", n, err)
			}
			for _, stream := range []string{bus.StreamIndicators, bus.StreamRulesets, bus.StreamWrites} {
				if st := streamState(t, b, stream); st.Msgs != 0 {
					t.Errorf("stream %s holds %d messages, want nothing published", stream, st.Msgs)
				}
			}
			if n := h.sb.ThreatQ.Stats.Count("POST /api/indicators/query"); n != 0 {
				t.Errorf("%d indicator queries, want nothing fetched", n)
			}
		})
	}
}
