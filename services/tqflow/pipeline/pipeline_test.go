package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
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

// roundTripFunc is an http.RoundTripper of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestLoaderUsesItsOwnThreatQ: the signature-loader resolves its statuses
// and types with its own THREATQ_ settings, not the writer's.
func TestLoaderUsesItsOwnThreatQ(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.Start(sandbox.Options{Seed: 9, Indicators: 1, Rules: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	vars := sb.Env()
	vars["JOBS"] = "et"
	log := slog.New(slog.DiscardHandler)
	env := &app.Env{Resolved: &app.Resolved{Vars: vars, Instance: "default", Log: log}}
	var pc pipeline.Config
	if err := pc.Parse(env); err != nil {
		t.Fatalf("configuration: %v", err)
	}
	var calls atomic.Int64
	pc.Loader.ThreatQ.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.Contains(r.URL.Path, "/signature") {
				calls.Add(1)
			}
			return next.RoundTrip(r)
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, err := pipeline.New(ctx, pc, pipeline.Buses{Default: bustest.New(t)}, log)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	wait := p.StartWorkers(wctx)
	err = p.WaitStarted(ctx)
	stop()
	// Stopped while starting, a worker may say so (context canceled).
	if werr := wait(); err == nil && !errors.Is(werr, context.Canceled) {
		err = werr
	}
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() == 0 {
		t.Error("the signature-loader made no signature call through its own ThreatQ settings")
	}
}
