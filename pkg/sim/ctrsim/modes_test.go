package ctrsim_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
)

// TestRefusals: a missing Enrich scope refuses every enrich call with the
// missing_scope body of Cisco's 403 example, tokens still minted; a
// revoked client gets no token and its old token stops working; both
// clear when set back.
func TestRefusals(t *testing.T) {
	t.Parallel()
	s, base := start(t, ctrsim.Options{})
	tok := token(t, base)
	s.SetRefusal(ctrsim.RefuseMissingScope)
	a := enrich(t, base, observe, tok, `[{"type":"ip","value":"192.0.2.1"}]`)
	m := a.json(t)
	if a.status != http.StatusForbidden || m["error"] != "missing_scope" ||
		!reflect.DeepEqual(m["missing-scopes"], []any{"enrich:read"}) || a.header.Get("X-Ratelimit-Org-Limit") != "8000" {
		t.Errorf("missing scope: %d %s (limit header %q)", a.status, a.body, a.header.Get("X-Ratelimit-Org-Limit"))
	}
	if tok2 := token(t, base); tok2 == "" {
		t.Error("no token while the scope is missing")
	}
	s.SetRefusal(ctrsim.RefuseRevoked)
	if a := enrich(t, base, observe, tok, `[]`); a.status != http.StatusUnauthorized {
		t.Errorf("revoked, old token: %d %s", a.status, a.body)
	}
	a = tokenRequest(t, base, ctrsim.DefaultClientID, ctrsim.DefaultClientPassword, form, "grant_type=client_credentials")
	if a.status != http.StatusUnauthorized || a.json(t)["error"] != "invalid_client" {
		t.Errorf("revoked, token: %d %s", a.status, a.body)
	}
	s.SetRefusal(ctrsim.RefuseNone)
	if a := enrich(t, base, observe, token(t, base), `[]`); a.status != http.StatusOK {
		t.Errorf("restored: %d %s", a.status, a.body)
	}
	// A token refused is not an org's request: only the 403 and the last
	// call reached the org's limit.
	if n := len(s.Requests()); n != 2 {
		t.Errorf("request log holds %d API requests, want 2", n)
	}
}

// TestRetryAfterStyles: the org limit's 429 with Retry-After in seconds,
// as "Ns", or without it.
func TestRetryAfterStyles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		style ctrsim.RetryAfterStyle
		want  string
	}{{ctrsim.RetryAfterSeconds, "60"}, {ctrsim.RetryAfterSuffixed, "60s"}, {ctrsim.RetryAfterMissing, ""}}
	for _, tt := range tests {
		t.Run(string(tt.style), func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			s, base := start(t, ctrsim.Options{Now: clk.Now, RateLimit: 1, RateWindow: time.Minute})
			s.SetRetryAfter(tt.style)
			tok := token(t, base)
			_ = enrich(t, base, deliberate, tok, `[]`)
			a := enrich(t, base, deliberate, tok, `[]`)
			_, has := a.header["Retry-After"]
			if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != tt.want || has != (tt.want != "") {
				t.Errorf("429: %d Retry-After %q, want %q", a.status, a.header.Get("Retry-After"), tt.want)
			}
		})
	}
}

// TestMaxInWindow checks the request log's window count.
func TestMaxInWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	log := []time.Time{t0, t0.Add(time.Second), t0.Add(1500 * time.Millisecond), t0.Add(2 * time.Second), t0.Add(10 * time.Second)}
	if got := ctrsim.MaxInWindow(log, 2*time.Second); got != 3 {
		t.Errorf("MaxInWindow 2s = %d, want 3", got)
	}
	if got := ctrsim.MaxInWindow(log, time.Minute); got != 5 {
		t.Errorf("MaxInWindow 1m = %d, want 5", got)
	}
}

// TestModulesDisagreeAndSightingsOnly: a module whose verdict and
// judgement disagree answers both as given; a sightings-only module
// answers a sighting and no verdict; GTI links its judgement to an
// indicator; the oracle gives each module's rows.
func TestModulesDisagreeAndSightingsOnly(t *testing.T) {
	t.Parallel()
	s, base := start(t, ctrsim.Options{})
	o := ctrsim.Observable{Type: "ip", Value: "198.51.100.4"}
	s.AddContext(o,
		ctrsim.ModuleContext{Module: "AbuseIPDB", Disposition: 3, Judgement: &ctrsim.Judgement{
			Disposition: 2, Confidence: "Medium", Severity: "Medium", Priority: 85, Source: "AbuseIPDB", Reason: "reported"}},
		ctrsim.ModuleContext{Module: "Secure Endpoint", Sighting: &ctrsim.Sighting{Description: "Seen on 3 endpoints", Source: "Secure Endpoint"}},
		ctrsim.ModuleContext{Module: "SecureX Global Threat Intelligence", Disposition: 2, Judgement: &ctrsim.Judgement{
			Confidence: "High", Severity: "High", Priority: 95, Source: "Talos Threat Advisory Blog", Indicator: "Threat Spotlight"}},
	)
	a := enrich(t, base, observe, token(t, base), `[{"type":"ip","value":"198.51.100.4"}]`)
	body := string(a.body)
	for _, want := range []string{`"disposition":3`, `"disposition":2,"disposition_name":"Malicious","priority":85`,
		`"title":"Threat Spotlight"`, `"relationship_type":"element-of"`, `"description":"Seen on 3 endpoints"`} {
		if !strings.Contains(body, want) {
			t.Errorf("answer lacks %s: %s", want, body)
		}
	}
	var mods []map[string]any
	for _, m := range a.json(t)["data"].([]any) {
		mods = append(mods, m.(map[string]any))
	}
	se := mods[1]["data"].(map[string]any)
	if v, ok := se["verdicts"].(map[string]any); ok && v["count"].(float64) != 0 {
		t.Errorf("sightings-only module answered a verdict: %v", se)
	}
	want := []ctrsim.Attribute{
		{"CTR Module", "AbuseIPDB"}, {"Disposition", "Suspicious"}, {"Confidence", "Medium"}, {"Severity", "Medium"},
		{"Description", "reported"}, {"Source", "AbuseIPDB"}, {"Priority", "85"}, {"Origin", "Cisco Threat Response"},
		{"CTR Module", "Secure Endpoint"}, {"Description", "Seen on 3 endpoints"}, {"Source", "Secure Endpoint"},
		{"CTR Module", "SecureX Global Threat Intelligence"}, {"Disposition", "Malicious"}, {"Confidence", "High"},
		{"Severity", "High"}, {"Description", "Threat Spotlight"}, {"Source", "Talos Threat Advisory Blog"}, {"Priority", "95"},
	}
	if got := s.Attributes(o); !reflect.DeepEqual(got, want) {
		t.Errorf("Attributes:\n got %v\nwant %v", got, want)
	}
}
