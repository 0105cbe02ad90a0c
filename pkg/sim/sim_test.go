package sim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/sim"
)

func newServer(t *testing.T) (*httptest.Server, sim.Base) {
	t.Helper()
	b := sim.NewBase(1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/things", func(w http.ResponseWriter, r *http.Request) {
		b.Ledger.Record(sim.Entry{System: "test", Op: "thing.read", Object: "thing/1"})
		_, _ = io.WriteString(w, `{"data":[]}`)
	})
	srv := httptest.NewServer(b.Handler(mux, nil))
	t.Cleanup(srv.Close)
	return srv, b
}

func TestInjectorRates(t *testing.T) {
	t.Parallel()
	srv, b := newServer(t)
	b.Faults.Set(sim.Faults{ErrorRate: 0.2, RateLimitRate: 0.1, RetryAfter: 3 * time.Second})
	const n = 500
	codes := map[int]int{}
	for range n {
		resp, err := http.Get(srv.URL + "/api/things")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "3" {
			t.Errorf("Retry-After = %q, want 3", resp.Header.Get("Retry-After"))
		}
		_ = resp.Body.Close()
		codes[resp.StatusCode]++
	}
	// Seeded, so exact; the ranges say what the rates mean.
	if c := codes[503]; c < n*15/100 || c > n*25/100 {
		t.Errorf("503s = %d of %d, want about 20%%", c, n)
	}
	if c := codes[429]; c < n*6/100 || c > n*14/100 {
		t.Errorf("429s = %d of %d, want about 10%%", c, n)
	}
	if got := b.Faults.Counts(); got.Errors != int64(codes[503]) || got.RateLimited != int64(codes[429]) {
		t.Errorf("counts %+v disagree with answers %v", got, codes)
	}
	if got, want := int64(b.Ledger.Len()), int64(codes[200]); got != want {
		t.Errorf("ledger has %d entries, want one per 200 (%d)", got, want)
	}
}

func TestInjectorDrop(t *testing.T) {
	t.Parallel()
	srv, b := newServer(t)
	b.Faults.Set(sim.Faults{DropRate: 1})
	resp, err := http.Get(srv.URL + "/api/things")
	if err == nil {
		_ = resp.Body.Close()
		t.Fatal("a dropped connection must give a transport error")
	}
}

func TestInjectorScope(t *testing.T) {
	t.Parallel()
	srv, b := newServer(t)
	b.Faults.Set(sim.Faults{ErrorRate: 1, PathPrefix: "/api/other"})
	resp, err := http.Get(srv.URL + "/api/things")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200 outside the faulted prefix", resp.StatusCode)
	}
	b.Faults.Set(sim.Faults{ErrorRate: 1, Methods: []string{"POST"}})
	resp, err = http.Get(srv.URL + "/api/things")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200 for a method not faulted", resp.StatusCode)
	}
}

func TestAdminRoutes(t *testing.T) {
	t.Parallel()
	srv, b := newServer(t)
	b.Faults.Set(sim.Faults{ErrorRate: 1}) // Admin routes are never faulted.
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/_sim/faults", strings.NewReader(`{"latency":1000000}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || b.Faults.Get().Latency != time.Millisecond || b.Faults.Get().ErrorRate != 0 {
		t.Fatalf("PUT faults: status %d, faults %+v", resp.StatusCode, b.Faults.Get())
	}
	req, _ = http.NewRequest(http.MethodPut, srv.URL+"/_sim/faults", strings.NewReader(`{"latncy":1}`))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown fault field: status %d, want 400", resp.StatusCode)
	}
	for range 3 {
		r, err := http.Get(srv.URL + "/api/things")
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Body.Close()
	}
	var stats struct {
		Total  int64            `json:"total"`
		Routes []sim.RouteCount `json:"routes"`
	}
	getJSON(t, srv.URL+"/_sim/stats", &stats)
	if stats.Total != 3 || len(stats.Routes) != 1 || stats.Routes[0].Route != "GET /api/things" {
		t.Errorf("stats = %+v, want 3 requests of GET /api/things", stats)
	}
	var entries []sim.Entry
	getJSON(t, srv.URL+"/_sim/ledger", &entries)
	if len(entries) != 3 || entries[2].Seq != 3 || entries[0].Op != "thing.read" {
		t.Errorf("ledger = %+v", entries)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
}
