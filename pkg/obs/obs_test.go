package obs_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/obs"
	"github.com/tqflow/tqflow/pkg/testkit"
)

// scrape returns m's /metrics page.
func scrape(t testing.TB, m *obs.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// eventually scrapes m until it contains every line of want, or fails
// after 10 seconds.
func eventually(t testing.TB, m *obs.Metrics, want ...string) {
	t.Helper()
	var page, missing string
	if !testkit.Wait(func() bool {
		page, missing = scrape(t, m), ""
		for _, w := range want {
			if !strings.Contains(page, w) {
				missing = w
				return false
			}
		}
		return true
	}, 10*time.Second) {
		t.Fatalf("metrics never showed %q:\n%s", missing, grep(page, "tqflow_"))
	}
}

func grep(page, prefix string) string {
	var out []string
	for line := range strings.SplitSeq(page, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestOnSettleCountsOutcomes runs a real consumer whose handler acks one
// message, dead-letters one and retries one until MaxDeliver, and checks
// the counters and the handler histogram.
func TestOnSettleCountsOutcomes(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	m := obs.New("test")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, id := range []string{"ok", "bad", "flaky"} {
		if err := b.Publish(ctx, bus.Outgoing{Subject: "tq.writes.indicator", ID: id, Data: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	spec := bus.ConsumerSpec{Stream: bus.StreamWrites, Name: "w1", MaxDeliver: 2, AckWait: time.Second}
	h := m.TimeHandler("w1", func(_ context.Context, msg *bus.Message) error {
		switch string(msg.Data) {
		case "bad":
			return bus.Permanent(errors.New("schema invalid"))
		case "flaky":
			return errors.New("timeout")
		}
		return nil
	})
	done := make(chan error, 1)
	go func() {
		done <- b.Run(ctx, spec, h, bus.RunOptions{
			OnSettle: m.OnSettle,
			Backoff:  func(uint64) time.Duration { return 10 * time.Millisecond },
		})
	}()
	eventually(t, m,
		`tqflow_messages_settled_total{consumer="w1",outcome="acked",service="test"} 1`,
		`tqflow_messages_settled_total{consumer="w1",outcome="dead_lettered",service="test"} 2`,
		`tqflow_messages_settled_total{consumer="w1",outcome="retried",service="test"} 1`,
		`tqflow_dead_letters_total{consumer="w1",reason="permanent",service="test"} 1`,
		`tqflow_dead_letters_total{consumer="w1",reason="max_deliver",service="test"} 1`,
		`tqflow_redeliveries_total{consumer="w1",service="test"} 1`,
		`tqflow_handler_duration_seconds_count{consumer="w1",service="test"} 4`,
		`tqflow_build_info{`,
		`go_goroutines{service="test"}`,
	)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestOnSettleCountsTheGivenReason: a dead letter is counted by the
// reason the runner gives, never by one worked out again from its error.
func TestOnSettleCountsTheGivenReason(t *testing.T) {
	t.Parallel()
	m := obs.New("test")
	spec := bus.ConsumerSpec{Stream: bus.StreamWrites, Name: "w1"}
	permanent := bus.Permanent(errors.New("schema invalid"))
	for _, s := range []bus.Settlement{
		// A permanent error on the last delivery whose dead letter the
		// runner recorded as max_deliver: the runner's word counts.
		{Spec: spec, Message: &bus.Message{Delivered: 3}, Outcome: bus.DeadLettered, Reason: bus.ReasonMaxDeliver, Err: permanent},
		{Spec: spec, Message: &bus.Message{Delivered: 1}, Outcome: bus.DeadLettered, Reason: bus.ReasonMaxDeliver, Err: permanent},
		{Spec: spec, Message: &bus.Message{Delivered: 1}, Outcome: bus.DeadLettered, Reason: bus.ReasonPermanent, Err: errors.New("timeout")},
		{Spec: spec, Message: &bus.Message{Delivered: 1}, Outcome: bus.Retried, Err: permanent},
		{Spec: spec, Outcome: bus.Acked},
	} {
		m.OnSettle(s)
	}
	page := scrape(t, m)
	for _, want := range []string{
		`tqflow_dead_letters_total{consumer="w1",reason="max_deliver",service="test"} 2`,
		`tqflow_dead_letters_total{consumer="w1",reason="permanent",service="test"} 1`,
		`tqflow_messages_settled_total{consumer="w1",outcome="dead_lettered",service="test"} 3`,
		`tqflow_messages_settled_total{consumer="w1",outcome="retried",service="test"} 1`,
		`tqflow_messages_settled_total{consumer="w1",outcome="acked",service="test"} 1`,
		`tqflow_redeliveries_total{consumer="w1",service="test"} 1`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("metrics lack %q:\n%s", want, grep(page, "tqflow_"))
		}
	}
}

func TestTransport(t *testing.T) {
	t.Parallel()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/busy":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/down":
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.Header().Set("X-Answer", "as sent")
			_, _ = io.WriteString(w, "the body")
		}
	}))
	t.Cleanup(api.Close)
	m := obs.New("test")
	client := &http.Client{Transport: m.Transport("ctr", nil)}
	for _, tt := range []struct {
		path   string
		status int
		body   string
	}{{"/", 200, "the body"}, {"/", 200, "the body"}, {"/busy", 429, ""}, {"/down", 502, ""}} {
		resp, err := client.Get(api.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		// The answer passes through unchanged.
		if resp.StatusCode != tt.status || string(body) != tt.body {
			t.Errorf("GET %s: %d %q, want %d %q", tt.path, resp.StatusCode, body, tt.status, tt.body)
		}
		if tt.status == 200 && resp.Header.Get("X-Answer") != "as sent" {
			t.Errorf("GET %s: header X-Answer %q, want %q", tt.path, resp.Header.Get("X-Answer"), "as sent")
		}
	}
	// A refused connection: a listener closed before the call.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	if resp, err := client.Get("http://" + addr); err == nil {
		_ = resp.Body.Close()
		t.Fatal("want an error from a closed port")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("closed port: %v, want the transport's connection refused", err)
	}
	page := scrape(t, m)
	for _, want := range []string{
		`tqflow_api_request_duration_seconds_count{code="2xx",service="test",system="ctr"} 2`,
		`tqflow_api_request_duration_seconds_count{code="4xx",service="test",system="ctr"} 1`,
		`tqflow_api_request_duration_seconds_count{code="5xx",service="test",system="ctr"} 1`,
		`tqflow_api_request_duration_seconds_count{code="error",service="test",system="ctr"} 1`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("missing %q in\n%s", want, grep(page, "tqflow_api"))
		}
	}
}

// TestWrapTransport: the wrapper sends calls through the transport it is
// given (here the only one that trusts the TLS server's certificate),
// timing them under its system; nil metrics wrap nothing.
func TestWrapTransport(t *testing.T) {
	t.Parallel()
	api := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(api.Close)
	m := obs.New("test")
	client := &http.Client{Transport: m.WrapTransport(obs.SystemMISP)(api.Client().Transport)}
	resp, err := client.Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	want := `tqflow_api_request_duration_seconds_count{code="2xx",service="test",system="misp"} 1`
	if page := scrape(t, m); !strings.Contains(page, want) {
		t.Errorf("missing %q in\n%s", want, grep(page, "tqflow_api"))
	}
	var none *obs.Metrics
	if none.WrapTransport(obs.SystemMISP) != nil {
		t.Error("nil metrics give a wrapper, want nil")
	}
}

func TestPollConsumers(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	spec := bus.ConsumerSpec{Stream: bus.StreamIndicators, Name: "enricher-ctr-default", Subjects: []string{"tq.indicators.ctr.default"}}
	if _, err := b.JetStream().CreateOrUpdateConsumer(ctx, spec.Stream, spec.Config()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := b.Publish(ctx, bus.Outgoing{Subject: "tq.indicators.ctr.default", ID: id, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	m := obs.New("enricher")
	done := make(chan error, 1)
	go func() {
		done <- m.PollConsumers(ctx, b.JetStream(), 20*time.Millisecond,
			obs.ConsumerRef{Stream: spec.Stream, Consumer: spec.Name},
			obs.ConsumerRef{Stream: spec.Stream, Consumer: "not-there"})
	}()
	eventually(t, m,
		`tqflow_consumer_pending_messages{consumer="enricher-ctr-default",service="enricher",stream="INDICATORS"} 3`,
		`tqflow_consumer_ack_pending_messages{consumer="enricher-ctr-default",service="enricher",stream="INDICATORS"} 0`,
		`tqflow_consumer_redelivered_messages{consumer="enricher-ctr-default",service="enricher",stream="INDICATORS"} 0`,
	)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if page := scrape(t, m); strings.Contains(page, "not-there") {
		t.Errorf("a missing consumer has gauges:\n%s", grep(page, "tqflow_consumer"))
	}
}

func TestRuns(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	kv, err := b.KeyValue(t.Context(), bus.BucketCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cp, err := json.Marshal(map[string]any{"through": at.Add(-time.Minute), "run_id": "r1", "published": 3, "at": at})
	if err != nil {
		t.Fatal(err)
	}
	for key, value := range map[string][]byte{"ctr.default": cp, "misp.eu": []byte(`{"through":"2025-03-01T11:00:00Z"}`), "broken": []byte("{}")} {
		if _, err := kv.Put(t.Context(), key, value); err != nil {
			t.Fatal(err)
		}
	}
	m := obs.New("fetcher")
	if err := m.LoadRuns(t.Context(), kv); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("LoadRuns: %v, want an error naming the key without a job", err)
	}
	m.RunDone("et", "default", at.Add(time.Hour))
	page := scrape(t, m)
	for _, want := range []string{
		`tqflow_last_success_timestamp_seconds{instance="default",job="ctr",service="fetcher"} 1.7408304e+09`,
		`tqflow_last_success_timestamp_seconds{instance="eu",job="misp",service="fetcher"} 1.7408268e+09`,
		`tqflow_last_success_timestamp_seconds{instance="default",job="et",service="fetcher"} 1.740834e+09`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("missing %q in\n%s", want, grep(page, "tqflow_last"))
		}
	}
}

// fakeConn is a NATS connection whose state a test sets.
type fakeConn struct{ up atomic.Bool }

func (c *fakeConn) Ready() bool { return c.up.Load() }

func TestHealth(t *testing.T) {
	t.Parallel()
	failing := func(context.Context) error { return errors.New("consumer gone") }
	tests := []struct {
		name     string
		up       bool
		check    obs.Check
		notReady bool
		path     string
		status   int
		body     []string
	}{
		{name: "livez while NATS is down", up: false, path: "/livez", status: 200, body: []string{"ok"}},
		{name: "ready", up: true, check: func(context.Context) error { return nil }, path: "/readyz", status: 200, body: []string{"ok"}},
		{name: "NATS down", up: false, path: "/readyz", status: 503, body: []string{"nats: not connected"}},
		{name: "check fails", up: true, check: failing, path: "/readyz", status: 503, body: []string{"consumer: consumer gone"}},
		{name: "both fail", up: false, check: failing, path: "/readyz", status: 503, body: []string{"nats: not connected", "consumer: consumer gone"}},
		{name: "shutting down", up: true, notReady: true, path: "/readyz", status: 503, body: []string{"shutting down"}},
		{name: "metrics", up: true, path: "/metrics", status: 200, body: []string{"tqflow_build_info"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn := &fakeConn{}
			conn.up.Store(tt.up)
			s, err := obs.NewServer(obs.Config{}, obs.New("test"), conn)
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				s.AddCheck("consumer", tt.check)
			}
			if tt.notReady {
				s.SetNotReady()
			}
			srv := httptest.NewServer(s.Handler())
			t.Cleanup(srv.Close)
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d; body:\n%s", resp.StatusCode, tt.status, body)
			}
			for _, want := range tt.body {
				if !strings.Contains(string(body), want) {
					t.Errorf("body does not contain %q:\n%s", want, body)
				}
			}
		})
	}
}

// TestServeShutsDown serves on a real listener with a real bus: ready while
// the context runs, and Serve returns nil once it ends.
func TestServeShutsDown(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	s, err := obs.NewServer(obs.Config{Addr: "127.0.0.1:0"}, obs.New("test"), b)
	if err != nil {
		t.Fatal(err)
	}
	s.AddCheck("consumer", obs.ConsumerCheck(b.JetStream(), bus.StreamWrites, "nobody"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "nobody") {
		t.Errorf("readyz with a missing consumer: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the context ended")
	}
	if err := s.Ready(t.Context()); !errors.Is(err, obs.ErrShuttingDown) {
		t.Errorf("Ready after shutdown: %v, want ErrShuttingDown", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     obs.Config
		wantErr bool
	}{
		{name: "empty is defaults", cfg: obs.Config{}},
		{name: "port only", cfg: obs.Config{Addr: ":9090"}},
		{name: "no port", cfg: obs.Config{Addr: "localhost"}, wantErr: true},
		{name: "negative timeout", cfg: obs.Config{CheckTimeout: -time.Second}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate: %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
