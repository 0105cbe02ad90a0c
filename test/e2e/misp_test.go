package e2e_test

import (
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
)

// TestMISPJobAfterStateLoss runs the MISP job, loses the NATS state (a new
// server) and runs it again on the same day: the second run changes
// nothing in MISP, no event passes EXPORTER_MAX_PER_EVENT, and no event
// holds two values MISP's duplicate rule would take for one. The checks
// read the simulator's ledger and events only; nothing here calls pkg/misp.
func TestMISPJobAfterStateLoss(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sandbox.Options{Seed: 21, Indicators: 1500})
	h.vars["JOBS"] = "misp"
	extra := map[string]string{"EXPORTER_MAX_PER_EVENT": "200"}
	s := h.runOnce(nil, extra)
	saved := s.Exporter.Saved.Load()
	entries := h.sb.MISP.Ledger.Len()
	if saved < 400 {
		t.Fatalf("the first run saved %d attributes: too few to prove anything", saved)
	}
	check := func(when string) {
		for _, ev := range h.sb.MISP.Events() {
			if ev.AttributeCount > 200 {
				t.Errorf("%s: event %q holds %d attributes, over 200", when, ev.Info, ev.AttributeCount)
			}
			seen := map[string]string{}
			for _, a := range h.sb.MISP.Attributes(ev.UUID) {
				k := a.Type + "|" + a.Category + "|" + strings.ToLower(a.Value)
				if prev, dup := seen[k]; dup {
					t.Errorf("%s: event %q holds %q and %q", when, ev.Info, prev, a.Value)
				}
				seen[k] = a.Value
			}
		}
	}
	check("first run")

	h.srv = bustest.Server(t) // The NATS state is gone.
	s = h.runOnce(nil, extra)
	if n := h.sb.MISP.Ledger.Len(); n != entries {
		t.Errorf("the run after the state loss changed MISP: ledger %d → %d entries", entries, n)
	}
	if s.Exporter.Saved.Load() != 0 || s.Exporter.Adopted.Load() == 0 {
		t.Errorf("the run after the state loss saved %d, adopted %d events; want 0 and some", s.Exporter.Saved.Load(), s.Exporter.Adopted.Load())
	}
	check("second run")
}
