package mispsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
)

const key = "0123456789abcdefghijABCDEFGHIJ0123456789"

type env struct {
	t   *testing.T
	s   *mispsim.Server
	url string
}

func newEnv(t *testing.T, opts mispsim.Options) *env {
	t.Helper()
	opts.Keys = append(opts.Keys, key)
	b, err := os.ReadFile(sharedtest.Path(t, "misp/describeTypes.json"))
	if err != nil {
		t.Fatal(err)
	}
	opts.DescribeTypes = b
	s := mispsim.New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, s: s, url: srv.URL}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d body %q: %v", r.status, r.body, err)
	}
	return m
}

// do sends a request with the given headers (nil: the REST headers and key).
func (e *env) do(method, path, body string, hdr map[string]string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if hdr == nil {
		hdr = map[string]string{"Authorization": key, "Accept": "application/json", "Content-Type": "application/json"}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func (e *env) addEvent(uuid string) string {
	e.t.Helper()
	r := e.do("POST", "/events/add/metadata:1",
		`{"Event":{"uuid":"`+uuid+`","info":"ThreatQ export 2025-01-15 #1","date":"2025-01-15","distribution":"0","threat_level_id":"4","analysis":"2","published":false,"Tag":[{"name":"tlp:amber"}]}}`, nil)
	if r.status != 200 {
		e.t.Fatalf("add event: %d %s", r.status, r.body)
	}
	return r.json(e.t)["Event"].(map[string]any)["id"].(string)
}

const evUUID = "6f0a3c2e-5b1d-5d1e-9a59-2f3c8e6f1a01"

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mispsim.Options{})
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
		check  func(reply) bool
	}{
		{"raw key", map[string]string{"Authorization": key, "Accept": "application/json"}, 200, nil},
		{"x-misp-auth", map[string]string{"X-MISP-AUTH": key, "Accept": "application/json"}, 200, nil},
		{"comma list", map[string]string{"Authorization": "short," + key, "Accept": "application/json"}, 200, nil},
		{"bearer refused", map[string]string{"Authorization": "Bearer " + key, "Accept": "application/json"}, 403, func(r reply) bool {
			return bytes.Contains(r.body, []byte(`"message":"Authentication failed.`)) && !bytes.Contains(r.body, []byte(`"saved"`))
		}},
		{"wrong key", map[string]string{"Authorization": strings.Repeat("x", 40), "Accept": "application/json"}, 403, nil},
		{"not rest, no key", map[string]string{}, 302, func(r reply) bool { return r.header.Get("Location") == "/users/login" }},
		{"not rest, key", map[string]string{"Authorization": key}, 500, func(r reply) bool {
			return strings.HasPrefix(r.header.Get("Content-Type"), "text/html")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := e.do("GET", "/servers/getVersion", "", tt.hdr)
			if r.status != tt.status || (tt.check != nil && !tt.check(r)) {
				t.Errorf("status %d headers %v body %s", r.status, r.header, r.body)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mispsim.Options{})
	id := e.addEvent(evUUID)
	r := e.do("POST", "/events/add", `{"uuid":"`+strings.ToUpper(evUUID)+`","info":"again"}`, nil)
	if r.status != 404 || r.header.Get("Location") == "" || !bytes.Contains(r.body, []byte("Event already exists")) || !strings.HasSuffix(r.header.Get("Location"), "/events/"+id) {
		t.Errorf("duplicate uuid: %d %v %s", r.status, r.header, r.body)
	}
	for _, tt := range []struct {
		name, path, method string
		status             int
	}{
		{"head by uuid", "/events/view/" + evUUID, "HEAD", 200},
		{"head by id", "/events/view/" + id, "HEAD", 200},
		{"head missing", "/events/view/00000000-0000-4000-8000-000000000000", "HEAD", 404},
		{"get", "/events/view/" + id, "GET", 200},
		{"get missing", "/events/view/999", "GET", 404},
		{"restSearch by GET", "/events/restSearch", "GET", 400},
	} {
		if r := e.do(tt.method, tt.path, "", nil); r.status != tt.status {
			t.Errorf("%s: %d %s", tt.name, r.status, r.body)
		}
	}
	for _, tt := range []struct{ name, body, want string }{
		{"empty", ``, "No valid event data received."},
		{"bad json", `{"Event":`, "Invalid JSON input"},
		{"published empty", `{"info":"x","published":true}`, "published event that was empty"},
		{"bad enums", `{"info":"x","threat_level_id":"7","distribution":"5","date":"15/01/2025"}`, `"saved":false`},
		{"no info", `{"Event":{"date":"2025-01-15"}}`, `"info"`},
	} {
		r := e.do("POST", "/events/add", tt.body, nil)
		if r.status < 400 || !strings.Contains(string(r.body), tt.want) {
			t.Errorf("%s: %d %s", tt.name, r.status, r.body)
		}
	}
	if n := len(e.s.Events()); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
	e.s.DeleteEvent(evUUID)
	if r := e.do("POST", "/events/add", `{"uuid":"`+evUUID+`","info":"x"}`, nil); r.status != 403 || !bytes.Contains(r.body, []byte("blocklist")) {
		t.Errorf("blocklisted: %d %s", r.status, r.body)
	}
}

func TestAttributeAnswerShapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mispsim.Options{})
	e.addEvent(evUUID)
	path := "/attributes/add/" + evUUID
	ip := func(v, uuid string) string {
		s := `{"type":"ip-dst","category":"Network activity","value":"` + v + `","to_ids":true`
		if uuid != "" {
			s += `,"uuid":"` + uuid + `"`
		}
		return s + `}`
	}
	const u1, u2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"

	// Two saved: an array under Attribute.
	r := e.do("POST", path, `[`+ip("2001:0db8::0001", u1)+`,`+ip("198.51.100.7", u2)+`]`, nil)
	m := r.json(t)
	if list, ok := m["Attribute"].([]any); r.status != 200 || !ok || len(list) != 2 {
		t.Fatalf("two saved: %d %s", r.status, r.body)
	}
	if v := m["Attribute"].([]any)[0].(map[string]any)["value"]; v != "2001:db8::1" {
		t.Errorf("stored value %v, want the compressed IPv6", v)
	}

	// One saved of two: an object, with errors keyed attribute_N.
	r = e.do("POST", path, `{"Attribute":[`+ip("2001:db8:0:0::1", "")+`,`+ip("198.51.100.8", "")+`]}`, nil)
	m = r.json(t)
	if _, ok := m["Attribute"].(map[string]any); r.status != 200 || !ok {
		t.Fatalf("one saved: %d %s", r.status, r.body)
	}
	if _, ok := m["errors"].(map[string]any)["attribute_0"]; !ok {
		t.Errorf("one saved: errors %v", m["errors"])
	}
	if _, ok := m["AttributeTag"]; !ok {
		t.Errorf("one saved: no AttributeTag: %s", r.body)
	}

	// None saved of several: 403 with attribute_N.
	r = e.do("POST", path, `[`+ip("198.51.100.7", "")+`,`+ip("300.1.1.1", "")+`]`, nil)
	m = r.json(t)
	errs, _ := m["errors"].(map[string]any)
	if r.status != 403 || m["saved"] != false || errs["attribute_0"] == nil || errs["attribute_1"] == nil {
		t.Fatalf("none saved: %d %s", r.status, r.body)
	}
	if !strings.Contains(fmt.Sprint(errs["attribute_0"]), "A similar attribute already exists for this event.") {
		t.Errorf("duplicate message: %v", errs["attribute_0"])
	}

	// One sent and refused: 403 with bare fields, even as a 1-element array.
	for _, body := range []string{ip("198.51.100.7", u1), `[` + ip("198.51.100.7", u1) + `]`} {
		r = e.do("POST", path, body, nil)
		m = r.json(t)
		errs, _ = m["errors"].(map[string]any)
		if r.status != 403 || errs["value"] == nil || errs["uuid"] == nil || errs["attribute_0"] != nil {
			t.Errorf("single refused: %d %s", r.status, r.body)
		}
	}

	// Same value, other category: allowed. Template with a list of values.
	r = e.do("POST", path, `{"type":"ip-dst","category":"External analysis","value":["198.51.100.7","198.51.100.9"]}`, nil)
	if r.status != 200 {
		t.Errorf("template: %d %s", r.status, r.body)
	}
	// Defaults: category and to_ids from describeTypes.
	r = e.do("POST", path, `{"type":"domain","value":"Example[.]ORG."}`, nil)
	a, _ := r.json(t)["Attribute"].(map[string]any)
	if r.status != 200 || a["category"] != "Network activity" || a["to_ids"] != true || a["value"] != "example.org" || a["distribution"] != "5" {
		t.Errorf("defaults: %d %s", r.status, r.body)
	}
	// Attribute UUIDs are unique instance-wide.
	e.addEvent("7f0a3c2e-5b1d-5d1e-9a59-2f3c8e6f1a02")
	r = e.do("POST", "/attributes/add/7f0a3c2e-5b1d-5d1e-9a59-2f3c8e6f1a02", ip("203.0.113.1", u1), nil)
	if r.status != 403 || !bytes.Contains(r.body, []byte("The UUID provided is not unique")) {
		t.Errorf("uuid reuse across events: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/attributes/add/999", ip("203.0.113.1", ""), nil); r.status != 404 {
		t.Errorf("unknown event: %d %s", r.status, r.body)
	}
	if r := e.do("POST", path, `[{"type":"ip-dst"`, nil); r.status != 405 {
		t.Errorf("bad json: %d %s", r.status, r.body)
	}

	// Ledger: effective adds only, attribute_count agrees.
	var adds []sim.Entry
	for _, en := range e.s.Ledger.Entries() {
		if en.Op == "attribute.add" {
			adds = append(adds, en)
		}
	}
	stored := e.s.Attributes(evUUID)
	if len(adds) != len(stored) || len(stored) != 6 {
		t.Errorf("%d attribute.add entries, %d stored, want 6 and 6", len(adds), len(stored))
	}
	for _, ev := range e.s.Events() {
		if ev.UUID == evUUID && (ev.AttributeCount != 6 || ev.Published) {
			t.Errorf("event %+v", ev)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	t.Run("payload", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, mispsim.Options{MaxPayloadBytes: 100})
		r := e.do("POST", "/events/add", `{"info":"`+strings.Repeat("x", 200)+`"}`, nil)
		if r.status != 413 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("%d %v", r.status, r.header)
		}
	})
	t.Run("view memory", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, mispsim.Options{AttributeLimit: 1})
		e.addEvent(evUUID)
		e.do("POST", "/attributes/add/"+evUUID, `{"type":"ip-dst","value":["192.0.2.1","192.0.2.2"]}`, nil)
		if r := e.do("GET", "/events/view/"+evUUID, "", nil); r.status != 500 || !bytes.Contains(r.body, []byte("memory")) {
			t.Errorf("%d %s", r.status, r.body)
		}
		if r := e.do("HEAD", "/events/view/"+evUUID, "", nil); r.status != 200 {
			t.Errorf("HEAD %d", r.status)
		}
	})
	t.Run("html faults", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, mispsim.Options{HTMLErrors: true})
		e.s.Faults.Set(sim.Faults{ErrorRate: 1, ErrorStatus: 503})
		r := e.do("GET", "/servers/getVersion", "", nil)
		if r.status != 503 || !bytes.Contains(r.body, []byte("<html>")) {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
}

func TestRestSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mispsim.Options{})
	e.addEvent(evUUID)
	e.do("POST", "/attributes/add/"+evUUID, `{"type":"md5","value":"D41D8CD98F00B204E9800998ECF8427E","uuid":"33333333-3333-4333-8333-333333333333"}`, nil)
	tests := []struct {
		name, body string
		want       int
	}{
		{"all", `{}`, 1},
		{"uuid", `{"uuid":"` + evUUID + `","metadata":true}`, 1},
		{"attribute uuid", `{"uuid":"33333333-3333-4333-8333-333333333333"}`, 1},
		{"eventinfo like", `{"eventinfo":"%export 2025-01-15%"}`, 1},
		{"eventinfo exact miss", `{"eventinfo":"export 2025-01-15"}`, 0},
		{"published", `{"published":true}`, 0},
		{"tags", `{"event_tags":["TLP:AMBER"]}`, 1},
		{"dates", `{"from":"2025-01-16"}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := e.do("POST", "/events/restSearch", tt.body, nil)
			resp, _ := r.json(t)["response"].([]any)
			if r.status != 200 || len(resp) != tt.want || r.header.Get("X-Result-Count") != fmt.Sprint(tt.want) {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if tt.want == 1 {
				ev := resp[0].(map[string]any)["Event"].(map[string]any)
				_, hasAttrs := ev["Attribute"]
				if ev["attribute_count"] != "1" || hasAttrs == strings.Contains(tt.body, "metadata") {
					t.Errorf("event %v", ev)
				}
			}
		})
	}
}

// TestEventsMatchSchema validates every event the simulator holds against
// PyMISP's lax schema.
func TestEventsMatchSchema(t *testing.T) {
	t.Parallel()
	f, err := os.Open(sharedtest.Path(t, "misp/pymisp-schema-lax.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema-lax.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("schema-lax.json")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := jsonschema.UnmarshalJSON(strings.NewReader(`{"Event":{"id":1,"attribute_count":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if schema.Validate(bad) == nil {
		t.Fatal("the schema accepts numeric ids: it checks nothing")
	}
	e := newEnv(t, mispsim.Options{})
	e.addEvent(evUUID)
	e.do("POST", "/attributes/add/"+evUUID, `[{"type":"ip-dst","value":"198.51.100.7","Tag":[{"name":"threatq:score=\"8\""}],"comment":"ThreatQ score: 8.5","first_seen":"2025-01-15T10:00:00+00:00"},{"type":"sha256","value":"`+strings.Repeat("a", 64)+`"}]`, nil)
	e.do("POST", "/events/add", `{"info":"second","Attribute":[{"type":"url","value":"http://x.example/"},{"type":"md5","value":"bad"}]}`, nil)
	e.do("POST", "/events/publish/"+evUUID, "", nil)
	evs := e.s.Events()
	if len(evs) != 2 || evs[1].AttributeCount != 1 {
		t.Fatalf("events %+v", evs)
	}
	for _, ev := range evs {
		for _, meta := range []string{"", "metadata"} {
			r := e.do("GET", "/events/view/"+ev.UUID, "", nil)
			if meta != "" {
				r = e.do("POST", "/events/restSearch", `{"uuid":"`+ev.UUID+`","metadata":true}`, nil)
				r.body, _ = json.Marshal(r.json(t)["response"].([]any)[0])
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(inst); err != nil {
				t.Errorf("event %s (%s) does not match the schema: %v", ev.UUID, meta, err)
			}
		}
	}
}

// TestBulk adds 100,000 attributes in chunks of 1,000, then retries one
// chunk, as the exporter benchmark does.
func TestBulk(t *testing.T) {
	t.Parallel()
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	e := newEnv(t, mispsim.Options{})
	e.addEvent(evUUID)
	start := time.Now()
	var chunk bytes.Buffer
	for i := 0; i < n; i += 1000 {
		chunk.Reset()
		chunk.WriteByte('[')
		for j := i; j < i+1000; j++ {
			if j > i {
				chunk.WriteByte(',')
			}
			fmt.Fprintf(&chunk, `{"type":"ip-dst","category":"Network activity","value":"10.%d.%d.%d","to_ids":true,"uuid":"00000000-0000-4000-8000-%012d"}`,
				j>>16, (j>>8)&255, j&255, j)
		}
		chunk.WriteByte(']')
		if r := e.do("POST", "/attributes/add/"+evUUID, chunk.String(), nil); r.status != 200 {
			t.Fatalf("chunk %d: %d %.200s", i, r.status, r.body)
		}
	}
	if r := e.do("POST", "/attributes/add/"+evUUID, chunk.String(), nil); r.status != 403 {
		t.Fatalf("retried chunk: %d", r.status)
	}
	if got := e.s.Events()[0].AttributeCount; got != n {
		t.Errorf("attribute count %d, want %d", got, n)
	}
	if got := e.s.Ledger.Len(); got != n+1 {
		t.Errorf("ledger %d, want %d", got, n+1)
	}
	t.Logf("%d attributes in %s", n, time.Since(start))
}
