package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
)

// TestStatus shows streams, a consumer with its lag, a checkpoint and a
// dead letter count, as tables and as JSON.
func TestStatus(t *testing.T) {
	t.Parallel()
	b, url := listening(t)
	makeDeadLetter(t, b, "w:1")
	spec := bus.ConsumerSpec{Stream: bus.StreamIndicators, Name: "enricher-ctr-default", Subjects: []string{bus.IndicatorSubject("ctr", "default")}}
	if _, err := b.JetStream().CreateOrUpdateConsumer(t.Context(), spec.Stream, spec.Config()); err != nil {
		t.Fatal(err)
	}
	publish(t, b, bus.IndicatorSubject("ctr", "default"), "a", "b", "c")
	kv, err := b.KeyValue(t.Context(), bus.BucketCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "ctr.default", []byte(`{"through":"2025-03-01T12:00:00Z","run_id":"run7","published":3,"at":"2025-03-01T12:00:05Z"}`)); err != nil {
		t.Fatal(err)
	}

	var out strings.Builder
	code, _, errs := execute(t, statusCommand(&out), url)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errs)
	}
	got := squash(out.String())
	for _, want := range []string{
		"STREAM MESSAGES BYTES FIRST LAST",
		"\nINDICATORS 3 ", "\nWRITES 1 ", "\nDEADLETTER 1 ", "\nRULESETS 0 ",
		"\nINDICATORS enricher-ctr-default 3 0 0 -",
		"\nWRITES writer 0 0 0 ",
		"\nctr default 2025-03-01 12:00:00Z 2025-03-01 12:00:05Z run7 3",
		"\ndlq.WRITES.writer 1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status does not show %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(got, "KV_") {
		t.Errorf("status shows the buckets' streams:\n%s", out.String())
	}

	out.Reset()
	if code, _, errs := execute(t, statusCommand(&out), url, "--json"); code != 0 {
		t.Fatalf("status --json: exit %d\n%s", code, errs)
	}
	var r statusReport
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out.String())
	}
	if len(r.Streams) != 4 || len(r.Checkpoints) != 1 || len(r.DeadLetters) != 1 || r.DeadLetters[0].Count != 1 {
		t.Errorf("status --json: %+v", r)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready:\n  nats: not connected\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	t.Cleanup(api.Close)
	tests := []struct {
		name string
		args []string
		code int
		out  string
		err  string
	}{
		{name: "ready", args: []string{"--url", api.URL + "/readyz"}, code: 0, out: "ok"},
		{name: "not ready", args: []string{"--url", api.URL + "/other"}, code: 1, err: "nats: not connected"},
		{name: "nobody listening", args: []string{"--url", "http://127.0.0.1:1/readyz"}, code: 1, err: "check readiness"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			code, _, errs := execute(t, healthcheckCommand(&out), "", tt.args...)
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errs, tt.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out.String(), errs, tt.code, tt.out, tt.err)
			}
		})
	}
}

func TestReadyzURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, addr, want string
		wantErr          bool
	}{
		{name: "default", addr: "", want: "http://127.0.0.1:9090/readyz"},
		{name: "any host", addr: ":9100", want: "http://127.0.0.1:9100/readyz"},
		{name: "all interfaces", addr: "0.0.0.0:9100", want: "http://127.0.0.1:9100/readyz"},
		{name: "IPv6 any", addr: "[::]:9100", want: "http://127.0.0.1:9100/readyz"},
		{name: "named host", addr: "metrics.local:80", want: "http://metrics.local:80/readyz"},
		{name: "no port", addr: "localhost", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readyzURL(tt.addr)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("readyzURL(%q) = %q, %v; want %q, error %v", tt.addr, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
