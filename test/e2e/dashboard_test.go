package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/obs"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/testkit"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	exportersvc "github.com/tqflow/tqflow/services/exporter/service"
	fetchersvc "github.com/tqflow/tqflow/services/fetcher/service"
	loadersvc "github.com/tqflow/tqflow/services/signature-loader/service"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
	writersvc "github.com/tqflow/tqflow/services/writer/service"
)

// The consumers, jobs and systems one pass of every job feeds, spelt out
// here rather than taken from the services' code.
var (
	dashConsumers = []string{"enricher-ctr-default", "exporter-misp-default", "signature-loader-default", "writer"}
	dashJobs      = []string{"ctr", "misp", "et"}
	dashSystems   = []string{"threatq", "ctr", "misp", "et"}
)

// dashboardWants is, for each metric the dashboard may query, the series
// one pass of every job must give it: a label and the values it must
// take, each in a series of its own. A metric the dashboard queries and
// this table does not know fails the test, so that a new panel comes with
// what feeds it.
var dashboardWants = map[string]struct {
	label  string
	values []string
}{
	"tqflow_messages_settled_total":         {"consumer", dashConsumers},
	"tqflow_dead_letters_total":             {"consumer", dashConsumers},
	"tqflow_consumer_pending_messages":      {"consumer", dashConsumers},
	"tqflow_consumer_ack_pending_messages":  {"consumer", dashConsumers},
	"tqflow_consumer_redelivered_messages":  {"consumer", dashConsumers},
	"tqflow_api_request_duration_seconds":   {"system", dashSystems},
	"tqflow_handler_duration_seconds":       {"consumer", dashConsumers},
	"tqflow_last_success_timestamp_seconds": {"job", dashJobs},
	"tqflow_build_info":                     {"service", nil},
}

// dashboardMetrics returns the tqflow_ metrics the Grafana dashboard's
// panels query, without histogram suffixes.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../deploy/grafana/tqflow.json")
	if err != nil {
		t.Fatalf("read the dashboard: %v", err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("decode the dashboard: %v", err)
	}
	seen := map[string]bool{}
	var names []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range regexp.MustCompile(`tqflow_[a-z_]+`).FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					n = strings.TrimSuffix(n, suffix)
				}
				if !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		}
	}
	if len(names) < 5 {
		t.Fatalf("the dashboard queries only %v: not the dashboard this test knows", names)
	}
	return names
}

var sampleLine = regexp.MustCompile(`^(tqflow_[a-z_]+?)(?:_bucket|_count|_sum)?\{([^}]*)\} `)
var labelPair = regexp.MustCompile(`([a-z_]+)="([^"]*)"`)

// missingSeries scrapes url (a /metrics endpoint, or several, as
// Prometheus would) and returns, sorted, the series the dashboard needs
// that none of them has.
func missingSeries(ctx context.Context, names []string, urls ...string) ([]string, error) {
	have := map[string]bool{} // "metric label=value", and "metric" alone.
	for _, u := range urls {
		body, err := testkit.Scrape(ctx, u)
		if err != nil {
			return nil, err
		}
		for line := range strings.SplitSeq(body, "\n") {
			m := sampleLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			have[m[1]] = true
			for _, l := range labelPair.FindAllStringSubmatch(m[2], -1) {
				have[m[1]+" "+l[1]+"="+l[2]] = true
			}
		}
	}
	var missing []string
	for _, n := range names {
		w, ok := dashboardWants[n]
		switch {
		case !ok:
			missing = append(missing, n+" (queried by the dashboard, unknown to this test)")
		case !have[n]:
			missing = append(missing, n)
		default:
			for _, v := range w.values {
				if !have[n+" "+w.label+"="+v] {
					missing = append(missing, fmt.Sprintf("%s{%s=%q}", n, w.label, v))
				}
			}
		}
	}
	sort.Strings(missing)
	return missing, nil
}

// waitSeries scrapes urls until every series the dashboard needs shows,
// and fails the test naming those that never did within timeout.
func waitSeries(t *testing.T, timeout time.Duration, urls ...string) {
	t.Helper()
	names := dashboardMetrics(t)
	var missing []string
	var err error
	if !testkit.Wait(func() bool {
		missing, err = missingSeries(t.Context(), names, urls...)
		return err == nil && len(missing) == 0
	}, timeout) {
		if err != nil {
			t.Fatal(err)
		}
		t.Fatalf("after %s, the dashboard's panels still miss these series:\n  %s", timeout, strings.Join(missing, "\n  "))
	}
}

func dashboardSandbox(t *testing.T) map[string]string {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Seed: 3, Indicators: 20, ContextShare: 0.5, Rules: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	vars := sb.Env()
	vars["JOBS"] = "ctr,misp,et"
	vars["CTR_STATUS"] = "Review"
	return vars
}

// TestDashboardSingleHost is issue 15's "curl /metrics on tqflow run
// after one pass": the pipeline wired as tqflow run wires it
// (Pipeline.Instrument), its /metrics served as tqflow run serves it,
// shows every series the dashboard's panels query after one pass of
// every job; and /readyz waits for every consumer.
func TestDashboardSingleHost(t *testing.T) {
	t.Parallel()
	vars := dashboardSandbox(t)
	log := slog.New(slog.DiscardHandler)
	env := &app.Env{Resolved: &app.Resolved{Vars: vars, Instance: "default", Log: log}}
	var pc pipeline.Config
	if err := pc.Parse(env); err != nil {
		t.Fatalf("configuration: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	m := obs.New("tqflow")
	pc.Instrument(m)
	b := bustest.New(t)
	p, err := pipeline.New(ctx, pc, pipeline.Buses{Default: b}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := obs.NewServer(obs.Config{Addr: "127.0.0.1:0"}, m, b)
	if err != nil {
		t.Fatal(err)
	}
	p.Instrument(ctx, m, srv, 50*time.Millisecond)
	base := serve(t, ctx, srv)

	// No worker consumes yet: not ready, naming every consumer.
	code, body := testkit.Get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the workers start: %d, want 503\n%s", code, body)
	}
	for _, c := range dashConsumers {
		if !strings.Contains(body, "consumer "+c) {
			t.Errorf("/readyz before the workers start does not name consumer %s:\n%s", c, body)
		}
	}

	wait := p.StartWorkers(ctx)
	defer func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("workers: %v", err)
		}
	}()
	if err := p.WaitStarted(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := testkit.Get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with every worker consuming: %d\n%s", code, body)
	}
	if _, err := p.Fetcher().RunOnce(ctx, nil); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if err := p.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	waitSeries(t, 10*time.Second, base+"/metrics")

	// Restarted, tqflow run reports the indicator jobs' last runs before
	// its first one, from their checkpoints.
	m2 := obs.New("tqflow")
	p2, err := pipeline.New(ctx, pc, pipeline.Buses{Default: b}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv2, err := obs.NewServer(obs.Config{}, m2, b)
	if err != nil {
		t.Fatal(err)
	}
	p2.Instrument(ctx, m2, srv2, time.Hour)
	rec := httptest.NewRecorder()
	m2.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, job := range []string{"ctr", "misp"} {
		if w := `tqflow_last_success_timestamp_seconds{instance="default",job="` + job + `"`; !strings.Contains(rec.Body.String(), w) {
			t.Errorf("restarted: no last success of job %s before its first run", job)
		}
	}
}

// TestDashboardServices is the same for the separate services: each
// service's Main, as tqflow <service> runs it, in-process against one
// NATS server, each serving its own /metrics; together they show every
// series the dashboard's panels query after one pass of every job.
func TestDashboardServices(t *testing.T) {
	t.Parallel()
	vars := dashboardSandbox(t)
	nats, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(), Host: "127.0.0.1", Port: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nats.Shutdown)
	vars["NATS_URL"] = nats.ClientURL()
	vars["METRICS_ADDR"] = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	services := []struct {
		name string
		main func(context.Context, *app.Env) error
	}{
		{"enricher", enrichersvc.Main},
		{"exporter", exportersvc.Main},
		{"signature-loader", loadersvc.Main},
		{"writer", writersvc.Main},
		// Last: the workers' consumers exist before anything is fetched.
		{"fetcher", fetchersvc.Main},
	}
	var urls []string
	for _, s := range services {
		addr := make(chan string, 1)
		env := &app.Env{Resolved: &app.Resolved{Vars: vars, Instance: "default", Log: slog.New(addrCatcher{addr})}}
		stopped := make(chan struct{})
		wg.Go(func() {
			defer close(stopped)
			if err := s.main(ctx, env); err != nil && ctx.Err() == nil {
				t.Errorf("%s: %v", s.name, err)
			}
		})
		select {
		case a := <-addr:
			urls = append(urls, "http://"+a+"/metrics")
		case <-stopped:
			t.Fatalf("%s stopped before serving its metrics", s.name)
		case <-ctx.Done():
			t.Fatalf("%s never served its metrics", s.name)
		}
		if s.name != "fetcher" {
			waitReady(t, ctx, strings.TrimSuffix(urls[len(urls)-1], "/metrics")+"/readyz", s.name)
		}
	}
	waitSeries(t, 30*time.Second, urls...)
}

// addrCatcher is a logger that sends where a service serves its metrics
// (its "serving metrics and health" record) and drops everything else.
type addrCatcher struct{ addr chan<- string }

func (a addrCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (a addrCatcher) WithAttrs([]slog.Attr) slog.Handler       { return a }
func (a addrCatcher) WithGroup(string) slog.Handler            { return a }
func (a addrCatcher) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "serving metrics and health" {
		return nil
	}
	r.Attrs(func(at slog.Attr) bool {
		if at.Key == "addr" {
			select {
			case a.addr <- at.Value.String():
			default:
			}
			return false
		}
		return true
	})
	return nil
}

// serve serves srv on a free loopback port until ctx ends, and returns
// its base URL.
func serve(t *testing.T, ctx context.Context, srv *obs.Server) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("metrics server: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// waitReady waits until a service's /readyz answers 200: its consumer
// exists, so that what the fetcher publishes next is consumed.
func waitReady(t *testing.T, ctx context.Context, url, name string) {
	t.Helper()
	deadline, _ := ctx.Deadline()
	var body string
	if !testkit.Wait(func() bool {
		var code int
		code, body = testkit.Get(t, url)
		return code == http.StatusOK
	}, time.Until(deadline)) {
		t.Fatalf("%s never ready:\n%s", name, body)
	}
}
