package misp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
)

const (
	testKey  = "0123456789abcdefghijABCDEFGHIJ0123456789"
	wrongKey = "9876543210abcdefghijABCDEFGHIJ0123456789"
)

func newSim(t *testing.T, opts mispsim.Options) (*mispsim.Server, *httptest.Server) {
	t.Helper()
	opts.Keys = append(opts.Keys, testKey)
	if opts.DescribeTypes == nil {
		b, err := os.ReadFile(sharedtest.Path(t, "misp/describeTypes.json"))
		if err != nil {
			t.Fatal(err)
		}
		opts.DescribeTypes = b
	}
	s := mispsim.New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

func newClient(t *testing.T, url, key string) *misp.Client {
	t.Helper()
	c, err := misp.New(misp.Config{URL: url, Key: config.Secret(key), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func dayEvent(srvURL string) misp.Event {
	return misp.Event{
		UUID: misp.EventUUID(srvURL, "2025-01-15", 1), Info: "ThreatQ export 2025-01-15 #1", Date: "2025-01-15",
		Distribution: misp.DistributionOrganisation, ThreatLevelID: misp.ThreatLevelUndefined,
		Analysis: misp.AnalysisCompleted, Tag: []misp.Tag{{Name: "tlp:amber"}, {Name: "source:threatq-export"}},
	}
}

func attr(t *testing.T, eventUUID, tqType, value string) misp.Attribute {
	t.Helper()
	m, ok := misp.MapType(tqType, value)
	if !ok {
		t.Fatalf("MapType(%q) not mapped", tqType)
	}
	v, err := misp.Normalize(m.Type, value)
	if err != nil {
		// Invalid values are sent raw in tests that want MISP to refuse them.
		v = value
	}
	return misp.Attribute{
		UUID: misp.AttributeUUID(eventUUID, m.Type, v), Type: m.Type, Category: m.Category, Value: v,
		ToIDs: m.ToIDs, Distribution: misp.DistributionInherit, Comment: "ThreatQ score: 8.5",
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  misp.Config
		want []string
	}{
		{"ok", misp.Config{URL: "https://misp.example.org/", Key: testKey}, nil},
		{"all wrong", misp.Config{URL: "ftp://", Key: "Bearer short", Timeout: -1},
			[]string{"scheme", "no host", "40 letters", "negative"}},
		{"missing", misp.Config{}, []string{"URL is not set", "KEY is not set"}},
		{"credentials in url", misp.Config{URL: "https://u:p@misp.example.org", Key: testKey}, []string{"credentials"}},
		{"plain http to another host", misp.Config{URL: "http://misp.example.org", Key: testKey}, []string{"URL: plain http", "ALLOW_HTTP=true"}},
		{"plain http allowed", misp.Config{URL: "http://sandbox:18082", Key: testKey, AllowHTTP: true}, nil},
		{"disable ssl with a CA file", misp.Config{URL: "https://misp.example.org", Key: testKey, DisableSSL: true, CAFile: "/ca.pem"}, []string{"DISABLE_SSL and CA_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate passed, want errors")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "Bearer short") {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
}

func TestAddEventIdempotent(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusFound, http.StatusNotFound} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			s, srv := newSim(t, mispsim.Options{DuplicateEventStatus: status})
			c := newClient(t, srv.URL, testKey)
			ctx := context.Background()
			in := dayEvent(srv.URL)
			if ok, err := c.EventExists(ctx, in.UUID); err != nil || ok {
				t.Fatalf("EventExists before = %v, %v", ok, err)
			}
			first, err := c.AddEvent(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if first.UUID != in.UUID || first.ID == "" || first.Published || first.Date != "2025-01-15" || len(first.Tag) != 2 {
				t.Errorf("created event = %+v", first)
			}
			again, err := c.AddEvent(ctx, in)
			if err != nil {
				t.Fatalf("AddEvent of an existing UUID: %v", err)
			}
			if again.ID != first.ID {
				t.Errorf("existing event id = %s, want %s", again.ID, first.ID)
			}
			if ok, err := c.EventExists(ctx, in.UUID); err != nil || !ok {
				t.Errorf("EventExists after = %v, %v", ok, err)
			}
			if ok, err := c.EventExists(ctx, string(first.ID)); err != nil || !ok {
				t.Errorf("EventExists by id = %v, %v", ok, err)
			}
			if n := len(s.Events()); n != 1 {
				t.Errorf("%d events, want 1", n)
			}
			if n := countOps(s.Ledger, "event.create"); n != 1 {
				t.Errorf("%d event.create entries, want 1", n)
			}
		})
	}
}

func countOps(l *sim.Ledger, op string) int {
	n := 0
	for _, e := range l.Entries() {
		if e.Op == op {
			n++
		}
	}
	return n
}

func TestAddEventErrors(t *testing.T) {
	t.Parallel()
	s, srv := newSim(t, mispsim.Options{})
	c := newClient(t, srv.URL, testKey)
	ctx := context.Background()

	_, err := c.AddEvent(ctx, misp.Event{Info: "x", ThreatLevelID: "9"})
	var me *misp.Error
	if !errors.Is(err, misp.ErrValidation) || !errors.As(err, &me) || len(me.Fields["Event.threat_level_id"]) == 0 {
		t.Errorf("bad threat level: %v (%+v)", err, me)
	}
	if httpx.IsTransient(err) {
		t.Error("a validation error must be permanent")
	}

	ev := dayEvent(srv.URL)
	if _, err := c.AddEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	s.DeleteEvent(ev.UUID)
	if _, err := c.AddEvent(ctx, ev); !errors.Is(err, misp.ErrEventBlocked) {
		t.Errorf("blocklisted UUID: %v, want ErrEventBlocked", err)
	}
}

func TestWrongKey(t *testing.T) {
	t.Parallel()
	_, srv := newSim(t, mispsim.Options{})
	c := newClient(t, srv.URL, wrongKey)
	ctx := context.Background()
	ev := dayEvent(srv.URL)
	calls := map[string]func() error{
		"add event":    func() error { _, err := c.AddEvent(ctx, ev); return err },
		"event exists": func() error { _, err := c.EventExists(ctx, ev.UUID); return err },
		"search":       func() error { _, err := c.SearchEvents(ctx, misp.SearchQuery{UUID: ev.UUID}); return err },
		"add attributes": func() error {
			_, err := c.AddAttributes(ctx, ev.UUID, []misp.Attribute{attr(t, ev.UUID, "MD5", strings.Repeat("a", 32))})
			return err
		},
		"publish": func() error { return c.PublishEvent(ctx, ev.UUID) },
		"version": func() error { _, err := c.ServerVersion(ctx); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := call()
			if !errors.Is(err, misp.ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
			if errors.Is(err, misp.ErrValidation) || httpx.IsTransient(err) {
				t.Errorf("a refused key must be neither validation nor transient: %v", err)
			}
			if strings.Contains(err.Error(), wrongKey) {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
}

func TestAddAttributesShapes(t *testing.T) {
	t.Parallel()
	s, srv := newSim(t, mispsim.Options{})
	c := newClient(t, srv.URL, testKey)
	ctx := context.Background()
	ev, err := c.AddEvent(ctx, dayEvent(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	u := ev.UUID
	sha := strings.Repeat("ab", 32)

	// Several saved: an array.
	batch := []misp.Attribute{
		attr(t, u, "IP Address", "198.51.100.7"),
		attr(t, u, "FQDN", "Evil.Example.COM."),
		attr(t, u, "SHA-256", sha),
	}
	res, err := c.AddAttributes(ctx, u, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Saved) != 3 || len(res.Existing)+len(res.Rejected) != 0 || len(res.Attributes) != 3 {
		t.Fatalf("first batch: %+v", res)
	}

	// Retry of the same batch (a timeout earlier): every one already there.
	res, err = c.AddAttributes(ctx, u, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Existing) != 3 || len(res.Saved)+len(res.Rejected) != 0 {
		t.Fatalf("retried batch: %+v", res)
	}

	// One new, one existing, one invalid: 200 with a single object and errors.
	mixed := []misp.Attribute{
		batch[0],
		attr(t, u, "MD5", "d41d8cd98f00b204e9800998ecf8427e"),
		{Type: "sha256", Category: "Payload delivery", Value: "not-a-hash", ToIDs: true, UUID: misp.AttributeUUID(u, "sha256", "not-a-hash")},
	}
	res, err = c.AddAttributes(ctx, u, mixed)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Saved) != "[1]" || fmt.Sprint(res.Existing) != "[0]" || len(res.Rejected) != 1 ||
		res.Rejected[0].Index != 2 || !strings.Contains(res.Rejected[0].Reason(), "64 hexadecimal") {
		t.Fatalf("mixed batch: %+v", res)
	}
	if len(res.Attributes) != 1 || res.Attributes[0].Value != "d41d8cd98f00b204e9800998ecf8427e" {
		t.Errorf("saved attribute = %+v", res.Attributes)
	}
	if got := res.Done(); fmt.Sprint(got) != "[0 1]" {
		t.Errorf("Done = %v", got)
	}

	// One sent and refused: 403 with bare field errors.
	res, err = c.AddAttributes(ctx, u, []misp.Attribute{{Type: "ip-dst", Category: "Network activity", Value: "999.1.1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason(), "IP address") {
		t.Fatalf("single refused: %+v", res)
	}

	// A wrong category for the type is refused, not retried.
	res, err = c.AddAttributes(ctx, u, []misp.Attribute{
		{Type: "uri", Category: "Payload delivery", Value: "/x"},
		{Type: "uri", Category: "Nonsense", Value: "/y"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 2 {
		t.Fatalf("bad categories: %+v", res)
	}

	// Unknown event.
	if _, err := c.AddAttributes(ctx, "00000000-0000-4000-8000-000000000000", batch); !errors.Is(err, misp.ErrNotFound) {
		t.Errorf("unknown event: %v, want ErrNotFound", err)
	}

	evs, err := c.SearchEvents(ctx, misp.SearchQuery{UUID: u, Metadata: true})
	if err != nil || len(evs) != 1 {
		t.Fatalf("search: %v, %v", evs, err)
	}
	if evs[0].AttributeCount != 4 || len(evs[0].Attribute) != 0 {
		t.Errorf("attribute_count = %d with %d attributes, want 4 and none (metadata)", evs[0].AttributeCount, len(evs[0].Attribute))
	}
	if n := countOps(s.Ledger, "attribute.add"); n != 4 {
		t.Errorf("%d attribute.add entries, want 4", n)
	}
	if err := c.PublishEvent(ctx, u); err != nil {
		t.Fatal(err)
	}
	if !s.Events()[0].Published {
		t.Error("event not published")
	}
}

func TestAddAttributesPartialTimeout(t *testing.T) {
	t.Parallel()
	s, srv := newSim(t, mispsim.Options{TimeoutAfter: 3})
	c := newClient(t, srv.URL, testKey)
	ctx := context.Background()
	ev, err := c.AddEvent(ctx, dayEvent(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	var batch []misp.Attribute
	for i := range 5 {
		batch = append(batch, attr(t, ev.UUID, "IP Address", fmt.Sprintf("192.0.2.%d", i+1)))
	}
	_, err = c.AddAttributes(ctx, ev.UUID, batch)
	var se *httpx.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusGatewayTimeout || !httpx.IsTransient(err) {
		t.Fatalf("err = %v, want a transient 504", err)
	}
	if !strings.Contains(err.Error(), "non-JSON") {
		t.Errorf("error should say the body was HTML: %v", err)
	}
	// The retry, in halves so that it fits, saves the rest and finds the first three.
	done := 0
	for _, half := range [][]misp.Attribute{batch[:3], batch[3:]} {
		res, err := c.AddAttributes(ctx, ev.UUID, half)
		if err != nil {
			t.Fatal(err)
		}
		done += len(res.Done())
		if len(res.Rejected) > 0 {
			t.Errorf("rejected on retry: %+v", res.Rejected)
		}
	}
	if done != 5 || len(s.Attributes(ev.UUID)) != 5 {
		t.Errorf("done %d, stored %d, want 5 and 5", done, len(s.Attributes(ev.UUID)))
	}
}

func TestTransientAndLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      mispsim.Options
		faults    sim.Faults
		check     func(error) bool
		transient bool
	}{
		{"503 empty", mispsim.Options{}, sim.Faults{ErrorRate: 1}, func(err error) bool {
			var se *httpx.StatusError
			return errors.As(err, &se) && se.StatusCode == 503 && strings.Contains(se.Detail, "empty")
		}, true},
		{"502 html", mispsim.Options{HTMLErrors: true}, sim.Faults{ErrorRate: 1, ErrorStatus: 502}, func(err error) bool {
			var se *httpx.StatusError
			return errors.As(err, &se) && se.StatusCode == 502 && strings.Contains(se.Detail, "text/html")
		}, true},
		{"429", mispsim.Options{}, sim.Faults{RateLimitRate: 1, RetryAfter: 7 * time.Second}, func(err error) bool {
			return httpx.RetryAfterOf(err) == 7*time.Second
		}, true},
		{"413", mispsim.Options{MaxPayloadBytes: 200}, sim.Faults{}, func(err error) bool {
			return errors.Is(err, misp.ErrTooLarge)
		}, false},
		{"dropped", mispsim.Options{}, sim.Faults{DropRate: 1}, func(err error) bool {
			var te *httpx.TransportError
			return errors.As(err, &te)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := newSim(t, tt.opts)
			c := newClient(t, srv.URL, testKey)
			ctx := context.Background()
			ev, err := c.AddEvent(ctx, misp.Event{Info: "x"})
			if err != nil {
				t.Fatal(err)
			}
			s.Faults.Set(tt.faults)
			var batch []misp.Attribute
			for i := range 5 {
				batch = append(batch, attr(t, ev.UUID, "URL", fmt.Sprintf("http://a.example/%d", i)))
			}
			_, err = c.AddAttributes(ctx, ev.UUID, batch)
			if err == nil || !tt.check(err) {
				t.Fatalf("err = %v", err)
			}
			if httpx.IsTransient(err) != tt.transient {
				t.Errorf("transient = %v, want %v (%v)", httpx.IsTransient(err), tt.transient, err)
			}
		})
	}
}

func TestSearchAndDescribe(t *testing.T) {
	t.Parallel()
	_, srv := newSim(t, mispsim.Options{})
	c := newClient(t, srv.URL, testKey)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		ev := dayEvent(srv.URL)
		ev.UUID = misp.EventUUID(srv.URL, "2025-01-15", i)
		ev.Info = fmt.Sprintf("ThreatQ export 2025-01-15 #%d", i)
		if _, err := c.AddEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		q    misp.SearchQuery
		want int
	}{
		{"like", misp.SearchQuery{EventInfo: "ThreatQ export 2025-01-15%", Metadata: true}, 3},
		{"exact", misp.SearchQuery{EventInfo: "ThreatQ export 2025-01-15 #2"}, 1},
		{"tag and date", misp.SearchQuery{EventTags: []string{"source:threatq-export"}, From: "2025-01-15", To: "2025-01-15"}, 3},
		{"other day", misp.SearchQuery{From: "2025-01-16"}, 0},
		{"uuid", misp.SearchQuery{UUID: misp.EventUUID(srv.URL, "2025-01-15", 3)}, 1},
		{"paged", misp.SearchQuery{Limit: 2, Page: 2}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs, err := c.SearchEvents(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != tt.want {
				t.Errorf("%d events, want %d", len(evs), tt.want)
			}
		})
	}
	dt, err := c.DescribeTypes(ctx)
	if err != nil || !dt.Allowed("ip-dst", "Network activity") {
		t.Errorf("DescribeTypes: %v", err)
	}
	v, err := c.ServerVersion(ctx)
	if err != nil || v.Version == "" {
		t.Errorf("ServerVersion = %+v, %v", v, err)
	}
}

// TestAnswerShapes covers answers the simulator does not give: native
// numbers, string errors, uuid-less partial answers, odd 403s.
func TestAnswerShapes(t *testing.T) {
	t.Parallel()
	two := []misp.Attribute{
		{UUID: "11111111-1111-4111-8111-111111111111", Type: "md5", Value: strings.Repeat("a", 32)},
		{UUID: "22222222-2222-4222-8222-222222222222", Type: "md5", Value: strings.Repeat("b", 32)},
	}
	tests := []struct {
		name         string
		status       int
		body         string
		wantSaved    string
		wantExisting string
		wantRejected int
		wantErr      error
	}{
		{"native numbers array", 200, `{"Attribute":[{"id":1,"event_id":2,"uuid":"11111111-1111-4111-8111-111111111111","type":"md5","value":"x","to_ids":true},{"id":2,"uuid":"22222222-2222-4222-8222-222222222222","type":"md5","value":"y"}]}`, "[0 1]", "[]", 0, nil},
		{"object plus indexed errors", 200, `{"Attribute":{"id":"1","uuid":"22222222-2222-4222-8222-222222222222","type":"md5","value":"y"},"AttributeTag":[],"errors":{"attribute_0":{"uuid":["The UUID provided is not unique"],"value":["A similar attribute already exists for this event."]}}}`, "[1]", "[0]", 0, nil},
		{"unkeyed errors matched by uuid", 200, `{"Attribute":{"id":"1","uuid":"11111111-1111-4111-8111-111111111111","type":"md5","value":"x"},"errors":{"value":["Checksum has an invalid length"]}}`, "[0]", "[]", 1, nil},
		{"403 string errors", 403, `{"saved":false,"name":"Could not add Attribute","message":"Could not add Attribute","url":"/attributes/add","errors":"Something broke."}`, "[]", "[]", 2, nil},
		{"403 indexed strings", 403, `{"saved":false,"errors":{"attribute_0":{"uuid":"The UUID provided is not unique","value":"A similar attribute already exists for this event."},"attribute_1":{"type":["Invalid type."]}}}`, "[]", "[0]", 1, nil},
		{"403 permission", 403, `{"name":"You do not have permission to do that.","message":"You do not have permission to do that.","url":"/attributes/add/1"}`, "", "", 0, misp.ErrForbidden},
		{"403 expired key", 403, `{"name":"Auth key is expired","message":"Auth key is expired","url":"/attributes/add/1"}`, "", "", 0, misp.ErrAuth},
		{"401", 401, ``, "", "", 0, misp.ErrAuth},
		{"redirect to login", 302, ``, "", "", 0, nil},
		{"200 html", 200, `<html>login</html>`, "", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != testKey || r.Header.Get("Accept") != "application/json" ||
					r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("headers = %v", r.Header)
				}
				if tt.status == 302 {
					w.Header().Set("Location", "/users/login")
				}
				if strings.HasPrefix(tt.body, "<") {
					w.Header().Set("Content-Type", "text/html")
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, srv.URL, testKey)
			res, err := c.AddAttributes(context.Background(), "1", two)
			if tt.wantSaved == "" {
				if err == nil {
					t.Fatalf("no error; result %+v", res)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if httpx.IsTransient(err) {
					t.Errorf("err %v must not be transient", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(nonNil(res.Saved)) != tt.wantSaved || fmt.Sprint(nonNil(res.Existing)) != tt.wantExisting || len(res.Rejected) != tt.wantRejected {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func nonNil(x []int) []int {
	if x == nil {
		return []int{}
	}
	return x
}
