package misp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
)

// serve answers every request with status and body.
func serve(t *testing.T, status int, body string) *misp.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return newClient(t, srv.URL, testKey)
}

// TestMergedByMISP: "similar attribute" without "UUID not unique" means
// MISP holds another value it takes for the same (a case or accent
// variant): the exact value is not stored, and it is not ours.
func TestMergedByMISP(t *testing.T) {
	t.Parallel()
	c := serve(t, 403, `{"saved":false,"name":"Could not add Attribute","message":"Could not add Attribute","url":"/attributes/add","errors":{"attribute_0":{"value":["A similar attribute already exists for this event."]},"attribute_1":{"uuid":["The UUID provided is not unique"],"value":["A similar attribute already exists for this event."]}}}`)
	res, err := c.AddAttributes(context.Background(), "1", []misp.Attribute{
		{Type: "filename", Value: "invoice.exe", UUID: "11111111-1111-4111-8111-111111111111"},
		{Type: "filename", Value: "Invoice.exe", UUID: "22222222-2222-4222-8222-222222222222"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Merged) != "[0]" || fmt.Sprint(res.Existing) != "[1]" || fmt.Sprint(res.Done()) != "[0 1]" {
		t.Errorf("result %+v", res)
	}
}

func TestBlocklistClasses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, body string
		want       error
	}{
		{"old MISP blocklist", `{"saved":false,"name":"Could not add Event","message":"Could not add Event","url":"/events/add","errors":[]}`, misp.ErrEventBlocked},
		{"event blocklist", `{"name":"Event blocked by event blocklist.","message":"Event blocked by event blocklist.","url":"/events/add"}`, misp.ErrEventBlocked},
		{"organisation blocklist", `{"name":"Event blocked by organisation blocklist.","message":"Event blocked by organisation blocklist.","url":"/events/add"}`, misp.ErrForbidden},
		{"validation", `{"saved":false,"name":"Could not add Event","message":"Could not add Event","url":"/events/add","errors":{"Event":{"info":["Info cannot be empty."]}}}`, misp.ErrValidation},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := serve(t, 403, tt.body).AddEvent(context.Background(), misp.Event{UUID: "6f0a3c2e-5b1d-5d1e-9a59-2f3c8e6f1a01", Info: "x"})
			if !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
			if errors.Is(tt.want, misp.ErrForbidden) && errors.Is(err, misp.ErrEventBlocked) {
				t.Errorf("organisation blocklist read as a UUID problem: %v", err)
			}
		})
	}
}

// TestAgainstSimulator: a taken UUID (404 + Location) returns the event
// with its owner and count, /users/view/me names our organisation, and a
// case variant comes back Merged, not Existing.
func TestAgainstSimulator(t *testing.T) {
	t.Parallel()
	s, srv := newSim(t, mispsim.Options{OrgName: "Ours"})
	c := newClient(t, srv.URL, testKey)
	ctx := context.Background()
	const theirs = "6f0a3c2e-5b1d-5d1e-9a59-2f3c8e6f1a02"
	s.AddForeignEvent(theirs, "their event", "Other Org", nil, 7)
	ev, err := c.AddEvent(ctx, misp.Event{UUID: theirs, Info: "ours"})
	if err != nil || ev.Orgc == nil || ev.Orgc.Name != "Other Org" || ev.AttributeCount != 7 {
		t.Fatalf("AddEvent on a taken uuid: %+v, %v", ev, err)
	}
	me, err := c.Me(ctx)
	if err != nil || me.Organisation.Name != "Ours" {
		t.Fatalf("Me: %+v, %v", me, err)
	}
	const ours = "6f0a3c2e-5b1d-5d1e-9a59-2f3c8e6f1a03"
	if _, err := c.AddEvent(ctx, misp.Event{UUID: ours, Info: "ours"}); err != nil {
		t.Fatal(err)
	}
	attr := func(v string) misp.Attribute {
		return misp.Attribute{Type: "filename", Category: "Payload delivery", Value: v, UUID: misp.AttributeUUID(ours, "filename", v)}
	}
	if _, err := c.AddAttributes(ctx, ours, []misp.Attribute{attr("Invoice.exe")}); err != nil {
		t.Fatal(err)
	}
	res, err := c.AddAttributes(ctx, ours, []misp.Attribute{attr("Invoice.exe"), attr("INVOICE.exe"), attr("invoicé.exe")})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Existing) != "[0]" || fmt.Sprint(res.Merged) != "[1 2]" {
		t.Errorf("result %+v", res)
	}
	got, err := c.SearchAttributes(ctx, misp.AttributeQuery{EventID: []string{ours}, Type: "filename", Value: []string{"INVOICÉ.EXE", "other.exe"}})
	if err != nil || len(got) != 1 || got[0].Value != "Invoice.exe" {
		t.Errorf("SearchAttributes: %+v, %v", got, err)
	}
	if _, err := c.AddAttributes(ctx, theirs, []misp.Attribute{attr("x.exe")}); !errors.Is(err, misp.ErrForbidden) {
		t.Errorf("adding to another organisation's event: %v", err)
	}
}

func TestFoldKey(t *testing.T) {
	t.Parallel()
	same := [][2]string{{"Invoice.exe", "invoice.EXE"}, {"café", "cafe"}, {"Straße", "STRASSE"}, {"ＡＢ", "ab"}, {"http://A/Path", "http://a/path"}}
	for _, p := range same {
		if string(misp.FoldKey(p[0])) != string(misp.FoldKey(p[1])) {
			t.Errorf("%q and %q: different keys, MISP takes them for one value", p[0], p[1])
		}
	}
	differ := [][2]string{{"a.exe", "b.exe"}, {"a", "a "}, {"1.2.3.4", "1.2.3.5"}}
	for _, p := range differ {
		if string(misp.FoldKey(p[0])) == string(misp.FoldKey(p[1])) {
			t.Errorf("%q and %q: one key", p[0], p[1])
		}
	}
}
