package tqsim_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestTokenGrants(t *testing.T) {
	t.Parallel()
	_, srv := start(t, tqsim.Options{Seed: 1})
	u, c := tqsim.DefaultUser, tqsim.DefaultClient
	jsonBody := func(m map[string]string) string { b, _ := json.Marshal(m); return string(b) }
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID+":"+c.Secret))
	tests := []struct {
		name, query, ctype, body, auth string
		want                           int
	}{
		{"password json body", "", "application/json",
			jsonBody(map[string]string{"grant_type": "password", "email": u.Email, "password": u.Password, "client_id": u.ClientID}), "", 200},
		{"password query and json", "?grant_type=password&client_id=" + u.ClientID, "application/json",
			jsonBody(map[string]string{"email": u.Email, "password": u.Password}), "", 200},
		{"password form", "", "application/x-www-form-urlencoded",
			url.Values{"grant_type": {"password"}, "email": {u.Email}, "password": {u.Password}, "client_id": {u.ClientID}}.Encode(), "", 200},
		{"password wrong", "", "application/json",
			jsonBody(map[string]string{"grant_type": "password", "email": u.Email, "password": "nope", "client_id": u.ClientID}), "", 400},
		{"password without client id", "", "application/json",
			jsonBody(map[string]string{"grant_type": "password", "email": u.Email, "password": u.Password}), "", 400},
		{"client credentials basic form", "", "application/x-www-form-urlencoded", "grant_type=client_credentials", basic, 200},
		{"client credentials basic query", "?grant_type=client_credentials", "application/json", "{}", basic, 200},
		{"client credentials in form", "", "application/x-www-form-urlencoded",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {c.Secret}}.Encode(), "", 200},
		{"client credentials wrong", "", "application/x-www-form-urlencoded", "grant_type=client_credentials",
			"Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID+":wrong")), 401},
		{"unknown grant", "", "application/json", `{"grant_type":"implicit"}`, "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/token"+tt.query, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.ctype)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			var tr struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   int    `json:"expires_in"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&tr)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == 200 && (tr.AccessToken == "" || tr.TokenType != "Bearer" || tr.ExpiresIn != 3600) {
				t.Errorf("token answer = %+v", tr)
			}
		})
	}
}

func TestBearerRequired(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(t0.Unix())
	s, srv := start(t, tqsim.Options{Seed: 2, TokenTTL: time.Minute, Now: func() time.Time { return time.Unix(clock.Load(), 0) }})
	if st, _ := call(t, srv, "", http.MethodGet, "/api/indicator/types", nil); st != 401 {
		t.Errorf("no token: status %d, want 401", st)
	}
	if st, _ := call(t, srv, "forged", http.MethodGet, "/api/indicator/types", nil); st != 401 {
		t.Errorf("forged token: status %d, want 401", st)
	}
	tok := token(t, srv)
	if st, _ := call(t, srv, tok, http.MethodGet, "/api/indicator/types", nil); st != 200 {
		t.Errorf("valid token: status %d", st)
	}
	clock.Add(120)
	if st, _ := call(t, srv, tok, http.MethodGet, "/api/indicator/types", nil); st != 401 {
		t.Errorf("expired token: status %d, want 401", st)
	}
	tok = token(t, srv)
	s.ExpireTokens()
	if st, _ := call(t, srv, tok, http.MethodGet, "/api/indicator/types", nil); st != 401 {
		t.Errorf("after ExpireTokens: status %d, want 401", st)
	}
	if s.TokensIssued() != 2 {
		t.Errorf("TokensIssued = %d, want 2", s.TokensIssued())
	}
}

func TestTokenRedirect(t *testing.T) {
	t.Parallel()
	_, srv := start(t, tqsim.Options{TokenRedirect: "https://elsewhere.example/steal"})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Post(srv.URL+"/api/token", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") == "" {
		t.Errorf("status %d, Location %q; want a redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestReferenceData(t *testing.T) {
	t.Parallel()
	type item struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	read := func(t *testing.T, opts tqsim.Options, path string) (int, []item) {
		t.Helper()
		_, srv := start(t, opts)
		st, b := call(t, srv, token(t, srv), http.MethodGet, path, nil)
		var env struct {
			Data []item `json:"data"`
		}
		if st == 200 {
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatal(err)
			}
		}
		return st, env.Data
	}
	t.Run("ids are shifted and differ per instance", func(t *testing.T) {
		t.Parallel()
		_, a := read(t, tqsim.Options{Seed: 1}, "/api/indicator/statuses")
		_, b := read(t, tqsim.Options{Seed: 2}, "/api/indicator/statuses")
		if len(a) < 5 || a[0].Name != "Active" || a[0].ID == 1 || a[0].ID == b[0].ID {
			t.Errorf("statuses %v and %v: want Active first, not id 1, differing ids", a, b)
		}
	})
	t.Run("no Suricata by default", func(t *testing.T) {
		t.Parallel()
		_, ts := read(t, tqsim.Options{}, "/api/signature/types")
		if slices.ContainsFunc(ts, func(i item) bool { return i.Name == "Suricata" }) || len(ts) != 8 {
			t.Errorf("signature types %v: want the 8 stock ones", ts)
		}
		_, ts = read(t, tqsim.Options{AllowSuricataType: true}, "/api/signature/types")
		if !slices.ContainsFunc(ts, func(i item) bool { return i.Name == "Suricata" }) {
			t.Errorf("signature types %v: want Suricata", ts)
		}
	})
	t.Run("signature statuses route can be absent", func(t *testing.T) {
		t.Parallel()
		if st, _ := read(t, tqsim.Options{NoSignatureStatusRoute: true}, "/api/signature/statuses"); st != 404 {
			t.Errorf("status %d, want 404", st)
		}
		_, ss := read(t, tqsim.Options{}, "/api/signature/statuses")
		if len(ss) != 6 || ss[3].Name != "Non-malicious" {
			t.Errorf("signature statuses %v", ss)
		}
	})
	t.Run("name filter", func(t *testing.T) {
		t.Parallel()
		_, ts := read(t, tqsim.Options{}, "/api/indicator/types?name=ip+address")
		if len(ts) != 1 || ts[0].Name != "IP Address" {
			t.Errorf("types = %v", ts)
		}
	})
}

func TestSavedSearchShapes(t *testing.T) {
	t.Parallel()
	s, srv := start(t, tqsim.Options{})
	for i := range 3 {
		if _, err := s.AddSavedSearch(fmt.Sprintf("search %d", i), json.RawMessage(`{"criteria":[],"filters":{"+and":[{"type_name":"FQDN"}]}}`)); err != nil {
			t.Fatal(err)
		}
	}
	_, b := call(t, srv, token(t, srv), http.MethodGet, "/api/search/query", nil)
	var env struct {
		Data []struct {
			ID   int             `json:"id"`
			Name string          `json:"name"`
			JSON json.RawMessage `json:"json"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil || len(env.Data) != 3 {
		t.Fatalf("searches: %v, %s", err, b)
	}
	var quoted, objects int
	for _, d := range env.Data {
		raw := d.JSON
		if raw[0] == '"' {
			quoted++
			var s string
			_ = json.Unmarshal(raw, &s)
			raw = json.RawMessage(s)
		} else {
			objects++
		}
		var obj struct {
			APIQuery struct {
				Filters json.RawMessage `json:"filters"`
			} `json:"api_query"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil || len(obj.APIQuery.Filters) == 0 {
			t.Errorf("search %d json: %v", d.ID, err)
		}
	}
	if quoted == 0 || objects == 0 {
		t.Errorf("json as string %d times, as object %d times: want both", quoted, objects)
	}
}

// loadFixture loads a small, known dataset.
func loadFixture(t *testing.T, s *tqsim.Server) {
	t.Helper()
	var inds []tqsim.Indicator
	types := []string{"IP Address", "FQDN", "MD5", "URL"}
	for i := range 40 {
		inds = append(inds, tqsim.Indicator{
			ID:         int64(100 + i),
			Value:      fmt.Sprintf("v%02d.example", i),
			Type:       types[i%4],
			Status:     map[bool]string{true: "Active", false: "Review"}[i%3 != 0],
			Score:      float64(i % 11),
			UpdatedAt:  t0.Add(time.Duration(40-i) * time.Hour), // reverse of id order
			Sources:    []string{"Feed"},
			Attributes: []tqsim.Attribute{{Name: "Confidence", Value: "High"}},
		})
	}
	if err := s.Load(inds); err != nil {
		t.Fatal(err)
	}
}

func TestQuery(t *testing.T) {
	t.Parallel()
	s, srv := start(t, tqsim.Options{Now: func() time.Time { return t0.Add(100 * time.Hour) }})
	loadFixture(t, s)
	tok := token(t, srv)
	all := url.Values{"limit": {"1000"}, "sort": {"updated_at,id"}}
	tests := []struct {
		name string
		body string
		want int
	}{
		{"empty", `{}`, 40},
		{"criteria as empty array", `{"criteria":[],"filters":[]}`, 40},
		{"type", `{"filters":{"+and":[{"type_name":"FQDN"}]}}`, 10},
		{"type is", `{"criteria":{"type_name":{"is":"fqdn"}}}`, 10},
		{"or", `{"filters":{"+or":[{"type_name":"FQDN"},{"type_name":"MD5"}]}}`, 20},
		{"status", `{"filters":{"status_name":"Active"}}`, 26},
		{"score gt", `{"filters":{"score":{"+gt":6}}}`, 12},
		{"score gte", `{"filters":{"score":{"+gte":7}}}`, 12},
		{"score lte", `{"filters":{"score":{"+lte":1}}}`, 8},
		{"active above", `{"filters":{"+and":[{"status_name":"Active"},{"score":{"+gt":6}}]}}`, 8},
		{"window", `{"filters":{"+and":[{"updated_at":{"+gt":"2026-01-01 10:00:00","+lt":"2026-01-01 20:00:00"}}]}}`, 9},
		{"window to NOW", `{"criteria":{"+and":[{"updated_at":{"+gt":"2026-01-02 10:00:00","+lt":"NOW"}}]}}`, 6},
		{"value", `{"filters":{"value":"v07.example"}}`, 1},
		{"value contains", `{"filters":{"value":{"+contains":"V1"}}}`, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := query(t, srv, tok, all, tt.body)
			if p.Total != tt.want || len(p.Items) != tt.want {
				t.Errorf("total %d, items %d; want %d", p.Total, len(p.Items), tt.want)
			}
		})
	}
	t.Run("unknown field is a validation error", func(t *testing.T) {
		t.Parallel()
		st, b := call(t, srv, tok, http.MethodPost, "/api/indicators/query", `{"filters":{"colour":"red"}}`)
		var v struct {
			Data struct {
				Errors map[string][]string `json:"errors"`
			} `json:"data"`
		}
		if st != 400 || json.Unmarshal(b, &v) != nil || len(v.Data.Errors) == 0 {
			t.Errorf("status %d, body %s", st, b)
		}
	})
}

func TestQueryPagingAndShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      tqsim.Options
		wantEmpty string
	}{
		{"empty page as object", tqsim.Options{}, "{}"},
		{"empty page as array", tqsim.Options{EmptyPagesAsArray: true}, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, tt.opts)
			loadFixture(t, s)
			tok := token(t, srv)
			var ids []float64
			var last float64
			for offset := 0; ; offset += 15 {
				p := query(t, srv, tok, url.Values{"limit": {"15"}, "offset": {fmt.Sprint(offset)}, "sort": {"updated_at,id"}},
					`{"fields":["id","value","type","status","score","updated_at","attributes","sources"]}`)
				if p.Total != 40 {
					t.Fatalf("total = %d", p.Total)
				}
				if len(p.Items) == 0 {
					if string(p.Data) != tt.wantEmpty {
						t.Errorf("empty page data = %s, want %s", p.Data, tt.wantEmpty)
					}
					break
				}
				for _, it := range p.Items {
					ids = append(ids, it["id"].(float64))
					if _, ok := it["type"].(string); !ok {
						t.Errorf("with fields, type = %v, want a name", it["type"])
					}
					if _, ok := it["status"].(string); !ok {
						t.Errorf("with fields, status = %v, want a name", it["status"])
					}
					if a, ok := it["attributes"].([]any); !ok || len(a) != 1 {
						t.Errorf("attributes = %v", it["attributes"])
					}
				}
			}
			if len(ids) != 40 {
				t.Fatalf("paged %d indicators, want 40", len(ids))
			}
			// Updated order is the reverse of id order in the fixture.
			for _, id := range ids {
				if last != 0 && id > last {
					t.Fatalf("ids %v not in updated_at order", ids)
				}
				last = id
			}
		})
	}
	t.Run("without fields: objects, no attributes, some string scores", func(t *testing.T) {
		t.Parallel()
		s, srv := start(t, tqsim.Options{})
		loadFixture(t, s)
		p := query(t, srv, token(t, srv), url.Values{"limit": {"100"}}, `{}`)
		strScores := 0
		for _, it := range p.Items {
			if _, ok := it["type"].(map[string]any); !ok {
				t.Fatalf("type = %v, want an object", it["type"])
			}
			if _, ok := it["attributes"]; ok {
				t.Fatal("attributes sent without being asked for")
			}
			if _, ok := it["score"].(string); ok {
				strScores++
			}
		}
		if strScores == 0 || strScores == len(p.Items) {
			t.Errorf("%d of %d scores are strings: want a share", strScores, len(p.Items))
		}
	})
}

// ledgerOps returns the ledger's entries as "op object name=value".
func ledgerOps(s *tqsim.Server, from int) []string {
	var out []string
	for _, e := range s.Ledger.Entries()[from:] {
		out = append(out, e.Op+" "+e.Object+" "+e.Name+"="+e.Value)
	}
	return out
}

func TestConsumeIndicatorsLedger(t *testing.T) {
	t.Parallel()
	s, srv := start(t, tqsim.Options{})
	tok := token(t, srv)
	batch := []map[string]any{
		{"value": "1.2.3.4", "type": map[string]string{"name": "IP Address"}, "status": map[string]string{"name": "Active"},
			"sources":    []map[string]string{{"name": "CTR"}},
			"attributes": []map[string]any{{"name": "Disposition", "value": "Malicious", "sources": []map[string]string{{"name": "CTR"}}}}},
		{"value": "evil.example", "type": "FQDN", "status_id": s.StatusID("Review")},
	}
	st, b := call(t, srv, tok, http.MethodPost, "/api/indicators/consume", batch)
	if st != 200 {
		t.Fatalf("consume: %d %s", st, b)
	}
	var env struct {
		Data []struct {
			ID       int64 `json:"id"`
			Existing bool  `json:"existing"`
		} `json:"data"`
	}
	_ = json.Unmarshal(b, &env)
	if len(env.Data) != 2 || env.Data[0].Existing {
		t.Fatalf("answer %s", b)
	}
	id := env.Data[0].ID
	obj := fmt.Sprintf("indicator/%d", id)
	want := []string{
		"indicator.create " + obj + " IP Address=1.2.3.4",
		"attribute.add " + obj + " Disposition=Malicious",
		fmt.Sprintf("indicator.create indicator/%d FQDN=evil.example", env.Data[1].ID),
	}
	if got := ledgerOps(s, 0); !slices.Equal(got, want) {
		t.Fatalf("ledger = %q, want %q", got, want)
	}
	// A redelivery changes nothing.
	if st, _ := call(t, srv, tok, http.MethodPost, "/api/indicators/consume", batch); st != 200 || s.Ledger.Len() != 3 {
		t.Fatalf("resend: status %d, ledger %q", st, ledgerOps(s, 0))
	}
	// A second Disposition value is recorded once; the status of an
	// existing indicator is not consume's to change (corrections 1).
	batch[0]["status"] = "Expired"
	batch[0]["attributes"] = []map[string]any{{"name": "Disposition", "value": "Clean"}}
	for range 2 {
		call(t, srv, tok, http.MethodPost, "/api/indicators/consume", batch[:1])
	}
	want = []string{"attribute.add " + obj + " Disposition=Clean"}
	if got := ledgerOps(s, 3); !slices.Equal(got, want) {
		t.Fatalf("ledger = %q, want %q", got, want)
	}
	// Deleting the old row: 204, then 404, one entry.
	attrs := s.Attributes(id)
	if len(attrs) != 2 {
		t.Fatalf("attributes = %+v", attrs)
	}
	path := fmt.Sprintf("/api/indicators/%d/attributes/%d", id, attrs[0].ID)
	if st, _ := call(t, srv, tok, http.MethodDelete, path, nil); st != 204 {
		t.Errorf("delete: %d", st)
	}
	if st, _ := call(t, srv, tok, http.MethodDelete, path, nil); st != 404 {
		t.Errorf("second delete: %d, want 404", st)
	}
	want = []string{"attribute.delete " + obj + " Disposition=Malicious"}
	if got := ledgerOps(s, 4); !slices.Equal(got, want) {
		t.Fatalf("ledger = %q, want %q", got, want)
	}
	in, _ := s.Indicator(id)
	if in.Status != "Active" || len(in.Sources) != 1 || in.Sources[0] != "CTR" {
		t.Errorf("indicator = %+v", in)
	}
}

func TestAttributeRoutes(t *testing.T) {
	t.Parallel()
	s, srv := start(t, tqsim.Options{})
	loadFixture(t, s)
	tok := token(t, srv)
	path := "/api/indicators/100/attributes"
	add := map[string]any{"name": "Severity", "value": "High", "sources": []map[string]string{{"name": "CTR"}}}
	if st, b := call(t, srv, tok, http.MethodPost, path, add); st != 201 {
		t.Fatalf("add: %d %s", st, b)
	}
	if st, _ := call(t, srv, tok, http.MethodPost, path, add); st != 200 {
		t.Errorf("re-add: %d, want 200 with the existing row", st)
	}
	if s.Ledger.Len() != 1 {
		t.Errorf("ledger %q, want one add", ledgerOps(s, 0))
	}
	st, b := call(t, srv, tok, http.MethodGet, path+"?limit=1&offset=0", nil)
	var env struct {
		Total int               `json:"total"`
		Data  []json.RawMessage `json:"data"`
	}
	if st != 200 || json.Unmarshal(b, &env) != nil || env.Total != 2 || len(env.Data) != 1 {
		t.Errorf("list page: %d %s", st, b)
	}
	if _, b := call(t, srv, tok, http.MethodGet, path+"?limit=10&offset=5", nil); !strings.Contains(string(b), `"data":{}`) {
		t.Errorf("empty attribute page = %s", b)
	}
	// PUT status, in its three shapes; only changes are recorded.
	for _, body := range []any{
		map[string]any{"status_id": s.StatusID("Whitelisted")},
		map[string]any{"status": map[string]string{"name": "Whitelisted"}},
		map[string]any{"status": "Active"},
	} {
		if st, b := call(t, srv, tok, http.MethodPut, "/api/indicators/100", body); st != 200 {
			t.Fatalf("put %v: %d %s", body, st, b)
		}
	}
	want := []string{"status.set indicator/100 status=Whitelisted", "status.set indicator/100 status=Active"}
	if got := ledgerOps(s, 1); !slices.Equal(got, want) {
		t.Errorf("ledger = %q, want %q", got, want)
	}
	// Status names match exactly, as the vendor SDK resolves them.
	for _, name := range []string{"Bogus", "whitelisted", "Active "} {
		if st, _ := call(t, srv, tok, http.MethodPut, "/api/indicators/100", map[string]any{"status": name}); st != 400 {
			t.Errorf("status %q: %d, want 400", name, st)
		}
	}
	if st, _ := call(t, srv, tok, http.MethodGet, "/api/indicators/99999", nil); st != 404 {
		t.Errorf("missing indicator: %d", st)
	}
	_, b = call(t, srv, tok, http.MethodGet, "/api/indicators/100?with=attributes,score", nil)
	if !strings.Contains(string(b), `"generated_score"`) || !strings.Contains(string(b), `"Severity"`) {
		t.Errorf("get with=score,attributes: %s", b)
	}
}

func TestRejectValue(t *testing.T) {
	t.Parallel()
	s, srv := start(t, tqsim.Options{})
	loadFixture(t, s)
	s.RejectValue("poison")
	tok := token(t, srv)
	tests := []struct {
		name, method, path string
		body               any
	}{
		{"consume value", http.MethodPost, "/api/indicators/consume",
			[]map[string]any{{"value": "ok.example", "type": "FQDN"}, {"value": "poison.example", "type": "FQDN"}}},
		{"consume attribute", http.MethodPost, "/api/indicators/consume",
			[]map[string]any{{"value": "ok.example", "type": "FQDN", "attributes": []map[string]string{{"name": "Note", "value": "poison"}}}}},
		{"attribute", http.MethodPost, "/api/indicators/100/attributes", map[string]string{"name": "Note", "value": "a poison b"}},
		{"signature", http.MethodPost, "/api/signatures/consume",
			[]map[string]any{{"name": "poison rule", "value": "alert tcp any any -> any any (sid:1;)", "type": "Snort"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, b := call(t, srv, tok, tt.method, tt.path, tt.body)
			var v struct {
				Data struct {
					Errors map[string][]string `json:"errors"`
				} `json:"data"`
			}
			if st != 400 || json.Unmarshal(b, &v) != nil || len(v.Data.Errors) == 0 {
				t.Errorf("status %d, body %s; want a validation 400", st, b)
			}
		})
	}
	t.Cleanup(func() {
		if s.Ledger.Len() != 0 {
			t.Errorf("a refused batch changed something: %q", ledgerOps(s, 0))
		}
	})
}

func TestAcceptValue(t *testing.T) {
	t.Parallel()
	s, srv := start(t, tqsim.Options{})
	s.RejectValue("poison")
	s.RejectValue("venom")
	tok := token(t, srv)
	consume := func(value string) int {
		st, _ := call(t, srv, tok, http.MethodPost, "/api/indicators/consume", []map[string]any{{"value": value, "type": "FQDN"}})
		return st
	}
	if st := consume("poison.example"); st != 400 {
		t.Fatalf("rejected value: status %d, want 400", st)
	}
	s.AcceptValue("poison")
	s.AcceptValue("never-rejected")
	if st := consume("poison.example"); st != 200 {
		t.Errorf("accepted again: status %d, want 200", st)
	}
	if st := consume("venom.example"); st != 400 {
		t.Errorf("another rejected value: status %d, want 400 (still rejected)", st)
	}
	if got := ledgerOps(s, 0); len(got) != 1 || !strings.HasPrefix(got[0], "indicator.create") || !strings.Contains(got[0], "poison.example") {
		t.Errorf("ledger = %q, want poison.example created once", got)
	}
}

func TestConsumeSignatures(t *testing.T) {
	t.Parallel()
	s, srv := start(t, tqsim.Options{AllowSuricataType: true})
	tok := token(t, srv)
	rule := "alert http any any -> any any (msg:\"ET TEST\"; sid:2000001; rev:1;)"
	batch := []map[string]any{{"name": "ET TEST", "value": rule, "type": map[string]string{"name": "Suricata"},
		"status": map[string]string{"name": "Active"}, "sources": []map[string]string{{"name": "ET"}},
		"attributes": []map[string]string{{"name": "SID", "value": "2000001"}}}}
	if st, b := call(t, srv, tok, http.MethodPost, "/api/signatures/consume", batch); st != 200 {
		t.Fatalf("consume: %d %s", st, b)
	}
	call(t, srv, tok, http.MethodPost, "/api/signatures/consume", batch)
	if got := ledgerOps(s, 0); len(got) != 1 || !strings.HasPrefix(got[0], "signature.create signature/1 ET TEST=Suricata") {
		t.Fatalf("ledger = %q", got)
	}
	// Consume leaves an existing signature's status; PUT sets it, by id,
	// and only the change is recorded.
	batch[0]["status"] = "Non-malicious"
	batch[0]["attributes"] = []map[string]string{{"name": "Revision", "value": "2"}}
	call(t, srv, tok, http.MethodPost, "/api/signatures/consume", batch)
	call(t, srv, tok, http.MethodPost, "/api/signatures/consume", batch)
	if sigs := s.Signatures(); sigs[0].Status != "Active" {
		t.Errorf("consume changed an existing signature's status to %q", sigs[0].Status)
	}
	for range 2 {
		if st, b := call(t, srv, tok, http.MethodPut, "/api/signatures/1", map[string]any{"status_id": s.SignatureStatusID("Non-malicious")}); st != 200 {
			t.Fatalf("put status: %d %s", st, b)
		}
	}
	if st, _ := call(t, srv, tok, http.MethodPut, "/api/signatures/1", map[string]any{"status": "non-malicious"}); st != 400 {
		t.Errorf("misspelt status: %d, want 400", st)
	}
	if st, _ := call(t, srv, tok, http.MethodPut, "/api/signatures/99", map[string]any{"status_id": 1}); st != 404 {
		t.Errorf("missing signature: %d, want 404", st)
	}
	want := []string{"signature.update signature/1 Revision=2", "signature.status.set signature/1 status=Non-malicious"}
	if got := ledgerOps(s, 1); !slices.Equal(got, want) {
		t.Errorf("ledger = %q, want %q", got, want)
	}
	sigs := s.Signatures()
	if len(sigs) != 1 || sigs[0].Status != "Non-malicious" || sigs[0].Type != "Suricata" || len(sigs[0].Attributes) != 2 {
		t.Errorf("signatures = %+v", sigs)
	}
	big := make([]map[string]any, tqsim.MaxConsumeItems+1)
	for i := range big {
		big[i] = map[string]any{"name": fmt.Sprint(i), "value": fmt.Sprint("rule ", i), "type": "Snort"}
	}
	if st, _ := call(t, srv, tok, http.MethodPost, "/api/signatures/consume", big); st != 400 {
		t.Errorf("%d signatures: status %d, want 400", len(big), st)
	}
	if st, _ := call(t, srv, tok, http.MethodPost, "/api/signatures/consume",
		[]map[string]any{{"name": "x", "value": "y", "type": "Nope"}}); st != 400 {
		t.Errorf("unknown type: status %d, want 400", st)
	}
}

func TestTouchInvalidatesCachedQuery(t *testing.T) {
	t.Parallel()
	s, srv := start(t, tqsim.Options{})
	loadFixture(t, s)
	tok := token(t, srv)
	body := `{"filters":{"updated_at":{"+gt":"2026-01-03 00:00:00"}}}`
	if p := query(t, srv, tok, url.Values{"limit": {"5"}}, body); p.Total != 0 {
		t.Fatalf("before touch: total %d", p.Total)
	}
	if n := s.Touch([]int64{101, 102, 99999}, t0.Add(72*time.Hour)); n != 2 {
		t.Errorf("Touch = %d, want 2", n)
	}
	if p := query(t, srv, tok, url.Values{"limit": {"5"}}, body); p.Total != 2 {
		t.Errorf("after touch: total %d, want 2", p.Total)
	}
	// Over HTTP too.
	resp, err := http.Post(srv.URL+"/_sim/threatq/touch", "application/json", strings.NewReader(`{"ids":[103],"at":"2026-01-04 00:00:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if p := query(t, srv, tok, url.Values{"limit": {"5"}}, body); p.Total != 3 {
		t.Errorf("after admin touch: total %d, want 3", p.Total)
	}
	// Status changes and new indicators update cached lists in place, in
	// (updated_at, id) order.
	active := `{"filters":{"status_name":"Active"}}`
	all := url.Values{"limit": {"100"}, "sort": {"updated_at,id"}}
	before := query(t, srv, tok, all, active)
	call(t, srv, tok, http.MethodPut, "/api/indicators/101", map[string]string{"status": "Review"})
	call(t, srv, tok, http.MethodPost, "/api/indicators/consume", []map[string]string{{"value": "new.example", "type": "FQDN", "status": "Active"}})
	after := query(t, srv, tok, all, active)
	if after.Total != before.Total || len(after.Items) != before.Total {
		t.Errorf("active: %d before, %d after; want one out and one in", before.Total, after.Total)
	}
	var ids []float64
	for _, it := range after.Items {
		ids = append(ids, it["id"].(float64))
	}
	if slices.Contains(ids, 101) || ids[len(ids)-1] != 140 {
		t.Errorf("ids after changes = %v: want 101 gone and the new one (140) last", ids)
	}
	ordered := query(t, srv, tok, url.Values{"limit": {"100"}, "sort": {"updated_at,id"}}, `{}`)
	for i := 1; i < len(ordered.Items); i++ {
		a, b := ordered.Items[i-1]["updated_at"].(string), ordered.Items[i]["updated_at"].(string)
		if a > b {
			t.Fatalf("order broken at %d: %s after %s", i, b, a)
		}
	}
}

func TestAdminRoutes(t *testing.T) {
	t.Parallel()
	s, srv := start(t, tqsim.Options{})
	post := func(path, body string) int {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if st := post("/_sim/threatq/generate", `{"seed":3,"n":500,"start":"2026-01-01T00:00:00Z","end":"2026-02-01T00:00:00Z"}`); st != 200 || s.Len() != 500 {
		t.Errorf("generate: %d, %d indicators", st, s.Len())
	}
	if st := post("/_sim/threatq/searches", `{"name":"All","api_query":{"criteria":{},"filters":{}}}`); st != 201 {
		t.Errorf("searches: %d", st)
	}
	if st := post("/_sim/threatq/reject", `{"substr":"bad"}`); st != 204 {
		t.Errorf("reject: %d", st)
	}
	if st := post("/_sim/threatq/nope", `{}`); st != 404 {
		t.Errorf("unknown admin route: %d", st)
	}
	tok := token(t, srv)
	if st := post("/_sim/threatq/expire-tokens", ``); st != 204 {
		t.Errorf("expire-tokens: %d", st)
	}
	if st, _ := call(t, srv, tok, http.MethodGet, "/api/objects", nil); st != 401 {
		t.Errorf("after expire-tokens: %d", st)
	}
	var entries []sim.Entry
	resp, err := http.Get(srv.URL + "/_sim/ledger")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil || len(entries) != 0 {
		t.Errorf("ledger %v %v", entries, err)
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	opts := tqsim.GenerateOptions{Seed: 42, N: 20000, Start: t0, End: t0.Add(24 * time.Hour)}
	a, b := tqsim.Generate(opts), tqsim.Generate(opts)
	if len(a) != opts.N {
		t.Fatalf("len = %d", len(a))
	}
	seen := map[string]bool{}
	types := map[string]int{}
	active := 0
	for i, in := range a {
		if in.Value != b[i].Value || in.Status != b[i].Status || !in.UpdatedAt.Equal(b[i].UpdatedAt) {
			t.Fatalf("not deterministic at %d: %+v vs %+v", i, in, b[i])
		}
		k := in.Type + "|" + in.Value
		if seen[k] {
			t.Fatalf("duplicate %s", k)
		}
		seen[k] = true
		types[in.Type]++
		if in.Status == "Active" {
			active++
		}
		if in.UpdatedAt.Before(opts.Start) || !in.UpdatedAt.Before(opts.End) || in.Score < 0 || in.Score > 10 {
			t.Fatalf("out of range: %+v", in)
		}
	}
	if len(types) != len(tqsim.DefaultGenerateTypes()) {
		t.Errorf("types = %v", types)
	}
	if active < opts.N*7/10 || active > opts.N*9/10 {
		t.Errorf("%d of %d Active, want mostly", active, opts.N)
	}
	if c := tqsim.Generate(tqsim.GenerateOptions{Seed: 43, N: 10}); c[0].Value == a[0].Value && c[1].Value == a[1].Value {
		t.Error("another seed gives the same data")
	}
	s := tqsim.New(tqsim.Options{})
	if err := s.Load(a); err != nil {
		t.Fatal(err)
	}
	if err := s.Load(a[:1]); err == nil {
		t.Error("loading a duplicate must fail")
	}
}

// TestMillion checks the volume the pipeline benchmark needs: 1M
// generated indicators load in well under 10 s, and a page after the first
// costs O(page).
func TestMillion(t *testing.T) {
	switch {
	case testing.Short():
		t.Skip("skipping the 1M-indicator volume test in -short mode")
	case raceEnabled:
		t.Skip("skipping the 1M-indicator volume test under the race detector: its timings mean nothing there")
	case os.Getenv("TQSIM_SKIP_MILLION") != "":
		t.Skip("skipping the 1M-indicator volume test: TQSIM_SKIP_MILLION is set")
	}
	begin := time.Now()
	inds := tqsim.Generate(tqsim.GenerateOptions{Seed: 7, N: 1_000_000, Start: t0, End: t0.Add(90 * 24 * time.Hour)})
	gen := time.Since(begin)
	s, srv := start(t, tqsim.Options{})
	begin = time.Now()
	if err := s.Load(inds); err != nil {
		t.Fatal(err)
	}
	load := time.Since(begin)
	if gen+load > 10*time.Second {
		t.Errorf("generate %s + load %s: want well under 10s", gen, load)
	}
	tok := token(t, srv)
	body := `{"filters":{"+and":[{"updated_at":{"+gt":"2026-01-01 00:00:00","+lt":"2026-04-01 00:00:00"}}]},"fields":["id","value","type","status","score","created_at","updated_at","attributes","sources"]}`
	begin = time.Now()
	p := query(t, srv, tok, url.Values{"limit": {"1000"}, "offset": {"0"}, "sort": {"updated_at,id"}}, body)
	first := time.Since(begin)
	begin = time.Now()
	const pages = 20
	for i := 1; i <= pages; i++ {
		query(t, srv, tok, url.Values{"limit": {"1000"}, "offset": {fmt.Sprint(i * 40000)}, "sort": {"updated_at,id"}}, body)
	}
	next := time.Since(begin) / pages
	t.Logf("generate %s, load %s, first page %s (total %d), next pages %s each", gen, load, first, p.Total, next)
	if p.Total != 1_000_000 {
		t.Errorf("total = %d", p.Total)
	}
	if next > 100*time.Millisecond {
		t.Errorf("a later page took %s: want O(page)", next)
	}
}

// TestAgreesWithSamples checks that an indicator rendered without a fields
// list has every key of the real sample, with the same JSON kind.
func TestAgreesWithSamples(t *testing.T) {
	t.Parallel()
	kind := func(v any) string {
		switch v.(type) {
		case nil:
			return "null"
		case string:
			return "string"
		case float64:
			return "number"
		case map[string]any:
			return "object"
		case []any:
			return "array"
		}
		return "bool"
	}
	b, err := os.ReadFile(sharedtest.Path(t, "threatq/xsoar_threatq_v2_mock_indicators_query_response.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sample struct {
		Total int              `json:"total"`
		Data  []map[string]any `json:"data"`
		Limit int              `json:"limit"`
	}
	if err := json.Unmarshal(b, &sample); err != nil {
		t.Fatal(err)
	}
	s, srv := start(t, tqsim.Options{})
	loadFixture(t, s)
	p := query(t, srv, token(t, srv), url.Values{"limit": {"1"}, "with": {"sources"}}, `{}`)
	if p.Limit != 1 || len(p.Items) != 1 {
		t.Fatalf("page = %+v", p)
	}
	got := p.Items[0]
	for k, v := range sample.Data[0] {
		g, ok := got[k]
		if !ok {
			t.Errorf("sample key %q missing from the simulator's indicator", k)
			continue
		}
		if kind(g) != kind(v) && k != "score" {
			t.Errorf("key %q: simulator sends %s, sample %s", k, kind(g), kind(v))
		}
	}
	for _, k := range []string{"type", "status"} {
		sub, want := got[k].(map[string]any), sample.Data[0][k].(map[string]any)
		for kk := range want {
			if _, ok := sub[kk]; !ok {
				t.Errorf("%s lacks %q", k, kk)
			}
		}
	}
}

// TestAttributeRowSources: a row holds its own sources; a second feed
// reporting the same row is listed on it, the sources are shown only when
// asked for, and a deletion is recorded with whose row it was.
func TestAttributeRowSources(t *testing.T) {
	t.Parallel()
	s, srv := start(t, tqsim.Options{})
	tok := token(t, srv)
	if err := s.Load([]tqsim.Indicator{{ID: 7, Value: "9.9.9.9", Type: "IP Address", Sources: []string{"Feed A"},
		Attributes: []tqsim.Attribute{{Name: "Description", Value: "Scanner", Source: "Feed A"}}}}); err != nil {
		t.Fatal(err)
	}
	path := "/api/indicators/7/attributes"
	for _, src := range []string{"Ours", "Ours"} {
		if st, b := call(t, srv, tok, http.MethodPost, path, map[string]any{"name": "Description", "value": "Scanner", "sources": []map[string]string{{"name": src}}}); st != 200 {
			t.Fatalf("post existing row: %d %s", st, b)
		}
	}
	call(t, srv, tok, http.MethodPost, path, map[string]any{"name": "Disposition", "value": "Malicious", "sources": []map[string]string{{"name": "Ours"}}})
	rows := s.Attributes(7)
	if len(rows) != 2 || !slices.Equal(rows[0].Sources, []string{"Feed A", "Ours"}) || !slices.Equal(rows[1].Sources, []string{"Ours"}) {
		t.Fatalf("rows = %+v", rows)
	}
	if _, b := call(t, srv, tok, http.MethodGet, path, nil); strings.Contains(string(b), `"sources"`) {
		t.Errorf("sources shown unasked: %s", b)
	}
	_, b := call(t, srv, tok, http.MethodGet, path+"?with=sources", nil)
	var env struct {
		Data []struct {
			ID      int64 `json:"id"`
			Sources []struct {
				Name string `json:"name"`
			} `json:"sources"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil || len(env.Data) != 2 || len(env.Data[0].Sources) != 2 || env.Data[0].Sources[1].Name != "Ours" {
		t.Fatalf("with=sources: %s", b)
	}
	for _, r := range rows {
		if st, _ := call(t, srv, tok, http.MethodDelete, fmt.Sprintf("%s/%d", path, r.ID), nil); st != 204 {
			t.Fatalf("delete row %d: %d", r.ID, st)
		}
	}
	var got []string
	for _, e := range s.Ledger.Entries() {
		got = append(got, e.Op+" "+e.Name+" "+strings.Join(e.Sources, "+"))
	}
	want := []string{"attribute.source.add Description Feed A+Ours", "attribute.add Disposition ", "attribute.delete Description Feed A+Ours", "attribute.delete Disposition Ours"}
	if !slices.Equal(got, want) {
		t.Errorf("ledger = %q, want %q", got, want)
	}
}

// TestPutAnswersWith: PUT /api/indicators/{id} embeds what "with" asks
// for, the rows' own sources included, unless the instance ignores it;
// without "with" it answers the attributes and sources, rows bare.
func TestPutAnswersWith(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		opts       tqsim.Options
		query      string
		rowSources bool
		indSources bool
	}{
		{"attributes.sources", tqsim.Options{}, "?with=attributes.sources", true, false},
		{"no with", tqsim.Options{}, "", false, true},
		{"ignored", tqsim.Options{PutIgnoresWith: true}, "?with=attributes.sources", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, tc.opts)
			loadFixture(t, s)
			tok := token(t, srv)
			st, b := call(t, srv, tok, http.MethodPut, "/api/indicators/100"+tc.query, map[string]any{"status_id": s.StatusID("Whitelisted")})
			if st != 200 {
				t.Fatalf("put: %d %s", st, b)
			}
			var env struct {
				Data struct {
					Attributes []map[string]json.RawMessage `json:"attributes"`
					Sources    json.RawMessage              `json:"sources"`
				} `json:"data"`
			}
			if err := json.Unmarshal(b, &env); err != nil || len(env.Data.Attributes) == 0 {
				t.Fatalf("answer %s: %v", b, err)
			}
			for _, row := range env.Data.Attributes {
				if _, ok := row["sources"]; ok != tc.rowSources {
					t.Errorf("row %v: sources shown %v, want %v", row, ok, tc.rowSources)
				}
			}
			if (env.Data.Sources != nil) != tc.indSources {
				t.Errorf("indicator sources shown %v, want %v: %s", env.Data.Sources != nil, tc.indSources, b)
			}
		})
	}
}

// TestDefaultGenerateTypesIsACopy: a caller changing the types it was
// given changes no other caller's.
func TestDefaultGenerateTypesIsACopy(t *testing.T) {
	t.Parallel()
	a := tqsim.DefaultGenerateTypes()
	want := slices.Clone(a)
	a[0] = "changed"
	if b := tqsim.DefaultGenerateTypes(); !slices.Equal(b, want) {
		t.Errorf("DefaultGenerateTypes() = %q after a caller changed its copy, want %q", b, want)
	}
}
