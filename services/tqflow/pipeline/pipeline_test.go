package pipeline_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/obs"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
)

// TestInstrumentTimesEveryAPI runs every job once against the sandbox, as
// tqflow run does, and checks that the metrics hold API calls to each
// system the jobs reach.
func TestInstrumentTimesEveryAPI(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.Start(sandbox.Options{Seed: 7, Indicators: 60, ContextShare: 0.5, Rules: 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	vars := sb.Env()
	vars["JOBS"] = "ctr,misp,et"
	log := slog.New(slog.DiscardHandler)
	env := &app.Env{Resolved: &app.Resolved{Vars: vars, Instance: "default", Log: log}}
	var pc pipeline.Config
	if err := pc.Parse(env); err != nil {
		t.Fatalf("configuration: %v", err)
	}
	m := obs.New("tqflow")
	pc.Instrument(m)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	p, err := pipeline.New(ctx, pc, pipeline.Buses{Default: bustest.New(t)}, log)
	if err != nil {
		t.Fatal(err)
	}
	p.Observe(m.OnSettle)
	if _, err := p.RunOnce(ctx, nil); err != nil {
		t.Fatalf("run: %v", err)
	}

	calls := map[string]uint64{} // By system.
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "tqflow_api_request_duration_seconds" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "system" {
					calls[l.GetValue()] += s.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	for _, system := range []string{obs.SystemThreatQ, obs.SystemCTR, obs.SystemMISP, obs.SystemET} {
		if calls[system] == 0 {
			t.Errorf("no API calls timed for system %q; timed: %v", system, calls)
		}
	}
	t.Logf("API calls timed, by system: %v", calls)
}
