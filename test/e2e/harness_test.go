package e2e_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/logging"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/testkit"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
)

// harness is the sandbox, an embedded NATS server, and the variables that
// point tqflow at them.
type harness struct {
	t    *testing.T
	sb   *sandbox.Sandbox
	srv  *bus.Embedded
	vars map[string]string
	// now, when set, is the fetcher's clock in runOnce: the ThreatQ
	// simulator's (sandbox.Options.ThreatQNow).
	now func() time.Time
}

func newHarness(t *testing.T, o sandbox.Options) *harness {
	t.Helper()
	sb, err := sandbox.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	vars := sb.Env()
	vars["JOBS"] = "ctr"
	vars["CTR_STATUS"] = "Review"
	vars["ENRICHER_ACK_WAIT"] = "5s" // Quick redelivery after a crash.
	vars["WRITER_ACK_WAIT"] = "5s"
	return &harness{t: t, sb: sb, srv: bustest.Server(t), vars: vars}
}

// newClockedHarness is newHarness with one hand-moved clock for the
// ThreatQ simulator and the fetcher: runs one after another see each
// other's writes once the test advances it past a second, as ThreatQ's
// timestamps have one-second resolution and a run reads up to the start
// of its second.
func newClockedHarness(t *testing.T, o sandbox.Options) (*harness, *testkit.Clock) {
	t.Helper()
	clock := testkit.NewClock(time.Now())
	o.ThreatQNow = clock.Now
	h := newHarness(t, o)
	h.now = clock.Now
	return h, clock
}

// connect returns a new connection to the harness's server, with the
// topology in place.
func (h *harness) connect() *bus.Bus {
	h.t.Helper()
	return bustest.Connect(h.t, h.srv)
}

func (h *harness) logger() *slog.Logger {
	if testing.Verbose() {
		return logging.New(os.Stderr, logging.Options{Level: slog.LevelDebug, Format: logging.FormatText})
	}
	return slog.New(slog.DiscardHandler)
}

// config parses the pipeline's configuration from the variables, exactly
// as tqflow run does.
func (h *harness) config(extra map[string]string) pipeline.Config {
	h.t.Helper()
	vars := map[string]string{}
	for k, v := range h.vars {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	env := &app.Env{Resolved: &app.Resolved{Vars: vars, Instance: "default", Log: h.logger()}}
	var pc pipeline.Config
	if err := pc.Parse(env); err != nil {
		h.t.Fatalf("configuration: %v", err)
	}
	return pc
}

// runOnce runs the pipeline once to completion.
func (h *harness) runOnce(historical *time.Time, extra map[string]string) pipeline.Summary {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := pipeline.New(ctx, h.config(extra), pipeline.Buses{Default: h.connect()}, h.logger())
	if err != nil {
		h.t.Fatal(err)
	}
	if h.now != nil {
		p.Fetcher().Now = h.now
	}
	s, err := p.RunOnce(ctx, historical)
	if err != nil {
		h.t.Fatalf("run: %v", err)
	}
	return s
}

// attr is an attribute name and value.
type attr struct{ name, value string }

// expected is what the pipeline must write for each indicator CTR has
// context for, however it batches: the rows the simulator's own knowledge
// base gives (ctrsim's Attributes, written from the contract, never with
// pkg/ctr); every module's rows, one per (name, value). The client's
// mapping itself is checked against Cisco's examples in pkg/ctr's tests.
func (h *harness) expected() map[int64][]attr {
	h.t.Helper()
	want := map[int64][]attr{}
	for _, in := range h.sb.Dataset.Indicators {
		if !h.sb.Dataset.WithContext[in.ID] {
			continue
		}
		t, _ := sandbox.CTRType(in.Type)
		for _, a := range h.sb.CTR.Attributes(ctrsim.Observable{Type: t, Value: in.Value}) {
			want[in.ID] = append(want[in.ID], attr{a.Name, a.Value})
		}
		if len(want[in.ID]) == 0 {
			h.t.Fatalf("indicator %d has context in the dataset but CTR says nothing", in.ID)
		}
	}
	return want
}

// checkLedger asserts that ThreatQ's ledger holds exactly the wanted
// rows, each once: added, or, where another feed already reports that
// name and value, our source added to that row; no row removed (the
// dataset holds no row of ours, and other feeds' rows are never ours to
// remove, whatever their names); the status once on each indicator whose
// status differed; and nothing else.
func (h *harness) checkLedger(entries []sim.Entry, want map[int64][]attr, status string) {
	h.t.Helper()
	before := map[int64]string{}
	had := map[int64]map[attr]bool{}
	for _, in := range h.sb.Dataset.Indicators {
		before[in.ID] = in.Status
		for _, a := range in.Attributes {
			if had[in.ID] == nil {
				had[in.ID] = map[attr]bool{}
			}
			had[in.ID][attr{a.Name, a.Value}] = true
		}
	}
	got := map[int64]map[attr]int{}
	sourced := map[int64]map[attr]int{}
	statuses := map[int64][]string{}
	problems := 0
	report := func(format string, args ...any) {
		if problems++; problems <= 20 {
			h.t.Errorf(format, args...)
		}
	}
	count := func(m map[int64]map[attr]int, id int64, a attr) {
		if m[id] == nil {
			m[id] = map[attr]int{}
		}
		m[id][a]++
	}
	for _, e := range entries {
		id, err := strconv.ParseInt(strings.TrimPrefix(e.Object, "indicator/"), 10, 64)
		if err != nil {
			h.t.Errorf("ledger entry on %q: not an indicator", e.Object)
			continue
		}
		switch e.Op {
		case "attribute.add":
			count(got, id, attr{e.Name, e.Value})
		case "attribute.source.add":
			if !slices.Contains(e.Sources, enrichersvc.DefaultSource) {
				report("indicator %d: a source other than ours added to %s=%q: %v", id, e.Name, e.Value, e.Sources)
			}
			count(sourced, id, attr{e.Name, e.Value})
		case "attribute.delete":
			report("indicator %d: %s=%q of %v removed, want no removal", id, e.Name, e.Value, e.Sources)
		case "status.set":
			statuses[id] = append(statuses[id], e.Value)
		default:
			h.t.Errorf("unexpected ledger entry %+v", e)
		}
	}
	for id, attrs := range want {
		for _, a := range attrs {
			add, src := 1, 0
			if had[id][a] {
				add, src = 0, 1 // Another feed's row: our source joins it.
			}
			if got[id][a] != add || sourced[id][a] != src {
				report("indicator %d: %s=%q added %d times and sourced %d, want %d and %d", id, a.name, a.value, got[id][a], sourced[id][a], add, src)
			}
			delete(got[id], a)
			delete(sourced[id], a)
		}
		for a, n := range got[id] {
			report("indicator %d: unexpected %s=%q (%d times)", id, a.name, a.value, n)
		}
		for a, n := range sourced[id] {
			report("indicator %d: unexpected source added to %s=%q (%d times)", id, a.name, a.value, n)
		}
		delete(got, id)
		delete(sourced, id)
		wantStatus := 0
		if before[id] != status {
			wantStatus = 1
		}
		if len(statuses[id]) != wantStatus || (wantStatus == 1 && statuses[id][0] != status) {
			report("indicator %d: statuses set %v, want %d time(s) %q (was %q)", id, statuses[id], wantStatus, status, before[id])
		}
		delete(statuses, id)
	}
	for id, attrs := range got {
		report("indicator %d has no CTR context but got %d attributes", id, len(attrs))
	}
	for id, attrs := range sourced {
		report("indicator %d has no CTR context but our source joined %d rows", id, len(attrs))
	}
	for id, s := range statuses {
		report("indicator %d has no CTR context but its status was set to %v", id, s)
	}
	if problems > 20 {
		h.t.Errorf("... and %d more problems", problems-20)
	}
}

// deadLetters returns the dead letters of one consumer.
func (h *harness) deadLetters(consumer string, stream string) []bus.DeadLetter {
	h.t.Helper()
	b := h.connect()
	ctx := context.Background()
	c, err := b.JetStream().OrderedConsumer(ctx, bus.StreamDeadLetter, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.DeadLetterSubject(stream, consumer)},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	batch, err := c.FetchNoWait(1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []bus.DeadLetter
	for m := range batch.Messages() {
		var dl bus.DeadLetter
		if err := jsonUnmarshal(m.Data(), &dl); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, dl)
	}
	return out
}

var _ = fmt.Sprint
