package ctr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/testkit"
)

const (
	testID       = "client-4c1e0a7e-9b7d-4a59-8c49-5d0e3c2b1a90"
	testPassword = "Zq1v-pW7_kT3nR8xY2mL5bC9dF4gH6jA0sE1uI3oP7qW9eR2tY4uI6"
)

// newSim starts a simulator and returns it with a client configured for it.
func newSim(t *testing.T, opts ctrsim.Options, batch int) (*ctrsim.Server, *ctr.Client) {
	t.Helper()
	if opts.Clients == nil {
		opts.Clients = map[string]string{testID: testPassword}
	}
	s := ctrsim.New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c, err := ctr.New(ctr.Config{
		ClientID: testID, ClientPassword: config.Secret(testPassword),
		BaseURL: srv.URL, BatchSize: batch, Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestObserveAgainstSimulator(t *testing.T) {
	t.Parallel()
	s, c := newSim(t, ctrsim.Options{Seed: 1}, 6)
	s.AddContext(ctrsim.Observable{Type: "domain", Value: "evil.example"},
		ctrsim.ModuleContext{
			Module: "Talos Intelligence", Disposition: 2,
			Judgement: &ctrsim.Judgement{Confidence: "High", Severity: "High", Priority: 90,
				Reason: "Poor Talos Intelligence reputation score", Source: "Talos Intelligence",
				SourceURI: "https://talos.example/lookup?search=evil.example"},
		},
		ctrsim.ModuleContext{
			Module: "Pulsedive", Disposition: 3, Handles: []string{"domain", "ip"},
			Judgement: &ctrsim.Judgement{Confidence: "Medium", Severity: "Medium", Priority: 85, Source: "Pulsedive"},
			Sighting:  &ctrsim.Sighting{Description: "found in threat feeds", Origin: "Pulsedive Enrichment Module"},
		})
	s.AddContext(ctrsim.Observable{Type: "ip", Value: "203.0.113.7"},
		ctrsim.ModuleContext{
			Module: "Pulsedive", Disposition: 3, Handles: []string{"domain", "ip"},
			Judgement: &ctrsim.Judgement{Confidence: "Low", Severity: "Low", Priority: 85, Source: "Pulsedive",
				SourceURI: "https://pulsedive.example/ip"},
			Sighting: &ctrsim.Sighting{Description: "port scan", Origin: "Pulsedive Enrichment Module"},
		})
	s.AddContext(ctrsim.Observable{Type: "sha256", Value: strings.Repeat("ab", 32)},
		ctrsim.ModuleContext{Module: "AMP File Reputation", Disposition: 1}) // verdict only
	s.AddContext(ctrsim.Observable{Type: "url", Value: "http://x.example/"},
		// A module that only handles ip says nothing about a url.
		ctrsim.ModuleContext{Module: "AbuseIPDB", Handles: []string{"ip", "ipv6"}, Disposition: 2,
			Judgement: &ctrsim.Judgement{Priority: 85, Source: "AbuseIPDB"}})

	asked := []ctr.Observable{
		{Type: "domain", Value: "EVIL.example"},
		{Type: "domain", Value: "evil.example"}, // a duplicate once lower-cased
		{Type: "ip", Value: "203.0.113.7"},
		{Type: "sha256", Value: strings.Repeat("AB", 32)},
		{Type: "url", Value: "http://x.example/"},
		{Type: "ip", Value: "198.51.100.1"}, // unknown to every module
		{Type: "cidr", Value: "10.0.0.0/8"}, // not a CTR type: skipped
		{Type: "ip", Value: " "},            // empty: skipped
	}
	r, err := c.Observe(context.Background(), asked)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ObservablesReceived(); got != 6 {
		t.Errorf("simulator received %d observables, want 6 (skipped dropped; de-duplicating is the caller's)", got)
	}
	if got := s.Stats.Count(ctrsim.RouteObserve); got != 1 {
		t.Errorf("%d observe calls, want 1 (chunking is the caller's)", got)
	}
	if _, err := c.Observe(context.Background(), append(asked, asked...)); !errors.Is(err, ctr.ErrBatchTooLong) {
		t.Errorf("12 observables with a batch size of 6: %v, want ErrBatchTooLong", err)
	}
	if len(r.Skipped) != 2 {
		t.Errorf("skipped = %v, want the cidr and the empty value", r.Skipped)
	}
	res := r.Results()
	want := map[ctr.Observable][][]ctr.Attribute{
		// Both modules answer for the domain: one result each.
		asked[0]: {attrs("CTR Module", "Talos Intelligence", "Disposition", "Malicious", "Confidence", "High",
			"Severity", "High", "Description", "Poor Talos Intelligence reputation score",
			"Source", "Talos Intelligence", "Priority", "90", "Origin", "Cisco Threat Response",
			"Reference", "https://talos.example/lookup?search=evil.example"),
			attrs("CTR Module", "Pulsedive", "Disposition", "Suspicious", "Confidence", "Medium",
				"Severity", "Medium", "Description", "found in threat feeds", "Source", "Pulsedive", "Priority", "85",
				"Origin", "Pulsedive Enrichment Module")},
		asked[2]: {attrs("CTR Module", "Pulsedive", "Disposition", "Suspicious", "Confidence", "Low",
			"Severity", "Low", "Description", "port scan", "Source", "Pulsedive", "Priority", "85",
			"Origin", "Pulsedive Enrichment Module", "Reference", "https://pulsedive.example/ip")},
		asked[3]: {attrs("CTR Module", "AMP File Reputation", "Disposition", "Clean")},
	}
	want[asked[1]] = want[asked[0]]
	got := map[ctr.Observable][][]ctr.Attribute{}
	for o, rs := range res {
		for _, r := range rs {
			got[o] = append(got[o], r.Attributes)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("results:\n got  %v\n want %v", got, want)
	}

	d, err := c.Deliberate(context.Background(), asked[:4])
	if err != nil {
		t.Fatal(err)
	}
	dres := d.Results()
	if rs := dres[asked[0]]; len(rs) != 2 || !reflect.DeepEqual(rs[0].Attributes, attrs("CTR Module", "Talos Intelligence", "Disposition", "Malicious")) {
		t.Errorf("deliberate results = %v", rs)
	}
	if got := s.Stats.Count(ctrsim.RouteToken); got != 1 {
		t.Errorf("%d token requests, want 1 (cached)", got)
	}
}

func TestTokenSingleFlightAndExpiry(t *testing.T) {
	t.Parallel()
	clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, c := newSim(t, ctrsim.Options{Now: clk.Now}, 50)
	obs := []ctr.Observable{{Type: "ip", Value: "192.0.2.1"}}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if _, err := c.Observe(context.Background(), obs); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := s.Stats.Count(ctrsim.RouteToken); got != 1 {
		t.Fatalf("%d token requests for 16 concurrent calls, want 1", got)
	}
	// The simulator's clock moves past the token's life; the client's
	// does not, so it learns of the expiry from the 401 and mints again.
	clk.Advance(11 * time.Minute)
	if _, err := c.Observe(context.Background(), obs); err != nil {
		t.Fatalf("observe after expiry: %v", err)
	}
	if got := s.Stats.Count(ctrsim.RouteToken); got != 2 {
		t.Errorf("%d token requests, want 2 (re-minted once on 401)", got)
	}
	if got := s.Stats.Count(ctrsim.RouteObserve); got != 18 {
		t.Errorf("%d observe requests, want 18 (16 + the refused one + its retry)", got)
	}
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	s := ctrsim.New(ctrsim.Options{Clients: map[string]string{testID: "other"}})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c, err := ctr.New(ctr.Config{ClientID: testID, ClientPassword: testPassword, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err = c.Observe(context.Background(), []ctr.Observable{{Type: "ip", Value: "192.0.2.1"}})
		if !errors.Is(err, ctr.ErrCredentials) || httpx.IsTransient(err) {
			t.Fatalf("err = %v, want a permanent ErrCredentials", err)
		}
		if strings.Contains(err.Error(), testPassword) {
			t.Fatal("the password leaked into the error")
		}
	}
	if got := s.Stats.Count(ctrsim.RouteToken); got != 1 {
		t.Errorf("%d token requests, want 1: a refusal is remembered for a while", got)
	}
	if got := s.Stats.Count(ctrsim.RouteObserve); got != 0 {
		t.Errorf("%d observe requests without a token", got)
	}
}

func TestRateLimitRetryAfter(t *testing.T) {
	t.Parallel()
	clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	_, c := newSim(t, ctrsim.Options{Now: clk.Now, RateLimit: 2, RateWindow: time.Hour}, 50)
	obs := []ctr.Observable{{Type: "ip", Value: "192.0.2.1"}}
	for range 2 {
		if _, err := c.Observe(context.Background(), obs); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(3 * time.Second)
	_, err := c.Observe(context.Background(), obs)
	var se *httpx.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("err = %v, want a 429 StatusError", err)
	}
	if !httpx.IsTransient(err) || httpx.RetryAfterOf(err) != 3597*time.Second {
		t.Errorf("transient %v, retry after %v; want true, 3597s", httpx.IsTransient(err), httpx.RetryAfterOf(err))
	}
}

func TestPayloadLimitSplits(t *testing.T) {
	t.Parallel()
	s, c := newSim(t, ctrsim.Options{MaxObservables: 3}, 10)
	var obs []ctr.Observable
	for i := range 10 {
		o := ctrsim.Observable{Type: "ip", Value: fmt.Sprintf("192.0.2.%d", i)}
		s.AddContext(o, ctrsim.ModuleContext{Module: "Talos Intelligence", Disposition: 2})
		obs = append(obs, ctr.Observable{Type: o.Type, Value: o.Value})
	}
	r, err := c.Observe(context.Background(), obs)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.Results()); got != 10 {
		t.Errorf("%d results, want 10", got)
	}
	if got := s.ObservablesReceived(); got != 10 {
		t.Errorf("simulator accepted %d observables, want 10", got)
	}
}

func TestModuleErrorsAreReturned(t *testing.T) {
	t.Parallel()
	s, c := newSim(t, ctrsim.Options{ModuleErrorRate: 1}, 50)
	s.AddContext(ctrsim.Observable{Type: "ip", Value: "192.0.2.1"}, ctrsim.ModuleContext{Module: "AbuseIPDB", Disposition: 2})
	r, err := c.Observe(context.Background(), []ctr.Observable{{Type: "ip", Value: "192.0.2.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.ErrorCount() != 1 || r.Errors[0].Code != "too many requests" || r.Errors[0].Module != "AbuseIPDB" {
		t.Errorf("errors = %+v", r.Errors)
	}
	if len(r.Results()) != 0 {
		t.Error("a failed module gave a result")
	}
}

// fixedServer answers every token request with a token and every API call
// with the given status, headers and body.
func fixedServer(t *testing.T, status int, header map[string]string, body string) (*ctr.Client, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/iroh/oauth2/token" {
			_, _ = io.WriteString(w, `{"access_token":"tok","token_type":"bearer","expires_in":600}`)
			return
		}
		calls.Add(1)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := ctr.New(ctr.Config{ClientID: testID, ClientPassword: testPassword, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls
}

func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	body := func(name string) func(*testing.T) string {
		return func(t *testing.T) string { return string(readShared(t, name)) }
	}
	lit := func(s string) func(*testing.T) string { return func(*testing.T) string { return s } }
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      func(*testing.T) string
		kind      error // nil: a plain StatusError or DecodeError
		transient bool
		retry     time.Duration
		detail    string
		calls     int64
		decode    bool
	}{
		{name: "401 twice", status: 401, body: body("iroh-enrich_error_401.example.json"), kind: ctr.ErrUnauthorized,
			detail: "No JWT found", calls: 2},
		{name: "403 missing scope", status: 403, body: body("iroh-inspect_error_403.example.json"), kind: ctr.ErrMissingScope,
			detail: "missing scopes: inspect:read", calls: 1},
		{name: "400 schema", status: 400, body: body("iroh-inspect_error_400.example.json"), kind: ctr.ErrBadRequest,
			detail: "content", calls: 1},
		{name: "400 errors map", status: 400, body: lit(`{"errors":{"3":{"type":"(not (...))"}}}`), kind: ctr.ErrBadRequest,
			detail: "errors.3.type", calls: 1},
		{name: "500", status: 500, body: body("iroh-enrich_error_500.example.json"), transient: true,
			detail: "trace_id 2e790e2c", calls: 1},
		{name: "503 html", status: 503, body: lit("<html>down</html>"), transient: true, detail: "non-JSON", calls: 1},
		{name: "429", status: 429, header: map[string]string{"Retry-After": "3557"}, body: lit(`{"error":"Too Many Requests"}`),
			transient: true, retry: 3557 * time.Second, calls: 1},
		{name: "413 of one", status: 413, body: lit(""), kind: ctr.ErrTooLarge, detail: "empty body", calls: 1},
		{name: "200 malformed", status: 200, body: lit(`{"data":[{"module":`), decode: true, calls: 1},
		{name: "200 not an envelope", status: 200, body: lit(`[{"type":"ip","value":"1.2.3.4"}]`), decode: true, calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, calls := fixedServer(t, tt.status, tt.header, tt.body(t))
			_, err := c.Observe(context.Background(), []ctr.Observable{{Type: "ip", Value: "192.0.2.1"}})
			if err == nil {
				t.Fatal("want an error")
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("err = %v, want %v", err, tt.kind)
			}
			var de *httpx.DecodeError
			if errors.As(err, &de) != tt.decode {
				t.Errorf("err = %v (%T), decode error want %v", err, err, tt.decode)
			}
			if httpx.IsTransient(err) != tt.transient {
				t.Errorf("transient = %v, want %v (%v)", httpx.IsTransient(err), tt.transient, err)
			}
			if httpx.RetryAfterOf(err) != tt.retry {
				t.Errorf("retry after %v, want %v", httpx.RetryAfterOf(err), tt.retry)
			}
			if !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %q does not mention %q", err, tt.detail)
			}
			if calls.Load() != tt.calls {
				t.Errorf("%d API calls, want %d", calls.Load(), tt.calls)
			}
			if errors.Is(tt.kind, ctr.ErrMissingScope) {
				var ce *ctr.Error
				if !errors.As(err, &ce) || !reflect.DeepEqual(ce.MissingScopes, []string{"inspect:read"}) {
					t.Errorf("missing scopes = %+v", ce)
				}
			}
		})
	}
}

func TestTokenAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		body      string
		kind      error
		transient bool
	}{
		{"401 invalid_client", 401, `{"error":"invalid_client","error_description":"bad"}`, ctr.ErrCredentials, false},
		{"400", 400, `{"error":"unsupported_grant_type"}`, ctr.ErrCredentials, false},
		{"503", 503, ``, nil, true},
		{"200 without token", 200, `{"token_type":"bearer"}`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var gotAuth, gotForm, gotCT atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id, pw, _ := r.BasicAuth()
				gotAuth.Store(id + ":" + pw)
				b, _ := io.ReadAll(r.Body)
				gotForm.Store(string(b))
				gotCT.Store(r.Header.Get("Content-Type"))
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			c, err := ctr.New(ctr.Config{ClientID: testID, ClientPassword: testPassword, BaseURL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Observe(context.Background(), []ctr.Observable{{Type: "ip", Value: "192.0.2.1"}})
			if err == nil {
				t.Fatal("want an error")
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("err = %v, want %v", err, tt.kind)
			}
			if httpx.IsTransient(err) != tt.transient {
				t.Errorf("transient = %v, want %v", httpx.IsTransient(err), tt.transient)
			}
			if gotAuth.Load() != testID+":"+testPassword || gotForm.Load() != "grant_type=client_credentials" ||
				gotCT.Load() != "application/x-www-form-urlencoded" {
				t.Errorf("token request: auth %v, form %v, content type %v", gotAuth.Load(), gotForm.Load(), gotCT.Load())
			}
		})
	}
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/iroh/oauth2/token" {
			_, _ = io.WriteString(w, `{"access_token":"tok","expires_in":600}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Header.Get("Authorization") + " " + r.Header.Get("Content-Type") + " " + string(b))
		_, _ = io.WriteString(w, `{"data":[],"errors":[]}`)
	}))
	t.Cleanup(srv.Close)
	c, err := ctr.New(ctr.Config{ClientID: testID, ClientPassword: testPassword, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Observe(context.Background(), []ctr.Observable{
		{Type: "sha256", Value: "ABCD"}, {Type: "url", Value: "http://X.example/A"}, {Type: "sha256", Value: "abcd"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var body []ctr.Observable
	s := got.Load().(string)
	prefix := "Bearer tok application/json "
	if !strings.HasPrefix(s, prefix) {
		t.Fatalf("request = %q", s)
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(s, prefix)), &body); err != nil {
		t.Fatal(err)
	}
	want := []ctr.Observable{{Type: "sha256", Value: "abcd"}, {Type: "url", Value: "http://X.example/A"}, {Type: "sha256", Value: "abcd"}}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("body = %v, want %v (hashes lower-cased, urls untouched; de-duplicating is the caller's)", body, want)
	}
}
