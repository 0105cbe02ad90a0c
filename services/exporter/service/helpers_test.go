package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/exporter/service"
)

const (
	key      = "0123456789abcdefghijABCDEFGHIJ0123456789"
	instance = "t"
)

// day1 is the test's day: noon UTC.
var day1 = time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)

// describeTypes returns shared/data/misp/describeTypes.json, without the
// types in drop.
func describeTypes(t testing.TB, drop ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, "misp/describeTypes.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(drop) == 0 {
		return b
	}
	var doc struct {
		Result struct {
			SaneDefaults         map[string]json.RawMessage `json:"sane_defaults"`
			Types                []string                   `json:"types"`
			Categories           []string                   `json:"categories"`
			CategoryTypeMappings map[string][]string        `json:"category_type_mappings"`
		} `json:"result"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	r := &doc.Result
	without := func(xs []string) []string {
		var out []string
		for _, x := range xs {
			keep := true
			for _, d := range drop {
				keep = keep && x != d
			}
			if keep {
				out = append(out, x)
			}
		}
		return out
	}
	for _, d := range drop {
		delete(r.SaneDefaults, d)
	}
	r.Types = without(r.Types)
	for c, ts := range r.CategoryTypeMappings {
		r.CategoryTypeMappings[c] = without(ts)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newMISP starts a simulated MISP serving the full describeTypes.json
// (unless opts already carries one).
func newMISP(t testing.TB, opts mispsim.Options) (*mispsim.Server, string) {
	t.Helper()
	opts.Keys = append(opts.Keys, key)
	if opts.DescribeTypes == nil {
		opts.DescribeTypes = describeTypes(t)
	}
	s := mispsim.New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func testConfig(url string) service.Config {
	return service.Config{
		Instance:       instance,
		MISP:           misp.Config{URL: url, Key: config.Secret(key), Timeout: 10 * time.Second},
		TimeZone:       "UTC",
		DayFrom:        "updated_at",
		InfoPrefix:     "ThreatQ export",
		EventTags:      []string{"source:threatq-export", "tlp:amber"},
		Distribution:   "0",
		ThreatLevel:    "4",
		Analysis:       "2",
		MaxPerEvent:    25_000,
		ClaimTTL:       30 * 24 * time.Hour,
		SendSize:       1000,
		CheckTypes:     true,
		Parallel:       4,
		BatchWait:      20 * time.Millisecond,
		RetryMin:       50 * time.Millisecond,
		RetryMax:       time.Second,
		StartupTimeout: 5 * time.Second,
		WorkerConfig: bus.WorkerConfig{
			Concurrency: 4, BatchSize: 1000, MaxAckPending: 10_000, MaxDeliver: 10, DrainTimeout: 5 * time.Second,
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

// indicator is a ThreatQ indicator to publish.
type indicator struct {
	id      int64
	typ     string
	value   string
	score   float64
	updated time.Time
}

// generate returns n indicators of several types with distinct values,
// updated at the given time. from offsets the ids and values.
func generate(n, from int, updated time.Time) []indicator {
	out := make([]indicator, n)
	for k := range n {
		i := from + k
		in := indicator{id: int64(i + 1), score: float64(i%11) * 0.9, updated: updated}
		switch i % 8 {
		case 0, 6:
			in.typ, in.value = "IP Address", fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
		case 1:
			in.typ, in.value = "FQDN", fmt.Sprintf("Host%d.Example.COM", i) // MISP lower-cases domains.
		case 2:
			in.typ, in.value = "SHA-256", fmt.Sprintf("%064X", i)
		case 3:
			in.typ, in.value = "URL", fmt.Sprintf("hxxp://example[.]org/p/%d", i) // Refanged by MISP.
		case 4:
			in.typ, in.value = "Email Address", fmt.Sprintf("user%d@example.net", i)
		case 5:
			in.typ, in.value = "MD5", fmt.Sprintf("%032x", i)
		case 7:
			in.typ, in.value = "Username", fmt.Sprintf("user-%d", i) // Lossy: text in Other.
		}
		out[k] = in
	}
	return out
}

var published atomic.Int64

// publish puts indicators on tq.indicators.misp.t, each with a fresh
// message ID (a new fetch, or a replay).
func publish(t testing.TB, b *bus.Bus, inds []indicator) {
	t.Helper()
	ctx := context.Background()
	batch := b.NewBatch(2000)
	run := published.Add(1)
	for _, in := range inds {
		data, err := json.Marshal(schemas.Indicator{Schema: schemas.IndicatorV1, Job: schemas.JobMISP, Instance: instance,
			Indicator: schemas.IndicatorData{ID: in.id, Value: in.value, Type: in.typ, Status: "Active", Score: in.score, UpdatedAt: in.updated}})
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Add(ctx, bus.Outgoing{
			Subject: bus.IndicatorSubject(schemas.JobMISP, instance),
			ID:      fmt.Sprintf("%s:%d:%d:%d", instance, in.id, in.updated.UnixNano(), run),
			Data:    data,
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// settleCounter counts messages settled for good (acked or dead-lettered).
type settleCounter struct{ acked, dead atomic.Int64 }

func (s *settleCounter) onSettle(st bus.Settlement) {
	switch st.Outcome {
	case bus.Acked:
		s.acked.Add(1)
	case bus.DeadLettered:
		s.dead.Add(1)
	}
}

func (s *settleCounter) total() int64 { return s.acked.Load() + s.dead.Load() }

// run runs the exporter until n messages are settled for good, then stops
// it.
func run(t testing.TB, b *bus.Bus, cfg service.Config, n int64, timeout time.Duration) (*service.Stats, *settleCounter) {
	t.Helper()
	stats, sc := &service.Stats{}, &settleCounter{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	lg := slog.New(slog.DiscardHandler)
	if os.Getenv("EXPORTER_TEST_LOG") != "" {
		lg = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	cfg = valid(t, cfg)
	go func() { errc <- service.Run(ctx, cfg, b, lg, stats, sc.onSettle) }()
	deadline := time.Now().Add(timeout)
	for sc.total() < n && time.Now().Before(deadline) {
		select {
		case err := <-errc:
			t.Fatalf("exporter stopped early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if sc.total() < n {
		t.Fatalf("%d of %d indicators settled in %s", sc.total(), n, timeout)
	}
	return stats, sc
}

// deadLetters returns the dead letters of the exporter's consumer.
func deadLetters(t testing.TB, b *bus.Bus) []bus.DeadLetter {
	t.Helper()
	ctx := context.Background()
	c, err := b.JetStream().OrderedConsumer(ctx, bus.StreamDeadLetter, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.DeadLetterSubject(bus.StreamIndicators, "exporter-misp-"+instance)},
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(10_000)
	if err != nil {
		t.Fatal(err)
	}
	var out []bus.DeadLetter
	for m := range batch.Messages() {
		var dl bus.DeadLetter
		if err := json.Unmarshal(m.Data(), &dl); err != nil {
			t.Fatal(err)
		}
		out = append(out, dl)
	}
	return out
}

// stored is what MISP stores for the ThreatQ types these tests send,
// written from misp.md §6.3 and §7 (and checked against MISP's PHP by
// pkg/misp's golden cases), not computed with pkg/misp: the oracle must
// not be the code it checks.
var stored = map[string]struct {
	typ  string
	edit func(string) string
}{
	"IP Address":    {"ip-dst", func(v string) string { return v }},
	"FQDN":          {"domain", strings.ToLower},                  // ASCII test values: strtolower.
	"SHA-256":       {"sha256", strings.ToLower},                  // Hashes are lower-cased.
	"MD5":           {"md5", strings.ToLower},                     //
	"Email Address": {"email-src", strings.ToLower},               // Email types are lower-cased.
	"Username":      {"text", func(v string) string { return v }}, // Lossy: text in Other.
	"Filename":      {"filename", func(v string) string { return v }},
	"URL": {"url", func(v string) string { // Refanged: hxxp → http, [.] → .
		if strings.HasPrefix(strings.ToLower(v), "hxxp") {
			v = "http" + v[4:]
		}
		return strings.ReplaceAll(v, "[.]", ".")
	}},
}

// want is what MISP should hold for indicators: the set of "type|value" as
// MISP stores them (after normalisation), per day.
func want(t testing.TB, inds []indicator, loc *time.Location) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	for _, in := range inds {
		m, ok := stored[in.typ]
		if !ok {
			t.Fatalf("want: no expectation for ThreatQ type %q", in.typ)
		}
		day := in.updated.In(loc).Format(time.DateOnly)
		if out[day] == nil {
			out[day] = map[string]bool{}
		}
		out[day][m.typ+"|"+m.edit(in.value)] = true
	}
	return out
}

// holding checks that MISP holds exactly want: per day, each attribute
// once across the day's events, no event over most, chunks numbered 1..n
// once each with the expected info and date; it returns the attribute
// count of each day's events, in chunk order.
func holding(t testing.TB, s *mispsim.Server, want map[string]map[string]bool, most int) map[string][]int {
	t.Helper()
	got := map[string]map[string]bool{}
	byChunk := map[string]map[int]int{}
	for _, ev := range s.Events() {
		var n int
		var day string
		if _, err := fmt.Sscanf(strings.TrimPrefix(ev.Info, "ThreatQ export "), "%s #%d", &day, &n); err != nil {
			t.Errorf("event %s info %q: %v", ev.UUID, ev.Info, err)
			continue
		}
		if ev.Date != day {
			t.Errorf("event %q has date %s", ev.Info, ev.Date)
		}
		if byChunk[day] == nil {
			byChunk[day] = map[int]int{}
		}
		if _, dup := byChunk[day][n]; dup {
			t.Errorf("event %q created twice", ev.Info)
		}
		if ev.AttributeCount > most {
			t.Errorf("event %q holds %d attributes, over %d", ev.Info, ev.AttributeCount, most)
		}
		byChunk[day][n] = ev.AttributeCount
		if got[day] == nil {
			got[day] = map[string]bool{}
		}
		for _, a := range s.Attributes(ev.UUID) {
			k := a.Type + "|" + a.Value
			if got[day][k] {
				t.Errorf("day %s: %s stored twice", day, k)
			}
			got[day][k] = true
		}
	}
	counts := map[string][]int{}
	for day, chunks := range byChunk {
		for n := 1; n <= len(chunks); n++ {
			c, ok := chunks[n]
			if !ok {
				t.Errorf("day %s: chunk %d missing among %d", day, n, len(chunks))
			}
			counts[day] = append(counts[day], c)
		}
	}
	for day, w := range want {
		missing := 0
		for k := range w {
			if !got[day][k] {
				missing++
			}
		}
		if missing > 0 || len(got[day]) != len(w) {
			t.Errorf("day %s: MISP holds %d attributes, want %d (%d missing)", day, len(got[day]), len(w), missing)
		}
	}
	for day := range got {
		if want[day] == nil {
			t.Errorf("MISP holds an unexpected day %s", day)
		}
	}
	return counts
}

// checkValid checks every event against the PyMISP lax schema and every
// attribute's type and category against describeTypes.json.
func checkValid(t testing.TB, s *mispsim.Server, url string) {
	t.Helper()
	f, err := os.Open(sharedtest.Path(t, "misp/pymisp-schema-lax.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema-lax.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("schema-lax.json")
	if err != nil {
		t.Fatal(err)
	}
	dt, err := misp.ParseDescribeTypes(describeTypes(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range s.Events() {
		req, _ := http.NewRequest(http.MethodGet, url+"/events/view/"+ev.UUID, nil)
		req.Header.Set("Authorization", key)
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("view event %s: %d %v", ev.UUID, resp.StatusCode, err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(inst); err != nil {
			t.Errorf("event %q does not match the PyMISP schema: %v", ev.Info, err)
		}
		for _, a := range s.Attributes(ev.UUID) {
			if !dt.HasType(a.Type) || !dt.Allowed(a.Type, a.Category) {
				t.Errorf("attribute %s %q: type or category %q not allowed by describeTypes.json", a.Type, a.Value, a.Category)
			}
		}
	}
}
