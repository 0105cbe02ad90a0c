package mispsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/sim/mispsim"
)

// goldenCase is a row of pkg/misp/testdata/golden.json: what MISP 2.5.1's
// own PHP (run under php-cli with intl) makes of a value. The simulator
// reads the data only; it shares no code with pkg/misp.
type goldenCase struct {
	Type  string  `json:"type"`
	In    string  `json:"in"`
	Out   *string `json:"out"`
	Error string  `json:"error"`
}

func TestGoldenValues(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../misp/testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var cs []goldenCase
	if err := json.Unmarshal(b, &cs); err != nil || len(cs) < 100 {
		t.Fatalf("golden cases: %d, %v", len(cs), err)
	}
	e := newEnv(t, mispsim.Options{})
	e.addEvent(evUUID)
	known := map[string]bool{}
	var dt struct {
		Result struct {
			SaneDefaults map[string]any `json:"sane_defaults"`
		} `json:"result"`
	}
	if r := e.do("GET", "/attributes/describeTypes.json", "", nil); json.Unmarshal(r.body, &dt) != nil {
		t.Fatalf("describeTypes: %s", r.body)
	}
	for k := range dt.Result.SaneDefaults {
		known[k] = true
	}
	tested := 0
	for i, c := range cs {
		if !known[c.Type] {
			continue
		}
		tested++
		// A category every type allows is not at hand; let MISP pick the
		// default. The comment makes each row unique in the event for
		// the duplicate rule: every value goes to a fresh event.
		ev := fmt.Sprintf("6f0a3c2e-5b1d-4d1e-9a59-%012d", i)
		e.addEvent(ev)
		body, _ := json.Marshal(map[string]any{"type": c.Type, "value": c.In})
		r := e.do("POST", "/attributes/add/"+ev, string(body), nil)
		if c.Out != nil {
			if r.status != 200 {
				t.Errorf("%s %q: %d %s; MISP stores %q", c.Type, c.In, r.status, r.body, *c.Out)
				continue
			}
			a := r.json(t)["Attribute"].(map[string]any)
			if a["value"] != *c.Out {
				t.Errorf("%s %q stored as %q; MISP stores %q", c.Type, c.In, a["value"], *c.Out)
			}
			continue
		}
		var fail struct {
			Errors map[string][]string `json:"errors"`
		}
		if r.status != 403 || json.Unmarshal(r.body, &fail) != nil || len(fail.Errors["value"]) != 1 || fail.Errors["value"][0] != c.Error {
			t.Errorf("%s %q: %d %s; MISP says %q", c.Type, c.In, r.status, r.body, c.Error)
		}
	}
	if tested < 100 {
		t.Errorf("only %d golden cases tested", tested)
	}
}

func TestDuplicateRuleIgnoresCaseAndAccents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mispsim.Options{})
	e.addEvent(evUUID)
	add := func(typ, v string) int {
		body, _ := json.Marshal(map[string]any{"type": typ, "value": v, "category": "Payload delivery"})
		return e.do("POST", "/attributes/add/"+evUUID, string(body), nil).status
	}
	for _, tt := range []struct {
		name, typ, first, second string
		dup                      bool
	}{
		{"case", "filename", "Invoice.exe", "invoice.EXE", true},
		{"accent", "filename", "café.doc", "cafe.doc", true},
		{"width", "filename", "ＡＢ.txt", "ab.txt", true},
		{"url case", "url", "http://a.example/Path", "http://a.example/path", true},
		{"different", "filename", "one.exe", "two.exe", false},
		{"trailing space is not folded away by trim", "email-subject", "Hi\u00a0", "Hi", false},
	} {
		if s := add(tt.typ, tt.first); s != 200 {
			t.Fatalf("%s: first add %d", tt.name, s)
		}
		want := 200
		if tt.dup {
			want = 403
		}
		if s := add(tt.typ, tt.second); s != want {
			t.Errorf("%s: second add %d, want %d", tt.name, s, want)
		}
	}
}

func TestRoutesAndIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mispsim.Options{OrgName: "Ours"})
	r := e.do("GET", "/no/such/route", "", nil)
	if r.status != 404 || r.json(t)["message"] != "Not Found" {
		t.Errorf("unknown route: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/users/view/me", "", nil)
	if m := r.json(t); r.status != 200 || m["Organisation"].(map[string]any)["name"] != "Ours" {
		t.Errorf("users/view/me: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/events/restSearch", `{"metadata":true,"threat_level_id":"1"}`, nil)
	if r.status != 501 || !bytes.Contains(r.body, []byte("threat_level_id")) {
		t.Errorf("unsimulated filter: %d %s", r.status, r.body)
	}
}

func TestForeignEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mispsim.Options{})
	e.s.AddForeignEvent(evUUID, "theirs", "Other Org", []string{"tlp:red"}, 3)
	r := e.do("POST", "/events/add", `{"uuid":"`+evUUID+`","info":"ours"}`, nil)
	if r.status != 404 || !strings.HasSuffix(r.header.Get("Location"), "/events/1") {
		t.Errorf("taken uuid: %d %v", r.status, r.header)
	}
	r = e.do("POST", "/events/restSearch", `{"uuid":"`+evUUID+`","metadata":true}`, nil)
	if !bytes.Contains(r.body, []byte(`"attribute_count":"3"`)) || !bytes.Contains(r.body, []byte(`"name":"Other Org"`)) {
		t.Errorf("restSearch: %s", r.body)
	}
	r = e.do("POST", "/attributes/add/"+evUUID, `{"type":"filename","value":"x.exe"}`, nil)
	if r.status != 403 || r.json(t)["message"] != "You do not have permission to do that." {
		t.Errorf("add to foreign event: %d %s", r.status, r.body)
	}
}

func TestBlocklists(t *testing.T) {
	t.Parallel()
	old := newEnv(t, mispsim.Options{OldBlocklist: true})
	old.addEvent(evUUID)
	old.s.DeleteEvent(evUUID)
	r := old.do("POST", "/events/add", `{"uuid":"`+evUUID+`","info":"x"}`, nil)
	if r.status != 403 || !bytes.Contains(r.body, []byte(`"errors":[]`)) || !bytes.Contains(r.body, []byte(`"saved":false`)) {
		t.Errorf("old blocklist: %d %s", r.status, r.body)
	}
	orgs := newEnv(t, mispsim.Options{OrgBlocklisted: true})
	r = orgs.do("POST", "/events/add", `{"info":"x"}`, nil)
	if r.status != 403 || r.json(t)["message"] != "Event blocked by organisation blocklist." {
		t.Errorf("org blocklist: %d %s", r.status, r.body)
	}
}

// TestWorkerKeepsSavingAfter504 resends a batch at once after its 504:
// the worker still saving it makes the resend end in a 500 that loses the
// rest of its batch; once the worker is done, everything is there once.
func TestWorkerKeepsSavingAfter504(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mispsim.Options{TimeoutAfter: 2, KeepSaving: 200 * time.Millisecond})
	e.addEvent(evUUID)
	var items []string
	for i := range 6 {
		items = append(items, fmt.Sprintf(`{"type":"filename","value":"f%d.exe","uuid":"00000000-0000-4000-8000-00000000000%d"}`, i, i))
	}
	body := "[" + strings.Join(items, ",") + "]"
	if r := e.do("POST", "/attributes/add/"+evUUID, body, nil); r.status != 504 {
		t.Fatalf("first: %d", r.status)
	}
	if r := e.do("POST", "/attributes/add/"+evUUID, "["+strings.Join(items[2:], ",")+"]", nil); r.status != 500 || e.s.Answered(500) != 1 {
		t.Errorf("resend at once: %d %s, want 500", r.status, r.body)
	}
	e.s.WaitWorkers()
	if n := len(e.s.Attributes(evUUID)); n != 6 {
		t.Errorf("%d attributes after the worker, want 6", n)
	}
}
