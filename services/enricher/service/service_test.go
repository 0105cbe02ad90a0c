package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/enricher/service"
)

func testConfig(url string) service.Config {
	return service.Config{
		Instance: "t",
		CTR: ctr.Config{
			Region: "us", BaseURL: url, ClientID: ctrsim.DefaultClientID,
			ClientPassword: config.Secret(ctrsim.DefaultClientPassword), Timeout: 10 * time.Second, BatchSize: 20,
		},
		Status: "Review", Source: service.DefaultSource, Cache: true, AckWait: 10 * time.Second,
		MaxRequestsPerHour: 4000, BudgetWindow: time.Hour, RefusedRetry: time.Second, ModuleRetries: 1,
		WorkerConfig: bus.WorkerConfig{
			Concurrency: 2, BatchSize: 50, MaxAckPending: 500, MaxDeliver: 5, DrainTimeout: 5 * time.Second,
		},
	}
}

// valid returns c after checking it is valid: Run takes its configuration
// as valid, as config.Parse returns it.
func valid(t testing.TB, c service.Config) service.Config {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	return c
}

type indicator struct {
	id          int64
	typ, value  string
	withContext bool
}

// publish publishes inds as indicator.v1 messages; as copies made by the
// replay of that ID when replay is not empty.
func publish(t *testing.T, b *bus.Bus, inds []indicator, replay string) {
	t.Helper()
	var h nats.Header
	if replay != "" {
		h = nats.Header{bus.HeaderReplay: []string{replay}}
	}
	ctx := context.Background()
	batch := b.NewBatch(0)
	for _, in := range inds {
		data, _ := json.Marshal(schemas.Indicator{Schema: schemas.IndicatorV1, Job: "ctr", Instance: "t", Indicator: schemas.IndicatorData{
			ID: in.id, Value: in.value, Type: in.typ, Status: "Active", Score: 5, UpdatedAt: time.Now().UTC(),
			Attributes: []schemas.Row{{ID: 1000 + in.id, Name: "Disposition", Value: "Stale value"}},
		}})
		if err := batch.Add(ctx, bus.Outgoing{Subject: bus.IndicatorSubject("ctr", "t"), ID: fmt.Sprint("i", in.id, time.Now().UnixNano()), Data: data, Header: h}); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func writes(t *testing.T, b *bus.Bus) map[int64]schemas.IndicatorWrite {
	t.Helper()
	ctx := context.Background()
	c, err := b.JetStream().OrderedConsumer(ctx, bus.StreamWrites, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.SubjectWriteIndicator}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]schemas.IndicatorWrite{}
	batch, err := c.FetchNoWait(10000)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		var w schemas.Write
		if err := schemas.Decode(m.Data(), &w); err != nil {
			t.Fatalf("a published write does not validate: %v", err)
		}
		if _, dup := out[w.Indicator.ID]; dup {
			t.Errorf("indicator %d written twice", w.Indicator.ID)
		}
		out[w.Indicator.ID] = *w.Indicator
	}
	return out
}

// run runs the enricher until n indicators are settled for good (acked or
// dead-lettered; retries do not count).
func run(t *testing.T, b *bus.Bus, cfg service.Config, n int64) *service.Stats {
	t.Helper()
	cfg = valid(t, cfg)
	var stats service.Stats
	var settled atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- service.Run(ctx, cfg, b, slog.New(slog.DiscardHandler), &stats, func(st bus.Settlement) {
			if st.Outcome != bus.Retried {
				settled.Add(1)
			}
		})
	}()
	testkit.Wait(func() bool { return settled.Load() >= n }, 30*time.Second)
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if settled.Load() < n {
		t.Fatalf("%d of %d indicators settled in 30s", settled.Load(), n)
	}
	return &stats
}

func TestEnrichWritesOnlyWhereCTRHasContext(t *testing.T) {
	t.Parallel()
	sim := ctrsim.New(ctrsim.Options{Seed: 7})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	var inds []indicator
	for i := range 60 {
		in := indicator{id: int64(i + 1), typ: "IP Address", value: fmt.Sprintf("203.0.113.%d", i+1), withContext: i%3 == 0}
		switch i % 5 {
		case 1:
			in.typ, in.value = "FQDN", fmt.Sprintf("host%d.example.net", i)
		case 2:
			in.typ, in.value = "SHA-256", fmt.Sprintf("%064x", i)
		case 3:
			in.typ, in.value = "CIDR Block", fmt.Sprintf("10.%d.0.0/16", i) // CTR does not support it.
			in.withContext = false
		}
		if in.withContext {
			ct, _ := ctr.TypeFor(in.typ)
			o := ctrsim.Observable{Type: ct, Value: in.value}
			sim.AddContext(o, ctrsim.GenerateContext(7, o)...)
		}
		inds = append(inds, in)
	}
	b := bustest.New(t)
	publish(t, b, inds, "")
	stats := run(t, b, testConfig(srv.URL), int64(len(inds)))

	got := writes(t, b)
	wantWrites, unsupported := 0, 0
	for _, in := range inds {
		w, written := got[in.id]
		if in.typ == "CIDR Block" {
			unsupported++
		}
		if written != in.withContext {
			t.Errorf("indicator %d (%s, context %v): written %v", in.id, in.typ, in.withContext, written)
			continue
		}
		if !written {
			continue
		}
		wantWrites++
		// Every module's rows, one per (name, value), as the simulator's
		// own knowledge base says.
		ct, _ := ctr.TypeFor(in.typ)
		var want, have []string
		for _, a := range sim.Attributes(ctrsim.Observable{Type: ct, Value: in.value}) {
			want = append(want, a.Name+"="+a.Value)
		}
		for _, a := range w.Attributes {
			have = append(have, a.Name+"="+a.Value)
		}
		slices.Sort(want)
		slices.Sort(have)
		if !slices.Equal(have, want) {
			t.Errorf("indicator %d: attributes\n got  %v\n want %v", in.id, have, want)
		}
		if w.Status != "Review" || w.Source != service.DefaultSource || w.Value != in.value {
			t.Errorf("indicator %d: write %+v", in.id, w)
		}
		// Which rows go is the writer's to decide, from ThreatQ's rows
		// and their sources; the write says what the indicator had.
		if len(w.RemoveAttributeIDs) != 0 || w.ReplaceStale || w.FetchedStatus != "Active" {
			t.Errorf("indicator %d: write removes %v (replace_stale %v), fetched status %q; want nothing removed by id and Active", in.id, w.RemoveAttributeIDs, w.ReplaceStale, w.FetchedStatus)
		}
	}
	if len(got) != wantWrites {
		t.Errorf("%d writes, want %d", len(got), wantWrites)
	}
	if stats.Unsupported.Load() != int64(unsupported) || stats.Enriched.Load() != int64(wantWrites) ||
		stats.NoContext.Load() != int64(len(inds)-unsupported-wantWrites) {
		t.Errorf("stats: unsupported %d enriched %d no context %d", stats.Unsupported.Load(), stats.Enriched.Load(), stats.NoContext.Load())
	}
	if asked := sim.ObservablesReceived(); asked != int64(len(inds)-unsupported) {
		t.Errorf("CTR received %d observables, want %d (unsupported types are never sent)", asked, len(inds)-unsupported)
	}

	// The same indicators again: answered from the cache, CTR not asked.
	publish(t, b, inds, "")
	stats = run(t, b, testConfig(srv.URL), int64(len(inds)))
	if asked := sim.ObservablesReceived(); asked != int64(len(inds)-unsupported) {
		t.Errorf("second pass sent %d more observables to CTR, want 0 (cache)", asked-int64(len(inds)-unsupported))
	}
	if hits := stats.CacheHits.Load(); hits != int64(len(inds)-unsupported) {
		t.Errorf("cache hits %d, want %d", hits, len(inds)-unsupported)
	}

	// Replayed: a backfill asks CTR again, whatever the cache holds.
	publish(t, b, inds, "r1")
	stats = run(t, b, testConfig(srv.URL), int64(len(inds)))
	if asked := sim.ObservablesReceived(); asked != 2*int64(len(inds)-unsupported) {
		t.Errorf("the replay sent %d observables to CTR, want %d (a replay bypasses the cache)", asked-int64(len(inds)-unsupported), len(inds)-unsupported)
	}
	if hits := stats.CacheHits.Load(); hits != 0 {
		t.Errorf("the replay had %d cache hits, want 0", hits)
	}
	if n := stats.Enriched.Load(); n != int64(wantWrites) {
		t.Errorf("the replay enriched %d indicators, want %d", n, wantWrites)
	}
}

func TestEnrichRetriesRateLimits(t *testing.T) {
	t.Parallel()
	sim := ctrsim.New(ctrsim.Options{Seed: 3})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	var inds []indicator
	for i := range 20 {
		v := fmt.Sprintf("198.51.100.%d", i+1)
		o := ctrsim.Observable{Type: "ip", Value: v}
		sim.AddContext(o, ctrsim.GenerateContext(3, o)...)
		inds = append(inds, indicator{id: int64(i + 1), typ: "IP Address", value: v, withContext: true})
	}
	sim.Faults.Set(simFaults429())
	b := bustest.New(t)
	publish(t, b, inds, "")
	cfg := testConfig(srv.URL)
	cfg.Cache = false
	// The rate limit lifts once the enricher has met it a few times
	// (Retry-After 1s): it must have retried, not given up.
	done := make(chan struct{})
	go func() {
		testkit.Wait(func() bool { return sim.Faults.Counts().RateLimited >= 5 }, 30*time.Second)
		sim.Faults.Set(noFaults())
		close(done)
	}()
	_ = run(t, b, cfg, int64(len(inds)))
	<-done
	if got := writes(t, b); len(got) != len(inds) {
		t.Errorf("%d writes after the rate limit lifted, want %d", len(got), len(inds))
	}
	if sim.Faults.Counts().RateLimited == 0 {
		t.Error("the simulator never rate-limited: the test proves nothing")
	}
}

// TestCaseVariants: two URLs that differ only in case are two observables;
// CTR knows one, and only that one gets attributes (the adapter used to
// lower-case both and give the unknown one the known one's context).
func TestCaseVariants(t *testing.T) {
	t.Parallel()
	sim := ctrsim.New(ctrsim.Options{Seed: 5})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	known := indicator{id: 1, typ: "URL", value: "http://x.example/Login", withContext: true}
	unknown := indicator{id: 2, typ: "URL", value: "http://x.example/login"}
	sim.AddContext(ctrsim.Observable{Type: "url", Value: known.value}, ctrsim.ModuleContext{
		Module: "Talos Intelligence", Disposition: 2,
		Judgement: &ctrsim.Judgement{Confidence: "High", Severity: "High", Priority: 90, Source: "Talos Intelligence", Reason: "Poor reputation"},
	})
	b := bustest.New(t)
	publish(t, b, []indicator{known, unknown}, "")
	run(t, b, testConfig(srv.URL), 2)
	got := writes(t, b)
	if _, ok := got[known.id]; !ok || len(got) != 1 {
		t.Errorf("writes for %v, want only indicator %d's", slices.Collect(maps.Keys(got)), known.id)
	}
}

// TestEveryModuleAndTheVerdict: a module whose verdict (Suspicious) and
// judgement (Malicious) disagree writes the verdict; an observable two
// modules know gets both modules' rows, one CTR Module row each.
func TestEveryModuleAndTheVerdict(t *testing.T) {
	t.Parallel()
	sim := ctrsim.New(ctrsim.Options{Seed: 6})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	in := indicator{id: 1, typ: "IP Address", value: "198.51.100.7", withContext: true}
	sim.AddContext(ctrsim.Observable{Type: "ip", Value: in.value},
		ctrsim.ModuleContext{Module: "AbuseIPDB", Disposition: 3, Judgement: &ctrsim.Judgement{
			Disposition: 2, Confidence: "Medium", Severity: "Medium", Priority: 85, Source: "AbuseIPDB", Reason: "reported 12 times"}},
		ctrsim.ModuleContext{Module: "Talos Intelligence", Disposition: 2, Judgement: &ctrsim.Judgement{
			Confidence: "High", Severity: "High", Priority: 90, Source: "Talos Intelligence", Reason: "Poor reputation"}},
	)
	b := bustest.New(t)
	publish(t, b, []indicator{in}, "")
	run(t, b, testConfig(srv.URL), 1)
	w, ok := writes(t, b)[in.id]
	if !ok {
		t.Fatal("no write")
	}
	have := map[string][]string{}
	for _, a := range w.Attributes {
		have[a.Name] = append(have[a.Name], a.Value)
	}
	slices.Sort(have["CTR Module"])
	slices.Sort(have["Disposition"])
	if !slices.Equal(have["CTR Module"], []string{"AbuseIPDB", "Talos Intelligence"}) {
		t.Errorf("CTR Module rows %v, want one per module", have["CTR Module"])
	}
	// AbuseIPDB's verdict says Suspicious (its judgement Malicious); Talos
	// says Malicious.
	if !slices.Equal(have["Disposition"], []string{"Malicious", "Suspicious"}) {
		t.Errorf("Disposition rows %v, want AbuseIPDB's verdict (Suspicious) and Talos's (Malicious)", have["Disposition"])
	}
}
