package threatq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/pkg/threatq"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestTokenGrants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  func(url string) threatq.Config
	}{
		{"password", passwordConfig},
		{"client credentials", clientConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tqsim.New(tqsim.Options{})
			srv := httptest.NewServer(s.Handler())
			t.Cleanup(srv.Close)
			c, err := threatq.New(tt.cfg(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if _, err := c.IndicatorTypes(context.Background()); err != nil {
						t.Error(err)
					}
					if _, err := c.IndicatorStatusID(context.Background(), "Active"); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if n := s.TokensIssued(); n != 1 {
				t.Errorf("tokens issued = %d, want 1 (cached, single-flight)", n)
			}
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	// A 2 s token is used for half its life, then replaced before the
	// server would refuse it.
	// The server and the client read one clock, moved by hand.
	clock := testkit.NewClock(time.Now())
	s, c := simClient(t, tqsim.Options{TokenTTL: 2 * time.Second, Now: clock.Now}, func(cfg *threatq.Config) { cfg.Now = clock.Now })
	ctx := context.Background()
	if _, err := c.SignatureStatuses(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(1100 * time.Millisecond)
	if _, err := c.SignatureTypes(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.TokensIssued(); n != 2 {
		t.Errorf("tokens issued = %d, want 2", n)
	}
}

func TestReauthOnce(t *testing.T) {
	t.Parallel()
	t.Run("expired token is replaced once", func(t *testing.T) {
		t.Parallel()
		s, c := simClient(t, tqsim.Options{}, nil)
		ctx := context.Background()
		if _, err := c.IndicatorTypes(ctx); err != nil {
			t.Fatal(err)
		}
		s.ExpireTokens()
		if _, err := c.SignatureTypes(ctx); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
		if n := s.TokensIssued(); n != 2 {
			t.Errorf("tokens issued = %d, want 2", n)
		}
	})
	t.Run("a second 401 is returned", func(t *testing.T) {
		t.Parallel()
		var tokens, calls atomic.Int32
		mux := http.NewServeMux()
		mux.HandleFunc("POST /api/token", func(w http.ResponseWriter, _ *http.Request) {
			tokens.Add(1)
			_, _ = w.Write([]byte(`{"access_token":"t","expires_in":3600}`))
		})
		mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
			calls.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"Unauthenticated."}`))
		})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		c, err := threatq.New(passwordConfig(srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		err = c.SetIndicatorStatus(context.Background(), 1, 2)
		var se *httpx.StatusError
		if !errors.As(err, &se) || se.StatusCode != 401 || httpx.IsTransient(err) {
			t.Fatalf("err = %v, want a permanent 401", err)
		}
		if tokens.Load() != 2 || calls.Load() != 2 {
			t.Errorf("tokens %d, calls %d; want 2 and 2", tokens.Load(), calls.Load())
		}
	})
}

func TestTokenRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts tqsim.Options
		cfg  func(*threatq.Config)
	}{
		{"wrong password", tqsim.Options{}, func(c *threatq.Config) { c.Password = "hunter2-wrong" }},
		{"wrong client secret", tqsim.Options{}, func(c *threatq.Config) {
			*c = clientConfig(c.URL)
			c.ClientSecret = "hunter2-wrong"
		}},
		{"redirect", tqsim.Options{TokenRedirect: "https://elsewhere.example/hunter2"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c := simClient(t, tt.opts, tt.cfg)
			_, err := c.IndicatorTypes(context.Background())
			if !errors.Is(err, threatq.ErrCredentials) || httpx.IsTransient(err) {
				t.Fatalf("err = %v, want permanent ErrCredentials", err)
			}
			if msg := err.Error(); strings.Contains(msg, "hunter2") || strings.Contains(msg, tqsim.DefaultUser.Password) ||
				strings.Contains(msg, tqsim.DefaultUser.ClientID) || strings.Contains(msg, "elsewhere") {
				t.Errorf("error shows a secret or the redirect target: %q", msg)
			}
			// Refused credentials are remembered: no token request storm.
			_, _ = c.IndicatorTypes(context.Background())
			if tt.opts.TokenRedirect == "" && s.TokensIssued() != 0 {
				t.Errorf("tokens issued = %d", s.TokensIssued())
			}
			if n := s.Stats.Count("POST /api/token"); n != 1 {
				t.Errorf("token requests = %d, want 1", n)
			}
		})
	}
}

// loadN loads n indicators updated a minute apart from t0.
func loadN(t *testing.T, s *tqsim.Server, n int) {
	t.Helper()
	inds := make([]tqsim.Indicator, n)
	for i := range inds {
		inds[i] = tqsim.Indicator{
			Value: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Type: "IP Address",
			Status: map[bool]string{true: "Active", false: "Review"}[i%4 != 0], Score: float64(i % 11),
			UpdatedAt: t0.Add(time.Duration(i) * time.Minute), CreatedAt: t0.Add(-time.Hour),
			Attributes: []tqsim.Attribute{{Name: "Confidence", Value: "High"}}, Sources: []string{"Feed A"},
		}
	}
	if err := s.Load(inds); err != nil {
		t.Fatal(err)
	}
}

func loadSameSecond(t *testing.T, s *tqsim.Server, n int) {
	t.Helper()
	inds := make([]tqsim.Indicator, n)
	for i := range inds {
		inds[i] = tqsim.Indicator{Value: fmt.Sprintf("192.0.2.%d", i), Type: "IP Address", UpdatedAt: t0}
		if i >= 256 {
			inds[i].Value = fmt.Sprintf("198.51.100.%d", i-256)
		}
	}
	if err := s.Load(inds); err != nil {
		t.Fatal(err)
	}
}

func TestQueryPaging(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      tqsim.Options
		n, size   int
		wantCalls int64
	}{
		{"three pages, last short", tqsim.Options{}, 2500, 1000, 3},
		// Each keyed restart re-reads the last second, so 2000 take a
		// third, short page.
		{"exact pages", tqsim.Options{}, 2000, 1000, 3},
		{"empty array pages", tqsim.Options{EmptyPagesAsArray: true}, 250, 100, 3},
		{"one second, larger than a page", tqsim.Options{}, -250, 100, 4},
		{"nothing", tqsim.Options{}, 0, 1000, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c := simClient(t, tt.opts, func(c *threatq.Config) { c.PageSize = tt.size })
			if tt.n < 0 { // All in the same second.
				tt.n = -tt.n
				loadSameSecond(t, s, tt.n)
			} else {
				loadN(t, s, tt.n)
			}
			var got []threatq.Indicator
			var pages int
			err := c.Query(context.Background(), threatq.Query{}, func(p []threatq.Indicator) error {
				pages++
				if len(p) > tt.size {
					t.Errorf("page of %d, want at most %d", len(p), tt.size)
				}
				got = append(got, p...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.n {
				t.Fatalf("got %d indicators, want %d", len(got), tt.n)
			}
			if n := s.Stats.Count("POST /api/indicators/query"); n != tt.wantCalls {
				t.Errorf("query calls = %d, want %d", n, tt.wantCalls)
			}
			for i := 1; i < len(got); i++ {
				if got[i].UpdatedAt.Before(got[i-1].UpdatedAt) {
					t.Fatalf("not in updated_at order at %d", i)
				}
			}
			ids := map[int64]bool{}
			for _, in := range got {
				if ids[in.ID] {
					t.Fatalf("indicator %d delivered twice", in.ID)
				}
				ids[in.ID] = true
			}
			if tt.n > 0 && tt.name != "one second, larger than a page" {
				in := got[0]
				if in.Type != "IP Address" || in.Status != "Review" || in.TypeID == 0 || len(in.Attributes) != 1 ||
					in.Attributes[0].ID == 0 || len(in.Sources) != 1 || !in.UpdatedAt.Equal(t0) {
					t.Errorf("first indicator = %+v", in)
				}
			}
		})
	}
	t.Run("indicators changed while paging are not skipped", func(t *testing.T) {
		t.Parallel()
		// The fetcher reads while the writer sets statuses: changed
		// indicators leave the window; none of the others may be lost.
		s, c := simClient(t, tqsim.Options{}, func(c *threatq.Config) { c.PageSize = 100 })
		loadN(t, s, 1000)
		before := t0.Add(2000 * time.Minute)
		var got []threatq.Indicator
		pages := 0
		err := c.Query(context.Background(), threatq.Query{UpdatedBefore: before}, func(p []threatq.Indicator) error {
			pages++
			got = append(got, p...)
			// Change 20 indicators of pages not read yet.
			var ids []int64
			for i := range 20 {
				ids = append(ids, int64(pages*100+i*3+1))
			}
			s.Touch(ids, before.Add(time.Hour))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[int64]bool{}
		for _, in := range got {
			ids[in.ID] = true
		}
		for id := int64(1); id <= 1000; id++ {
			in, _ := s.Indicator(id)
			if in.UpdatedAt.Before(before) && !ids[id] {
				t.Errorf("indicator %d, unchanged, was skipped", id)
			}
		}
	})
	t.Run("page error stops the stream", func(t *testing.T) {
		t.Parallel()
		s, c := simClient(t, tqsim.Options{}, func(c *threatq.Config) { c.PageSize = 10 })
		loadN(t, s, 100)
		stop := errors.New("stop")
		err := c.Query(context.Background(), threatq.Query{}, func([]threatq.Indicator) error { return stop })
		if !errors.Is(err, stop) || s.Stats.Count("POST /api/indicators/query") != 1 {
			t.Errorf("err = %v after %d calls", err, s.Stats.Count("POST /api/indicators/query"))
		}
	})
}

func TestQueryServerCapsLimit(t *testing.T) {
	t.Parallel()
	// A server that answers at most 2 per page whatever the limit: the
	// stream must still reach the end, guided by total.
	const n = 7
	c := fakeClient(t, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Filters map[string][]map[string]map[string]string `json:"filters"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		from := -1 // keyed restarts ask from a second on
		for _, c := range body.Filters["+and"] {
			if gt, ok := c["updated_at"]["+gt"]; ok {
				tm, _ := threatq.ParseTime(gt)
				from = int(tm.Sub(t0) / time.Second)
			}
		}
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		var rest []string
		for i := range n {
			if i > from {
				rest = append(rest, fmt.Sprintf(`{"id":%d,"value":"v%d","type":"FQDN","status":"Active","updated_at":%q}`,
					i+1, i, threatq.FormatTime(t0.Add(time.Duration(i)*time.Second))))
			}
		}
		page := rest[min(offset, len(rest)):min(offset+2, len(rest))]
		fmt.Fprintf(w, `{"total":%d,"data":[%s]}`, len(rest), strings.Join(page, ","))
	})
	var got []int64
	if err := c.Query(context.Background(), threatq.Query{}, func(p []threatq.Indicator) error {
		for _, in := range p {
			got = append(got, in.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Errorf("got ids %v, want all %d", got, n)
	}
}

func TestSavedSearchWindow(t *testing.T) {
	t.Parallel()
	s, c := simClient(t, tqsim.Options{}, func(c *threatq.Config) { c.PageSize = 7 })
	loadN(t, s, 100)
	ctx := context.Background()
	// json as a string (odd id) and as an object (even id); the first has
	// an updated_at clause of its own that the window replaces.
	if _, err := s.AddSavedSearch("Active IPs", json.RawMessage(
		`{"criteria":[],"filters":{"+and":[{"status_name":"Active"},{"updated_at":{"+gt":"2030-01-01 00:00:00"}}]}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSavedSearch("Reviews", json.RawMessage(`{"criteria":{"+and":[{"status_name":"Review"}]},"filters":{}}`)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		search        string
		after, before time.Time
		want          int
	}{
		{"Active IPs", time.Time{}, time.Time{}, 0}, // its own clause: nothing after 2030
		{"Active IPs", t0.Add(-time.Second), t0.Add(100 * time.Minute), 75},
		{"Active IPs", t0.Add(10 * time.Minute), t0.Add(20 * time.Minute), 7},                                        // 11..19 minus 12, 16
		{"Reviews", t0.Add(10*time.Minute + 500*time.Millisecond), t0.Add(20*time.Minute + 500*time.Millisecond), 3}, // 12, 16, 20
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s..%s", tt.search, tt.after.Format(time.TimeOnly), tt.before.Format(time.TimeOnly)), func(t *testing.T) {
			t.Parallel()
			search, err := c.SavedSearch(ctx, tt.search)
			if err != nil {
				t.Fatal(err)
			}
			q := search.Query()
			q.UpdatedAfter, q.UpdatedBefore = tt.after, tt.before
			n := 0
			if err := c.Query(ctx, q, func(p []threatq.Indicator) error { n += len(p); return nil }); err != nil {
				t.Fatal(err)
			}
			if n != tt.want {
				t.Errorf("got %d indicators, want %d", n, tt.want)
			}
		})
	}
	t.Run("not found lists the names", func(t *testing.T) {
		t.Parallel()
		_, err := c.SavedSearch(ctx, "active ips")
		if !errors.Is(err, threatq.ErrNotFound) || !strings.Contains(err.Error(), `"Active IPs", "Reviews"`) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("active above", func(t *testing.T) {
		t.Parallel()
		n := 0
		err := c.Query(ctx, threatq.ActiveAbove(7.5), func(p []threatq.Indicator) error {
			for _, in := range p {
				if in.Status != "Active" || in.Score < 7 {
					t.Errorf("indicator %+v", in)
				}
			}
			n += len(p)
			return nil
		})
		// Scores 7..10 that are Active: the server filter is a superset
		// (>= 7) and callers re-check the exact threshold.
		if err != nil || n == 0 {
			t.Errorf("n = %d, err = %v", n, err)
		}
	})
}

func TestQueryBody(t *testing.T) {
	t.Parallel()
	after, before := t0, t0.Add(time.Hour+time.Millisecond)
	tests := []struct {
		name string
		q    threatq.Query
		want string
	}{
		{"empty", threatq.Query{Fields: []string{"id"}}, `{"criteria":{},"filters":{},"fields":["id"]}`},
		{"window into filters", threatq.Query{Filters: json.RawMessage(`{"+and":[{"type_name":"FQDN"},{"updated_at":{"+gt":"2020-01-01 00:00:00"}}]}`),
			UpdatedAfter: after, UpdatedBefore: before, Fields: []string{"id"}},
			`{"criteria":{},"filters":{"+and":[{"type_name":"FQDN"},{"updated_at":{"+gt":"2026-01-01 00:00:00","+lt":"2026-01-01 01:00:01"}}]},"fields":["id"]}`},
		{"window into criteria when filters empty", threatq.Query{Criteria: json.RawMessage(`{"type_name":"MD5","updated_at":{"+lt":"NOW"}}`),
			Filters: json.RawMessage(`[]`), UpdatedAfter: after, Fields: []string{"id"}},
			`{"criteria":{"+and":[{"updated_at":{"+gt":"2026-01-01 00:00:00"}}],"type_name":"MD5"},"filters":{},"fields":["id"]}`},
		{"clauses", threatq.ActiveAbove(7).And(map[string]any{"type_name": "URL"}),
			`{"criteria":{},"filters":{"+and":[{"status_name":"Active"},{"score":{"+gt":6}},{"type_name":"URL"}]},"fields":["id","value","type","type_id","status","status_id","score","class","created_at","updated_at","touched_at","attributes","sources"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := tt.q.Body()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("Body() =\n%s\nwant\n%s", b, tt.want)
			}
		})
	}
	if _, err := (threatq.Query{Filters: json.RawMessage(`"x"`)}).Body(); err == nil {
		t.Error("a string filter must be refused")
	}
}

func TestDecodeQuirks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want []threatq.Indicator
	}{
		{"data as empty object", `{"total":0,"data":{}}`, nil},
		{"data null", `{"data":null}`, nil},
		{"score shapes and string ids", `{"total":4,"data":[
			{"id":"7","value":"a","type":{"id":15,"name":"IP Address"},"status":"Active","score":"5","updated_at":"2026-01-01 00:00:01"},
			{"id":8,"value":"b","type":"FQDN","status":{"id":"3","name":"Review"},"score":{"generated_score":2,"manual_score":9}},
			{"id":9,"value":"c","type":"FQDN","status":"Active","score":{"generated_score":"4","manual_score":null}},
			{"id":10,"value":"d","type":"FQDN","status":"Active","score":null,"attributes":{},"sources":[{"name":"S"}]}]}`,
			[]threatq.Indicator{
				{ID: 7, Value: "a", Type: "IP Address", TypeID: 15, Status: "Active", Score: 5, UpdatedAt: t0.Add(time.Second)},
				{ID: 8, Value: "b", Type: "FQDN", Status: "Review", StatusID: 3, Score: 9},
				{ID: 9, Value: "c", Type: "FQDN", Status: "Active", Score: 4},
				{ID: 10, Value: "d", Type: "FQDN", Status: "Active", Sources: []string{"S"}},
			}},
		{"attribute values as numbers", `{"data":[{"id":1,"value":"x","type":"MD5","status":"Active","attributes":[{"id":"3","name":"Port","value":9000}]}]}`,
			[]threatq.Indicator{{ID: 1, Value: "x", Type: "MD5", Status: "Active", Attributes: []threatq.Attribute{{ID: 3, Name: "Port", Value: "9000"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := fakeClient(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(tt.body)) })
			var got []threatq.Indicator
			if err := c.Query(context.Background(), threatq.Query{}, func(p []threatq.Indicator) error { got = append(got, p...); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d indicators, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.ID != w.ID || g.Value != w.Value || g.Type != w.Type || g.Status != w.Status || g.Score != w.Score ||
					(w.TypeID != 0 && g.TypeID != w.TypeID) || (w.StatusID != 0 && g.StatusID != w.StatusID) ||
					!g.UpdatedAt.Equal(w.UpdatedAt) || fmt.Sprint(g.Attributes) != fmt.Sprint(w.Attributes) || fmt.Sprint(g.Sources) != fmt.Sprint(w.Sources) {
					t.Errorf("indicator %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestMalformedAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body string }{
		{"not json", `<html>oops</html>`},
		{"truncated", `{"total":3,"data":[{"id":1,"value":"a"`},
		{"data a string", `{"data":"nope"}`},
		{"bad timestamp", `{"data":[{"id":1,"updated_at":"yesterday"}]}`},
		{"bad score", `{"data":[{"id":1,"score":"high"}]}`},
		{"bad id", `{"data":[{"id":"x1"}]}`},
		{"attribute value object", `{"data":[{"id":1,"attributes":[{"name":"a","value":{"x":1}}]}]}`},
		{"empty body", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := fakeClient(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(tt.body)) })
			err := c.Query(context.Background(), threatq.Query{}, func([]threatq.Indicator) error { return nil })
			var de *httpx.DecodeError
			if !errors.As(err, &de) || httpx.IsTransient(err) {
				t.Fatalf("err = %v, want a permanent DecodeError", err)
			}
			if !strings.Contains(err.Error(), "query indicators from the start") {
				t.Errorf("err = %q lacks context", err)
			}
			_, _, _ = threatq.DecodeIndicators([]byte(tt.body)) // never panics
		})
	}
}

func TestErrorShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		body       string
		validation bool
		transient  bool
		detail     string
	}{
		{"validation", 400, `{"data":{"errors":{"value":["The value 'secret-value-1' is invalid."],"name":["The name has already been taken."]}}}`,
			true, false, `name: The name has already been taken.; value: The value "…" is invalid.`},
		{"list form", 400, `{"errors":["First Error",["Second error - part 1","Second error - part 2"]]}`,
			true, false, "First Error; Second error - part 1; Second error - part 2"},
		{"2xx with errors", 200, `{"errors":["Indicator could not be saved"]}`, true, false, "Indicator could not be saved"},
		{"laravel message", 403, `{"name":"Forbidden","message":"You are not allowed to do this."}`, false, false, "You are not allowed to do this."},
		{"server error", 502, `<html>bad gateway</html>`, false, true, ""},
		{"not found", 404, `{"errors":["Object does not exist"]}`, false, false, "Object does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := fakeClient(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			_, err := c.ConsumeIndicators(context.Background(), []threatq.IndicatorWrite{{Value: "secret-value-1", Type: "FQDN"}})
			var ve *threatq.ValidationError
			if errors.As(err, &ve) != tt.validation {
				t.Errorf("err = %v; validation error: %v, want %v", err, errors.As(err, &ve), tt.validation)
			}
			if httpx.IsTransient(err) != tt.transient {
				t.Errorf("transient = %v, want %v", httpx.IsTransient(err), tt.transient)
			}
			var se *httpx.StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.status || se.Detail != tt.detail {
				t.Errorf("status error = %+v, want status %d detail %q", se, tt.status, tt.detail)
			}
			if strings.Contains(err.Error(), "secret-value-1") || strings.Contains(err.Error(), "<html>") {
				t.Errorf("error echoes request data or the raw body: %q", err)
			}
		})
	}
}

func TestTransientRetried(t *testing.T) {
	t.Parallel()
	s, c := simClient(t, tqsim.Options{Seed: 5}, func(c *threatq.Config) { c.PageSize = 10 })
	loadN(t, s, 100)
	ctx := context.Background()
	// Reads ride out an unhealthy server…
	s.Faults.Set(sim.Faults{ErrorRate: 0.3, PathPrefix: "/api/indicators/query"})
	n := 0
	if err := c.Query(ctx, threatq.Query{}, func(p []threatq.Indicator) error { n += len(p); return nil }); err != nil || n != 100 {
		t.Fatalf("n = %d, err = %v", n, err)
	}
	// …and give up with a transient error on a dead one.
	s.Faults.Set(sim.Faults{ErrorRate: 1, PathPrefix: "/api/indicators/query"})
	err := c.Query(ctx, threatq.Query{}, func([]threatq.Indicator) error { return nil })
	var se *httpx.StatusError
	if !errors.As(err, &se) || se.StatusCode != 503 || !httpx.IsTransient(err) {
		t.Errorf("err = %v, want a transient 503", err)
	}
	// Writes are not retried here: the bus redelivers them.
	s.Faults.Set(sim.Faults{ErrorRate: 1, PathPrefix: "/api/indicators/consume"})
	before := s.Faults.Counts().Errors
	_, err = c.ConsumeIndicators(ctx, []threatq.IndicatorWrite{{Value: "x.example", Type: "FQDN"}})
	if calls := s.Faults.Counts().Errors - before; !httpx.IsTransient(err) || calls != 1 {
		t.Errorf("consume err = %v after %d calls, want one transient failure", err, calls)
	}
}
