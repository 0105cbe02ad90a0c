package ctrsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/testkit"
)

func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) }

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d %q is not a JSON object: %v", a.status, a.body, err)
	}
	return m
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func tokenRequest(t *testing.T, base, id, pw, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/iroh/oauth2/token", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if id != "" {
		req.SetBasicAuth(id, pw)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req)
}

const form = "application/x-www-form-urlencoded"

func token(t *testing.T, base string) string {
	t.Helper()
	a := tokenRequest(t, base, ctrsim.DefaultClientID, ctrsim.DefaultClientPassword, form, "grant_type=client_credentials")
	if a.status != http.StatusOK {
		t.Fatalf("token: %d %s", a.status, a.body)
	}
	tok, _ := a.json(t)["access_token"].(string)
	return tok
}

func enrich(t *testing.T, base, path, tok, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

const (
	observe    = "/iroh/iroh-enrich/observe/observables"
	deliberate = "/iroh/iroh-enrich/deliberate/observables"
)

func start(t *testing.T, opts ctrsim.Options) (*ctrsim.Server, string) {
	t.Helper()
	s := ctrsim.New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func TestToken(t *testing.T) {
	t.Parallel()
	_, base := start(t, ctrsim.Options{})
	tests := []struct {
		name, id, pw, ct, body string
		status                 int
		errCode                string
	}{
		{"good", ctrsim.DefaultClientID, ctrsim.DefaultClientPassword, form, "grant_type=client_credentials", 200, ""},
		{"wrong password", ctrsim.DefaultClientID, "nope", form, "grant_type=client_credentials", 401, "invalid_client"},
		{"unknown client", "client-x", ctrsim.DefaultClientPassword, form, "grant_type=client_credentials", 401, "invalid_client"},
		{"no basic auth", "", "", form, "grant_type=client_credentials&client_id=x", 401, "invalid_client"},
		{"json body", ctrsim.DefaultClientID, ctrsim.DefaultClientPassword, "application/json", `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
		{"no grant", ctrsim.DefaultClientID, ctrsim.DefaultClientPassword, form, "", 400, "invalid_request"},
		{"other grant", ctrsim.DefaultClientID, ctrsim.DefaultClientPassword, form, "grant_type=password", 400, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := tokenRequest(t, base, tt.id, tt.pw, tt.ct, tt.body)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if a.header.Get("X-Ratelimit-Org-Limit") != "8000" {
				t.Errorf("X-Ratelimit-Org-Limit = %q", a.header.Get("X-Ratelimit-Org-Limit"))
			}
			m := a.json(t)
			if tt.errCode != "" {
				if m["error"] != tt.errCode || m["error_description"] == "" {
					t.Errorf("body = %v, want error %q", m, tt.errCode)
				}
				return
			}
			if m["token_type"] != "bearer" || m["expires_in"] != 600.0 || m["access_token"] == "" || m["scope"] == "" {
				t.Errorf("token answer = %v", m)
			}
		})
	}
}

func TestTokenChecks(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s, base := start(t, ctrsim.Options{Now: clk.Now, TokenTTL: time.Minute})
	tok := token(t, base)
	settings := func(tok string) answer {
		req, _ := http.NewRequest(http.MethodGet, base+"/iroh/iroh-enrich/settings", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return do(t, req)
	}
	if a := settings(tok); a.status != 200 {
		t.Fatalf("settings: %d %s", a.status, a.body)
	}
	a := settings("")
	want, err := os.ReadFile(sharedtest.Path(t, "ctr/iroh-enrich_error_401.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a.status != 401 || !jsonEqual(t, a.body, want) {
		t.Errorf("no token: %d %s, want 401 %s", a.status, a.body, want)
	}
	if a := settings("forged"); a.status != 401 || a.json(t)["error"] != "invalid_token" {
		t.Errorf("forged token: %d %s", a.status, a.body)
	}
	if a := enrich(t, base, observe, tok, `[]`); a.status != 200 {
		t.Errorf("fresh token: %d %s", a.status, a.body)
	}
	clk.Advance(time.Minute)
	a = enrich(t, base, observe, tok, `[{"type":"ip","value":"192.0.2.1"}]`)
	if a.status != 401 || a.json(t)["error_description"] != "JWT expired" {
		t.Errorf("expired token: %d %s", a.status, a.body)
	}
	if a.header.Get("X-Ratelimit-Org-Limit") == "" {
		t.Error("a 401 lacks X-Ratelimit-Org-Limit")
	}
	if s.ObservablesReceived() != 0 {
		t.Error("observables of a refused request were counted")
	}
	if s.Ledger.Len() != 0 {
		t.Error("CTR is read-only: the ledger must stay empty")
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

func TestValidation(t *testing.T) {
	t.Parallel()
	s, base := start(t, ctrsim.Options{MaxObservables: 3})
	tok := token(t, base)
	tests := []struct {
		name, body string
		status     int
		errPath    []string // keys into {"errors": …}; nil: only the status
	}{
		{"good", `[{"type":"ip","value":"192.0.2.1"},{"value":"a.example","type":"domain"}]`, 200, nil},
		{"empty array", `[]`, 200, nil},
		{"extra key", `[{"type":"ip","value":"192.0.2.1"},{"type":"ip","value":"x","id":1}]`, 400, []string{"1", "id"}},
		{"missing value", `[{"type":"ip"}]`, 400, []string{"0", "value"}},
		{"missing type", `[{"value":"x"}]`, 400, []string{"0", "type"}},
		{"number value", `[{"type":"ip","value":5}]`, 400, []string{"0", "value"}},
		{"unknown type refuses the batch", `[{"type":"ip","value":"192.0.2.1"},{"type":"cidr","value":"10.0.0.0/8"}]`, 400, []string{"1", "type"}},
		{"upper-case type", `[{"type":"IP","value":"192.0.2.1"}]`, 400, []string{"0", "type"}},
		{"not an object", `["192.0.2.1"]`, 400, []string{"0"}},
		{"wrapped in an object", `{"observables":[{"type":"ip","value":"192.0.2.1"}]}`, 400, []string{}},
		{"malformed", `[{"type":"ip",`, 400, nil},
		{"too many", `[{"type":"ip","value":"1"},{"type":"ip","value":"2"},{"type":"ip","value":"3"},{"type":"ip","value":"4"}]`, 413, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := enrich(t, base, observe, tok, tt.body)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.errPath == nil {
				return
			}
			var v any = a.json(t)["errors"]
			if v == nil {
				t.Fatalf("no errors in %s", a.body)
			}
			for _, k := range tt.errPath {
				m, ok := v.(map[string]any)
				if !ok || m[k] == nil {
					t.Fatalf("no %v in %s", tt.errPath, a.body)
				}
				v = m[k]
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPost, base+observe, strings.NewReader(`[]`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "text/plain")
	if a := do(t, req); a.status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d", a.status)
	}
	t.Cleanup(func() {
		if got := s.ObservablesReceived(); got != 2 {
			t.Errorf("ObservablesReceived = %d, want 2 (only valid requests count)", got)
		}
		want := map[ctrsim.Observable]int64{{Type: "ip", Value: "192.0.2.1"}: 1, {Type: "domain", Value: "a.example"}: 1}
		if got := s.Asked(); !maps.Equal(got, want) {
			t.Errorf("Asked = %v, want %v (only valid requests count)", got, want)
		}
	})
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s, base := start(t, ctrsim.Options{Now: clk.Now, RateLimit: 3, RateWindow: time.Minute})
	tok := token(t, base)
	step := func(advance time.Duration, wantStatus int, wantRetry string) {
		t.Helper()
		clk.Advance(advance)
		a := enrich(t, base, deliberate, tok, `[]`)
		if a.status != wantStatus || a.header.Get("Retry-After") != wantRetry {
			t.Errorf("status %d Retry-After %q, want %d %q", a.status, a.header.Get("Retry-After"), wantStatus, wantRetry)
		}
		if a.header.Get("X-Ratelimit-Org-Limit") != "3" {
			t.Errorf("X-Ratelimit-Org-Limit = %q", a.header.Get("X-Ratelimit-Org-Limit"))
		}
	}
	step(0, 200, "")
	step(10*time.Second, 200, "")
	step(10*time.Second, 200, "")
	step(0, 429, "40")              // the first request leaves the window at 60 s
	step(30*time.Second, 429, "10") // refused requests do not count
	step(10*time.Second, 200, "")   // the first has left
	step(0, 429, "10")
	if got := s.Stats.Count(ctrsim.RouteDeliberate); got != 7 {
		t.Errorf("Stats counted %d deliberate requests, want 7", got)
	}
}

func TestQuirks(t *testing.T) {
	t.Parallel()
	s, base := start(t, ctrsim.Options{})
	talos := ctrsim.ModuleContext{Module: "Talos Intelligence", TypeID: "2460c99b-2f01-523b-a65d-30a3c6603245", Disposition: 2,
		Judgement: &ctrsim.Judgement{Confidence: "High", Severity: "High", Priority: 90, Source: "Talos Intelligence"}}
	abuse := ctrsim.ModuleContext{Module: "AbuseIPDB", Handles: []string{"ip", "ipv6"}, Disposition: 3,
		Judgement: &ctrsim.Judgement{Confidence: "Medium", Severity: "Medium", Priority: 85, Source: "AbuseIPDB"},
		Sighting:  &ctrsim.Sighting{Description: "ssh", Origin: "AbuseIPDB Enrichment Module"}}
	idle := ctrsim.ModuleContext{Module: "Private Intelligence", Disposition: 5}
	s.AddContext(ctrsim.Observable{Type: "ip", Value: "192.0.2.1"}, talos, abuse)
	s.AddContext(ctrsim.Observable{Type: "ip", Value: "192.0.2.2"}, talos, abuse)
	s.AddContext(ctrsim.Observable{Type: "domain", Value: "evil.example"}, talos, abuse) // AbuseIPDB ignores domains
	s.AddContext(ctrsim.Observable{Type: "mutex", Value: "nothing-asked"}, idle)
	tok := token(t, base)
	a := enrich(t, base, observe, tok,
		`[{"type":"ip","value":"192.0.2.1"},{"type":"ip","value":"192.0.2.2"},{"type":"domain","value":"EVIL.example"}]`)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var env struct {
		Data []struct {
			Module string                     `json:"module"`
			Data   map[string]json.RawMessage `json:"data"`
		} `json:"data"`
		Errors []any `json:"errors"`
	}
	if err := json.Unmarshal(a.body, &env); err != nil {
		t.Fatal(err)
	}
	if len(env.Data) != 3 || env.Errors == nil {
		t.Fatalf("want 3 modules and an errors array: %s", a.body)
	}
	docsOf := func(i int, coll string) []map[string]any {
		var c struct {
			Count float64          `json:"count"`
			Docs  []map[string]any `json:"docs"`
		}
		if raw, ok := env.Data[i].Data[coll]; ok {
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
		}
		if int(c.Count) != len(c.Docs) {
			t.Errorf("%s %s: count %v for %d docs", env.Data[i].Module, coll, c.Count, len(c.Docs))
		}
		return c.Docs
	}
	values := func(docs []map[string]any) []string {
		var out []string
		for _, d := range docs {
			out = append(out, d["observable"].(map[string]any)["value"].(string))
		}
		return out
	}
	if got := values(docsOf(0, "verdicts")); !slices.Equal(got, []string{"192.0.2.1", "192.0.2.2", "evil.example"}) {
		t.Errorf("Talos verdicts for %v: docs of the batch mixed, values as stored", got)
	}
	if got := values(docsOf(1, "verdicts")); !slices.Equal(got, []string{"192.0.2.1", "192.0.2.2"}) {
		t.Errorf("AbuseIPDB verdicts for %v, want the two ips only", got)
	}
	if n := len(docsOf(1, "sightings")); n != 2 {
		t.Errorf("%d AbuseIPDB sightings, want 2", n)
	}
	if env.Data[2].Module != "Private Intelligence" || len(docsOf(2, "verdicts")) != 0 || len(env.Data[2].Data) > 1 {
		t.Errorf("an enabled module with nothing to say answers {} or empty verdicts: %s", a.body)
	}
	d := enrich(t, base, deliberate, tok, `[{"type":"ip","value":"192.0.2.1"}]`)
	var denv struct {
		Data []struct {
			Data map[string]json.RawMessage `json:"data"`
		} `json:"data"`
	}
	if err := json.Unmarshal(d.body, &denv); err != nil {
		t.Fatal(err)
	}
	for _, m := range denv.Data {
		for k := range m.Data {
			if k != "verdicts" {
				t.Errorf("deliberate answered %q", k)
			}
		}
	}
}

// TestQuirksVary checks the per-module and per-observable variations over
// many modules and observables.
func TestQuirksVary(t *testing.T) {
	t.Parallel()
	s, base := start(t, ctrsim.Options{})
	var batch []ctrsim.Observable
	for i := range 40 {
		o := ctrsim.Observable{Type: "ip", Value: fmt.Sprintf("198.51.100.%d", i)}
		batch = append(batch, o)
		for m := range 6 {
			s.AddContext(o, ctrsim.ModuleContext{Module: fmt.Sprintf("Module %d", m), Disposition: 1 + i%5,
				Judgement: &ctrsim.Judgement{Priority: 90, Confidence: "High", Severity: "Low", Source: "S"}})
		}
	}
	body, _ := json.Marshal(batch)
	a := enrich(t, base, observe, token(t, base), string(body))
	text := string(a.body)
	var noName, withName, noJID, withJID int
	var env struct {
		Data []struct {
			Data struct {
				Verdicts struct {
					Docs []map[string]any `json:"docs"`
				} `json:"verdicts"`
			} `json:"data"`
		} `json:"data"`
	}
	if err := json.Unmarshal(a.body, &env); err != nil {
		t.Fatal(err)
	}
	for _, m := range env.Data {
		for _, v := range m.Data.Verdicts.Docs {
			if _, ok := v["disposition_name"]; ok {
				withName++
			} else {
				noName++
			}
			if _, ok := v["judgement_id"]; ok {
				withJID++
			} else {
				noJID++
			}
		}
	}
	if noName == 0 || withName == 0 || noJID == 0 || withJID == 0 {
		t.Errorf("disposition_name %d/%d and judgement_id %d/%d: each should be sometimes missing",
			withName, noName, withJID, noJID)
	}
	for _, frag := range []string{`T\d\d:\d\d:\d\d\.\d{3}Z"`, `T\d\d:\d\d:\d\dZ"`, `\.\d{6}Z"`, `"count":40\.0,`, `"count":40,`} {
		if !regexp.MustCompile(frag).MatchString(text) {
			t.Errorf("no module writes %s", frag)
		}
	}
}

func TestModuleErrors(t *testing.T) {
	t.Parallel()
	s, base := start(t, ctrsim.Options{ModuleErrorRate: 1})
	s.AddContext(ctrsim.Observable{Type: "ip", Value: "192.0.2.1"}, ctrsim.ModuleContext{Module: "AbuseIPDB", Disposition: 2})
	a := enrich(t, base, observe, token(t, base), `[{"type":"ip","value":"192.0.2.1"}]`)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	m := a.json(t)
	errs, _ := m["errors"].([]any)
	if len(errs) != 1 || len(m["data"].([]any)) != 0 {
		t.Fatalf("want one module error and no data: %s", a.body)
	}
	e := errs[0].(map[string]any)
	for _, k := range []string{"module", "module_instance_id", "module_type_id", "code", "message", "type"} {
		if s, _ := e[k].(string); s == "" {
			t.Errorf("module error lacks %q: %v", k, e)
		}
	}
	if e["type"] != "fatal" || e["code"] != "too many requests" {
		t.Errorf("module error = %v", e)
	}
}

// keysOf collects the keys of the docs of each collection of an answer.
func keysOf(t *testing.T, body []byte, keys map[string]map[string]bool) {
	t.Helper()
	var env struct {
		Data []map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	for _, m := range env.Data {
		var colls map[string]struct {
			Docs []map[string]any `json:"docs"`
		}
		if err := json.Unmarshal(m["data"], &colls); err != nil {
			t.Fatal(err)
		}
		for name, c := range colls {
			if keys[name] == nil {
				keys[name] = map[string]bool{}
			}
			for _, d := range c.Docs {
				for k := range d {
					keys[name][k] = true
				}
			}
		}
	}
}

// TestShapes checks that every key the simulator writes is one Cisco's
// examples use, and that the fields the Swagger requires are all there.
func TestShapes(t *testing.T) {
	t.Parallel()
	known := map[string]map[string]bool{}
	for _, f := range []string{"iroh-enrich_observe-observables_200.example.json", "iroh-enrich_deliberate-observables_200.example.json"} {
		b, err := os.ReadFile(sharedtest.Path(t, "ctr/"+f))
		if err != nil {
			t.Fatal(err)
		}
		keysOf(t, b, known)
	}
	for coll, f := range map[string]string{"verdicts": "ctim_verdict.example.json", "judgements": "ctim_judgement.example.json", "sightings": "ctim_sighting.example.json"} {
		b, err := os.ReadFile(sharedtest.Path(t, "ctr/"+f))
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		for k := range d {
			known[coll][k] = true
		}
	}
	var vocab struct {
		Judgement []string `json:"judgement_required_fields_iroh_swagger"`
		Verdict   []string `json:"verdict_required_fields_iroh_swagger"`
		Types     []string `json:"observable_types_iroh_swagger_1_0_107"`
	}
	b, err := os.ReadFile(sharedtest.Path(t, "ctr/ctim_vocabularies.derived.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vocab); err != nil {
		t.Fatal(err)
	}
	if len(vocab.Types) != ctrsim.ObservableTypes() {
		t.Errorf("the simulator knows %d types, the Swagger %d", ctrsim.ObservableTypes(), len(vocab.Types))
	}

	s, base := start(t, ctrsim.Options{Seed: 7})
	var batch []ctrsim.Observable
	for i, typ := range vocab.Types {
		o := ctrsim.Observable{Type: typ, Value: fmt.Sprintf("value-%d", i)}
		batch = append(batch, o)
		s.AddContext(o, ctrsim.GenerateContext(7, o)...)
	}
	body, _ := json.Marshal(batch)
	a := enrich(t, base, observe, token(t, base), string(body))
	if a.status != 200 {
		t.Fatalf("every enum type must be accepted: %d %s", a.status, a.body)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(a.body, &env); err != nil {
		t.Fatal(err)
	}
	for k := range env {
		if k != "data" && k != "errors" {
			t.Errorf("envelope key %q", k)
		}
	}
	var mods []map[string]json.RawMessage
	if err := json.Unmarshal(env["data"], &mods); err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		for k := range m {
			if !slices.Contains([]string{"module", "module_instance_id", "module_type_id", "module_instance_state", "data"}, k) {
				t.Errorf("module key %q", k)
			}
		}
	}
	got := map[string]map[string]bool{}
	keysOf(t, a.body, got)
	for coll, ks := range got {
		if known[coll] == nil {
			t.Errorf("collection %q is in no example", coll)
			continue
		}
		for k := range ks {
			if !known[coll][k] {
				t.Errorf("%s key %q is in no example", coll, k)
			}
		}
	}
	var parsed struct {
		Data []struct {
			Data map[string]struct {
				Docs []map[string]any `json:"docs"`
			} `json:"data"`
		} `json:"data"`
	}
	if err := json.Unmarshal(a.body, &parsed); err != nil {
		t.Fatal(err)
	}
	required := map[string][]string{"verdicts": vocab.Verdict, "judgements": vocab.Judgement,
		"sightings": {"id", "type", "schema_version", "count", "observables", "observed_time", "confidence"}}
	for _, m := range parsed.Data {
		for coll, c := range m.Data {
			for _, d := range c.Docs {
				for _, k := range required[coll] {
					if _, ok := d[k]; !ok {
						t.Errorf("%s doc lacks required %q: %v", coll, k, d)
					}
				}
			}
		}
	}
	if len(got["judgements"]) == 0 || len(got["sightings"]) == 0 {
		t.Error("generated context gave no judgements or sightings")
	}
}

func TestGenerateContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		obs     ctrsim.Observable
		modules []string // the modules that may answer
	}{
		{ctrsim.Observable{Type: "ip", Value: "203.0.113.9"}, []string{"Talos Intelligence", "SecureX Global Threat Intelligence", "Private Intelligence", "AbuseIPDB", "Pulsedive", "Secure Endpoint"}},
		{ctrsim.Observable{Type: "sha256", Value: strings.Repeat("0f", 32)}, []string{"AMP File Reputation", "SecureX Global Threat Intelligence", "Private Intelligence", "Secure Endpoint"}},
		{ctrsim.Observable{Type: "mutex", Value: "Global\\x"}, []string{"Private Intelligence"}},
		{ctrsim.Observable{Type: "domain", Value: "Evil.Example"}, []string{"Talos Intelligence", "SecureX Global Threat Intelligence", "Private Intelligence", "Pulsedive", "Secure Endpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.obs.Type, func(t *testing.T) {
			t.Parallel()
			for seed := range uint64(50) {
				got := ctrsim.GenerateContext(seed, tt.obs)
				// Case-insensitive types ignore the case of the value.
				again := ctrsim.GenerateContext(seed, ctrsim.Observable{Type: tt.obs.Type, Value: strings.ToLower(tt.obs.Value)})
				if !reflect.DeepEqual(got, ctrsim.GenerateContext(seed, tt.obs)) {
					t.Fatalf("seed %d: not deterministic", seed)
				}
				if tt.obs.Type != "mutex" && !reflect.DeepEqual(got, again) {
					t.Fatalf("seed %d: not deterministic (or not case-insensitive)", seed)
				}
				verdicts := 0
				for _, mc := range got {
					if mc.Disposition != 0 {
						verdicts++
					}
				}
				if verdicts < 1 || verdicts > 2 || len(got) > 3 {
					t.Fatalf("seed %d: %d modules, %d with a verdict", seed, len(got), verdicts)
				}
				for _, mc := range got {
					if mc.Disposition == 0 {
						if mc.Sighting == nil || mc.Judgement != nil || mc.Sighting.Description == "" {
							t.Errorf("seed %d: sightings-only context %+v", seed, mc)
						}
						continue
					}
					if !slices.Contains(tt.modules, mc.Module) || mc.InstanceID == "" || mc.TypeID == "" {
						t.Errorf("seed %d: module %q (%s, %s)", seed, mc.Module, mc.InstanceID, mc.TypeID)
					}
					if mc.Disposition < 1 || mc.Disposition > 5 {
						t.Errorf("seed %d: disposition %d", seed, mc.Disposition)
					}
					if j := mc.Judgement; j != nil && (j.Priority < 0 || j.Priority > 100 || j.Source == "" || j.Confidence == "" || j.Severity == "") {
						t.Errorf("seed %d: judgement %+v", seed, j)
					}
				}
			}
		})
	}
}

// TestGeneratedDatasetEnriches runs a generated dataset through the real
// client: every observable with generated context gets a result.
func TestGeneratedDatasetEnriches(t *testing.T) {
	t.Parallel()
	s, base := start(t, ctrsim.Options{Seed: 3})
	c, err := ctr.New(ctr.Config{ClientID: ctrsim.DefaultClientID, ClientPassword: ctrsim.DefaultClientPassword,
		BaseURL: base, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var obs []ctr.Observable
	for i := range 500 {
		typ := []string{"ip", "domain", "url", "sha256", "md5", "email"}[i%6]
		o := ctrsim.Observable{Type: typ, Value: fmt.Sprintf("v%d.%s", i, typ)}
		if i%5 != 0 { // one in five has no context
			s.AddContext(o, ctrsim.GenerateContext(3, o)...)
		}
		obs = append(obs, ctr.Observable{Type: o.Type, Value: o.Value})
	}
	res := map[ctr.Observable][]ctr.Result{}
	for chunk := range slices.Chunk(obs, 100) {
		r, err := c.Observe(t.Context(), chunk)
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(res, r.Results())
	}
	if len(res) != 400 {
		t.Errorf("%d results, want 400", len(res))
	}
	for o, rs := range res {
		var got []ctrsim.Attribute
		for _, r := range rs {
			if r.Value("CTR Module") == "" {
				t.Errorf("%v: %v", o, r.Attributes)
			}
			for _, a := range r.Attributes {
				if !slices.Contains(got, ctrsim.Attribute{Name: a.Name, Value: a.Value}) {
					got = append(got, ctrsim.Attribute{Name: a.Name, Value: a.Value})
				}
			}
		}
		// The client and the oracle agree, each from its own side.
		if want := s.Attributes(ctrsim.Observable{Type: o.Type, Value: o.Value}); !reflect.DeepEqual(got, want) {
			t.Errorf("%v:\n client %v\n oracle %v", o, got, want)
		}
	}
	if got := s.Stats.Count(ctrsim.RouteObserve); got != 5 {
		t.Errorf("%d observe requests, want 5", got)
	}
	resp, err := http.Get(base + "/_sim/ctr")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var adm map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&adm); err != nil || adm["observables_received"] != 500 {
		t.Errorf("GET /_sim/ctr = %v, %v", adm, err)
	}
}

func BenchmarkObserve(b *testing.B) {
	s := ctrsim.New(ctrsim.Options{RateLimit: -1})
	srv := httptest.NewServer(s.Handler())
	b.Cleanup(srv.Close)
	var obs []ctrsim.Observable
	for i := range 100_000 {
		o := ctrsim.Observable{Type: "ip", Value: fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)}
		s.AddContext(o, ctrsim.GenerateContext(1, o)...)
		obs = append(obs, o)
	}
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/iroh/oauth2/token", strings.NewReader(form))
	req.SetBasicAuth(ctrsim.DefaultClientID, ctrsim.DefaultClientPassword)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	_ = resp.Body.Close()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		lo := (i * 100) % len(obs)
		body, _ := json.Marshal(obs[lo : lo+100])
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/iroh/iroh-enrich/observe/observables", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
