package threatq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
	"github.com/tqflow/tqflow/pkg/threatq"
)

func TestReferenceData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		opts tqsim.Options
		call func(*threatq.Client) (int, error)
		want func(*tqsim.Server) int
	}{
		{"indicator status as spelt", tqsim.Options{Seed: 3},
			func(c *threatq.Client) (int, error) { return c.IndicatorStatusID(ctx, "False Positive") },
			func(s *tqsim.Server) int { return s.StatusID("False Positive") }},
		{"indicator type", tqsim.Options{Seed: 4},
			func(c *threatq.Client) (int, error) { return c.IndicatorTypeID(ctx, "sha-256") },
			func(s *tqsim.Server) int { return s.TypeID("SHA-256") }},
		{"snort", tqsim.Options{},
			func(c *threatq.Client) (int, error) { return c.SignatureTypeID(ctx, "Snort") },
			func(s *tqsim.Server) int { return s.SignatureTypeID("Snort") }},
		{"suricata when created", tqsim.Options{AllowSuricataType: true},
			func(c *threatq.Client) (int, error) { return c.SignatureTypeID(ctx, "suricata") },
			func(s *tqsim.Server) int { return s.SignatureTypeID("Suricata") }},
		{"signature status", tqsim.Options{},
			func(c *threatq.Client) (int, error) { return c.SignatureStatusID(ctx, "Non-malicious") },
			func(s *tqsim.Server) int { return s.SignatureStatusID("Non-malicious") }},
		{"signature status from objects", tqsim.Options{NoSignatureStatusRoute: true},
			func(c *threatq.Client) (int, error) { return c.SignatureStatusID(ctx, "Review") },
			func(s *tqsim.Server) int { return s.SignatureStatusID("Review") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c := simClient(t, tt.opts, nil)
			got, err := tt.call(c)
			if want := tt.want(s); err != nil || got != want || want == 0 {
				t.Errorf("got %d, %v; want %d", got, err, want)
			}
		})
	}
	t.Run("no Suricata on a stock instance", func(t *testing.T) {
		t.Parallel()
		_, c := simClient(t, tqsim.Options{}, nil)
		if _, err := c.SignatureTypeID(ctx, "Suricata"); !errors.Is(err, threatq.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
		// Status names resolve exactly, as the vendor SDK resolves them.
		for _, name := range []string{"Bogus", "active", " Active", "false positive"} {
			if _, err := c.IndicatorStatusID(ctx, name); !errors.Is(err, threatq.ErrNotFound) {
				t.Errorf("status %q: err = %v, want ErrNotFound", name, err)
			}
		}
		if _, err := c.SignatureStatusID(ctx, "Non-Malicious"); !errors.Is(err, threatq.ErrNotFound) {
			t.Errorf("signature status Non-Malicious: err = %v, want ErrNotFound (the instance spells it Non-malicious)", err)
		}
	})
}

func TestResolveStatuses(t *testing.T) {
	t.Parallel()
	_, c := simClient(t, tqsim.Options{}, nil)
	ctx := context.Background()
	ids, err := c.ResolveStatuses(ctx, []threatq.StatusName{
		{Var: "CTR_STATUS", Name: "Review"}, {Var: "ET_STANDARD_STATUS", Name: "Active", Signature: true}, {Var: "UNSET", Name: ""},
	})
	if err != nil || len(ids) != 2 || ids["CTR_STATUS"] == 0 || ids["ET_STANDARD_STATUS"] == 0 {
		t.Fatalf("ids %v, err %v", ids, err)
	}
	_, err = c.ResolveStatuses(ctx, []threatq.StatusName{
		{Var: "CTR_STATUS", Name: "Reveiw"}, {Var: "ET_RETIRED_STATUS", Name: "expired", Signature: true}, {Var: "ET_STANDARD_STATUS", Name: "Active", Signature: true},
	})
	var unknown *threatq.UnknownStatusError
	if !errors.As(err, &unknown) || !errors.Is(err, threatq.ErrNotFound) {
		t.Fatalf("err = %v, want UnknownStatusError", err)
	}
	want := `CTR_STATUS "Reveiw": ThreatQ has no indicator status of that name (names match exactly); its indicator statuses are: Active, Expired, Indirect, Review, Whitelisted, False Positive` + "\n" +
		`ET_RETIRED_STATUS "expired": ThreatQ has no signature status of that name (names match exactly); its signature statuses are: Active, Expired, Indirect, Non-malicious, Review, Whitelisted`
	if err.Error() != want {
		t.Errorf("message:\n%s\nwant:\n%s", err, want)
	}
}

func TestConsumeIndicators(t *testing.T) {
	t.Parallel()
	s, c := simClient(t, tqsim.Options{}, nil)
	ctx := context.Background()
	ws := []threatq.IndicatorWrite{
		{Value: "1.2.3.4", Type: "IP Address", Status: "Active", Source: "Cisco CTR",
			Attributes: []threatq.Attribute{{Name: "Disposition", Value: "Malicious"}, {Name: "CTR Module", Value: "AMP"}}},
		{Value: "evil.example", Type: "FQDN", StatusID: s.StatusID("Review")},
	}
	ids, err := c.ConsumeIndicators(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	entries := s.Ledger.Len()
	if len(ids) != 2 || entries != 4 {
		t.Fatalf("ids %v, ledger %d entries", ids, entries)
	}
	again, err := c.ConsumeIndicators(ctx, ws)
	if err != nil || !slices.Equal(again, ids) || s.Ledger.Len() != entries {
		t.Errorf("resend: ids %v, err %v, ledger %d entries (want no new one)", again, err, s.Ledger.Len())
	}
	in, _ := s.Indicator(ids[0])
	if in.Status != "Active" || len(in.Attributes) != 2 || in.Attributes[0].Source != "Cisco CTR" {
		t.Errorf("stored %+v", in)
	}
	got, err := c.Indicator(ctx, ids[0])
	if err != nil || got.Value != "1.2.3.4" || got.Type != "IP Address" || got.Status != "Active" || len(got.Attributes) != 2 {
		t.Errorf("Indicator = %+v, %v", got, err)
	}
}

// bisect mirrors pkg/bus.Bisect: split a batch refused permanently.
func bisect(ctx context.Context, c *threatq.Client, ws []threatq.IndicatorWrite, failed *[]string) {
	_, err := c.ConsumeIndicators(ctx, ws)
	switch {
	case err == nil:
	case len(ws) == 1 || httpx.IsTransient(err):
		for _, w := range ws {
			*failed = append(*failed, w.Value)
		}
	default:
		bisect(ctx, c, ws[:len(ws)/2], failed)
		bisect(ctx, c, ws[len(ws)/2:], failed)
	}
}

func TestConsumeValidationBisects(t *testing.T) {
	t.Parallel()
	s, c := simClient(t, tqsim.Options{}, nil)
	s.RejectValue("poison")
	ctx := context.Background()
	var ws []threatq.IndicatorWrite
	for i := range 16 {
		w := threatq.IndicatorWrite{Value: fmt.Sprintf("host%d.example", i), Type: "FQDN"}
		if i == 11 {
			w.Attributes = []threatq.Attribute{{Name: "Note", Value: "poison-pill"}}
		}
		ws = append(ws, w)
	}
	_, err := c.ConsumeIndicators(ctx, ws)
	var ve *threatq.ValidationError
	if !errors.As(err, &ve) || httpx.IsTransient(err) || len(ve.Fields) == 0 {
		t.Fatalf("err = %v, want a permanent ValidationError with fields", err)
	}
	if strings.Contains(err.Error(), "poison-pill") {
		t.Errorf("error echoes the value: %q", err)
	}
	var failed []string
	bisect(ctx, c, ws, &failed)
	if !slices.Equal(failed, []string{"host11.example"}) || s.Len() != 15 {
		t.Errorf("failed %v, %d stored; want only host11 refused", failed, s.Len())
	}
}

func TestAttributes(t *testing.T) {
	t.Parallel()
	s, c := simClient(t, tqsim.Options{}, nil)
	ctx := context.Background()
	// Our rows, another feed's rows under the same names, and a row both
	// report.
	if err := s.Load([]tqsim.Indicator{{ID: 9, Value: "a.example", Type: "FQDN", Attributes: []tqsim.Attribute{
		{Name: "Disposition", Value: "Unknown", Source: "Cisco CTR"},
		{Name: "disposition", Value: "Suspicious", Source: "cisco ctr"},
		{Name: "Disposition", Value: "Clean", Source: "AlienVault OTX"},
		{Name: "Description", Value: "Scanner", Sources: []string{"AlienVault OTX", "Cisco CTR"}},
		{Name: "Severity", Value: "Low", Source: "Cisco CTR"},
		{Name: "Other", Value: "keep"},
	}}}); err != nil {
		t.Fatal(err)
	}
	const id = 9
	start := s.Ledger.Len()
	set := []threatq.Attribute{{Name: "Disposition", Value: "Malicious"}, {Name: "Confidence", Value: "High"}}
	if err := c.SetAttributes(ctx, id, set, "Cisco CTR"); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, e := range s.Ledger.Entries()[start:] {
		ops = append(ops, e.Op+" "+e.Name+"="+e.Value)
		if e.Op == "attribute.delete" && slices.ContainsFunc(e.Sources, func(src string) bool { return !strings.EqualFold(src, "Cisco CTR") }) {
			t.Errorf("deleted a row of other sources: %+v", e)
		}
	}
	want := []string{"attribute.add Disposition=Malicious", "attribute.add Confidence=High",
		"attribute.delete Disposition=Unknown", "attribute.delete disposition=Suspicious", "attribute.delete Severity=Low"}
	if !slices.Equal(ops, want) {
		t.Errorf("ledger = %q, want %q", ops, want)
	}
	n := s.Ledger.Len()
	if err := c.SetAttributes(ctx, id, set, "Cisco CTR"); err != nil || s.Ledger.Len() != n {
		t.Errorf("second SetAttributes: err %v, %d new entries", err, s.Ledger.Len()-n)
	}
	attrs, err := c.IndicatorAttributes(ctx, id)
	if err != nil || len(attrs) != 5 {
		t.Fatalf("attributes = %+v, %v", attrs, err)
	}
	for _, a := range attrs {
		if a.Name == "Other" {
			if err := c.DeleteIndicatorAttribute(ctx, id, a.ID); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteIndicatorAttribute(ctx, id, a.ID); err != nil {
				t.Errorf("deleting a deleted row: %v, want nil (404 counts as done)", err)
			}
		}
	}
	if len(s.Attributes(id)) != 4 {
		t.Errorf("stored rows = %+v", s.Attributes(id))
	}
	status, _ := c.IndicatorStatusID(ctx, "Whitelisted")
	for range 2 {
		if err := c.SetIndicatorStatus(ctx, id, status); err != nil {
			t.Fatal(err)
		}
	}
	if in, _ := s.Indicator(id); in.Status != "Whitelisted" || s.Ledger.Len() != n+2 {
		t.Errorf("status %q, %d new entries; want Whitelisted and one status.set", in.Status, s.Ledger.Len()-n-1)
	}
	if err := c.SetIndicatorStatus(ctx, id, 99999); err == nil || httpx.IsTransient(err) {
		t.Errorf("unknown status id: %v, want a permanent error", err)
	}
}

func TestAttributesPaged(t *testing.T) {
	t.Parallel()
	s, c := simClient(t, tqsim.Options{}, nil)
	var attrs []tqsim.Attribute
	for i := range 2300 {
		attrs = append(attrs, tqsim.Attribute{Name: "Seen", Value: fmt.Sprint(i)})
	}
	if err := s.Load([]tqsim.Indicator{{ID: 5, Value: "x.example", Type: "FQDN", Attributes: attrs}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.IndicatorAttributes(context.Background(), 5)
	if err != nil || len(got) != 2300 || s.Stats.Count("GET /api/indicators/{id}/attributes") != 3 {
		t.Errorf("%d rows in %d calls, %v", len(got), s.Stats.Count("GET /api/indicators/{id}/attributes"), err)
	}
}

func TestConsumeSignatures(t *testing.T) {
	t.Parallel()
	s, c := simClient(t, tqsim.Options{}, nil)
	ctx := context.Background()
	ws := []threatq.SignatureWrite{{Name: "ET TEST rule", Value: `alert tcp any any -> any any (msg:"ET TEST"; sid:1;)`,
		Type: "Snort", Status: "Active", Source: "Emerging Threats", Attributes: []threatq.Attribute{{Name: "SID", Value: "1"}}}}
	ids, err := c.ConsumeSignatures(ctx, ws)
	if err != nil || len(ids) != 1 {
		t.Fatalf("ids %v, err %v", ids, err)
	}
	n := s.Ledger.Len()
	// Consume leaves the existing signature's status, and says so; the
	// PUT sets it.
	ws[0].Status = "Expired"
	got, err := c.UpsertSignatures(ctx, ws)
	if err != nil || len(got) != 1 || got[0].ID != ids[0] || got[0].Existing == nil || !*got[0].Existing || got[0].StatusID != s.SignatureStatusID("Active") {
		t.Fatalf("upsert: %+v, %v", got, err)
	}
	expired, err := c.SignatureStatusID(ctx, "Expired")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.SetSignatureStatus(ctx, ids[0], expired); err != nil {
			t.Fatal(err)
		}
	}
	sigs := s.Signatures()
	if s.Ledger.Len() != n+1 || len(sigs) != 1 || sigs[0].Status != "Expired" || sigs[0].Sources[0] != "Emerging Threats" {
		t.Errorf("signatures %+v, %d new entries", sigs, s.Ledger.Len()-n)
	}
	big := make([]threatq.SignatureWrite, threatq.MaxConsumeSignatures+1)
	_, err = c.ConsumeSignatures(ctx, big)
	if !errors.Is(err, threatq.ErrTooMany) || httpx.IsTransient(err) || s.Stats.Count("POST /api/signatures/consume") != 2 {
		t.Errorf("oversize batch: %v", err)
	}
	_, err = c.ConsumeSignatures(ctx, []threatq.SignatureWrite{{Name: "x", Value: "y", Type: "Suricata"}})
	var ve *threatq.ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("unknown type: %v, want a ValidationError", err)
	}
}

// sampleCase is one file of shared/data/threatq and what it decodes to.
type sampleCase struct {
	file  string
	n     int
	total int64
	check func(t *testing.T, inds []threatq.Indicator)
	// notIndList files are checked by their own subtests.
	notIndList bool
}

// TestSharedSamples decodes every real response sample.
func TestSharedSamples(t *testing.T) {
	t.Parallel()
	dir := filepath.Dir(sharedtest.Path(t, "threatq/SOURCES.md"))
	tests := []sampleCase{
		{file: "elastic_ti_threatq_mock_query_hash_page1.json", n: 1, total: 4090, check: func(t *testing.T, inds []threatq.Indicator) {
			in := inds[0]
			if in.ID != 106767 || in.Type != "IP Address" || in.TypeID != 15 || in.Status != "Active" || len(in.Attributes) != 3 ||
				in.Attributes[0].ID != 4893068 || in.Sources[0] != "www.dan.me.uk Tor Node List" || in.UpdatedAt.Format(threatq.TimeLayout) != "2021-10-01 18:36:03" {
				t.Errorf("indicator = %+v", in)
			}
		}},
		{file: "elastic_ti_threatq_mock_query_hash_page2_empty.json", n: 0, total: 4090},
		{file: "xsoar_threatq_v2_mock_indicators_query_response.json", n: 1, total: 1, check: func(t *testing.T, inds []threatq.Indicator) {
			if in := inds[0]; in.Value != "foo@demisto.com" || in.Status != "Whitelisted" || in.StatusID != 5 || in.Type != "Email Address" {
				t.Errorf("indicator = %+v", in)
			}
		}},
		{file: "xsoar_threatq_v2_mock_indicator_create_response.json", n: 1, total: -1, check: func(t *testing.T, inds []threatq.Indicator) {
			if in := inds[0]; in.ID != 2019 || in.Score != 6 || len(in.Sources) != 2 || len(in.Attributes) != 2 || in.Attributes[1].ID != 2020 {
				t.Errorf("indicator = %+v", in)
			}
		}},
		{file: "xsoar_threatq_v2_mock_search_by_name_response.json", n: 3, total: -1},
		{file: "xsoar_threatq_v2_mock_indicator_status_1_active.json", n: 1, total: -1},
		{file: "xsoar_threatq_v2_mock_indicator_status_2_expired.json", n: 1, total: -1},
		{file: "xsoar_threatq_v2_mock_indicator_type_14_ip.json", n: 1, total: -1},
		{file: "xsoar_threatq_v2_mock_indicator_type_4_email.json", n: 1, total: -1},
		{file: "xsoar_threatq_v2_mock_event_type_1.json", n: 1, total: -1},
		{file: "xsoar_threatq_v2_mock_attachment_type_1.json", n: 1, total: -1},
		{file: "xsoar_threatq_v2_mock_token_response.json", n: 0, total: -1},
		{file: "elastic_ti_threatq_mock_token_response.json", n: 0, total: -1},
		{file: "splunk_soar_tq_mappings_objects_subset.json", notIndList: true},
		{file: "xsoar_threatq_v2_mock_error_responses.json", notIndList: true},
		{file: "beats_threatq_sample_indicators.ndjson", notIndList: true},
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Name() != "SOURCES.md" && !slices.ContainsFunc(tests, func(tt sampleCase) bool { return tt.file == f.Name() }) {
			t.Errorf("sample %s is not covered", f.Name())
		}
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if tt.notIndList {
				return // covered below
			}
			inds, total, err := threatq.DecodeIndicators(b)
			if err != nil || len(inds) != tt.n || total != tt.total {
				t.Fatalf("DecodeIndicators: %d indicators, total %d, %v; want %d, %d", len(inds), total, err, tt.n, tt.total)
			}
			if tt.check != nil {
				tt.check(t, inds)
			}
		})
	}
	t.Run("beats ndjson", func(t *testing.T) {
		t.Parallel()
		b, err := os.ReadFile(filepath.Join(dir, "beats_threatq_sample_indicators.ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		for i, line := range lines {
			in, err := threatq.DecodeIndicator([]byte(line))
			if err != nil || in.Status != "Expired" || in.Type != "IP Address" || in.Score != 4 || len(in.Attributes) < 4 || in.Sources[0] != "AlienVault OTX" {
				t.Errorf("line %d: %+v, %v", i, in, err)
			}
		}
		if len(lines) != 4 {
			t.Errorf("%d lines", len(lines))
		}
	})
	t.Run("error shapes", func(t *testing.T) {
		t.Parallel()
		b, err := os.ReadFile(filepath.Join(dir, "xsoar_threatq_v2_mock_error_responses.json"))
		if err != nil {
			t.Fatal(err)
		}
		var shapes []json.RawMessage
		if err := json.Unmarshal(b, &shapes); err != nil {
			t.Fatal(err)
		}
		for i, shape := range shapes {
			c := fakeClient(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write(shape)
			})
			_, err := c.ConsumeIndicators(context.Background(), []threatq.IndicatorWrite{{Value: "v", Type: "FQDN"}})
			var ve *threatq.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 {
				t.Errorf("shape %d: %v, want a ValidationError", i, err)
			}
		}
	})
	t.Run("objects subset", func(t *testing.T) {
		t.Parallel()
		b, err := os.ReadFile(filepath.Join(dir, "splunk_soar_tq_mappings_objects_subset.json"))
		if err != nil {
			t.Fatal(err)
		}
		var sub struct {
			Signature struct {
				Statuses []struct {
					ID   int    `json:"id"`
					Name string `json:"name"`
				} `json:"statuses"`
			} `json:"signature"`
		}
		if err := json.Unmarshal(b, &sub); err != nil {
			t.Fatal(err)
		}
		// Served as /api/objects, the client finds the signature statuses.
		body, _ := json.Marshal(map[string]any{"data": []any{map[string]any{"collection": "signatures", "name": "signature", "statuses": sub.Signature.Statuses}}})
		c := fakeClient(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/objects" {
				_, _ = w.Write(body)
				return
			}
			w.WriteHeader(http.StatusNotFound)
		})
		id, err := c.SignatureStatusID(context.Background(), "Non-malicious")
		if err != nil || id != 4 {
			t.Errorf("id %d, %v", id, err)
		}
		// Where /api/objects is refused (any 4xx), the statuses route.
		statuses, _ := json.Marshal(map[string]any{"data": sub.Signature.Statuses})
		c = fakeClient(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/signature/statuses" {
				_, _ = w.Write(statuses)
				return
			}
			w.WriteHeader(http.StatusForbidden)
		})
		if id, err := c.SignatureStatusID(context.Background(), "Non-malicious"); err != nil || id != 4 {
			t.Errorf("fallback: id %d, %v", id, err)
		}
	})
}

func TestStaleRows(t *testing.T) {
	t.Parallel()
	const ours = "Cisco CTR"
	row := func(id int64, name, value string, srcs ...string) threatq.Attribute {
		return threatq.Attribute{ID: id, Name: name, Value: value, Sources: srcs}
	}
	written := []threatq.Attribute{{Name: "Disposition", Value: "Malicious"}, {Name: "Severity", Value: "High"}}
	tests := []struct {
		name string
		rows []threatq.Attribute
		want []int64
	}{
		{"ours with another value", []threatq.Attribute{row(1, "Disposition", "Clean", ours)}, []int64{1}},
		{"ours under a name no longer written", []threatq.Attribute{row(2, "Origin", "Talos", ours)}, []int64{2}},
		{"ours as written", []threatq.Attribute{row(3, "Disposition", "Malicious", ours)}, nil},
		{"written, name in another case", []threatq.Attribute{row(4, " severity ", "High", ours)}, nil},
		{"our source in another case", []threatq.Attribute{row(5, "Severity", "Low", "cisco ctr")}, []int64{5}},
		{"another feed's row", []threatq.Attribute{row(6, "Disposition", "Clean", "AlienVault OTX")}, nil},
		{"a row both report", []threatq.Attribute{row(7, "Severity", "Low", "AlienVault OTX", ours)}, nil},
		{"a row listing no source", []threatq.Attribute{row(8, "Severity", "Low")}, nil},
		{"a value differing in case is another value", []threatq.Attribute{row(9, "Disposition", "malicious", ours)}, []int64{9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := threatq.StaleRows(tt.rows, written, ours); !slices.Equal(got, tt.want) {
				t.Errorf("StaleRows = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSetIndicatorStatusRows: the status PUT asks for the rows with their
// sources, and its answer counts as read only when every row carries
// them; any other answer leaves the rows to be read.
func TestSetIndicatorStatusRows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		answer    string
		wantShown bool
		want      []threatq.Attribute
	}{
		{"rows with sources",
			`{"data":{"id":7,"status_id":3,"attributes":[{"id":11,"name":"Disposition","value":"Malicious","sources":[{"id":1,"name":"Ours"}]},{"id":12,"name":"Confidence","value":5,"sources":[]}]}}`,
			true, []threatq.Attribute{{ID: 11, Name: "Disposition", Value: "Malicious", Sources: []string{"Ours"}}, {ID: 12, Name: "Confidence", Value: "5", Sources: []string{}}}},
		{"no rows", `{"data":{"id":7,"status_id":3,"attributes":[]}}`, true, []threatq.Attribute{}},
		{"empty rows as an object", `{"data":{"id":7,"status_id":3,"attributes":{}}}`, true, []threatq.Attribute{}},
		{"attributes not embedded", `{"data":{"id":7,"status_id":3}}`, false, nil},
		{"a row without its sources", `{"data":{"id":7,"attributes":[{"id":11,"name":"Disposition","value":"Malicious","sources":[{"name":"Ours"}]},{"id":12,"name":"Severity","value":"Low"}]}}`, false, nil},
		{"sources null", `{"data":{"id":7,"attributes":[{"id":11,"name":"Disposition","value":"Malicious","sources":null}]}}`, false, nil},
		{"answer of another shape", `{"data":[{"id":7,"attributes":[]}]}`, false, nil},
		{"no body", ``, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var asked string
			c := fakeClient(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPut || r.URL.Path != "/api/indicators/7" {
					http.NotFound(w, r)
					return
				}
				asked = r.URL.Query().Get("with")
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.answer))
			})
			rows, shown, err := c.SetIndicatorStatusRows(context.Background(), 7, 3)
			if err != nil {
				t.Fatal(err)
			}
			if asked != "attributes.sources" {
				t.Errorf("asked with=%q, want attributes.sources", asked)
			}
			if shown != tc.wantShown || !slices.EqualFunc(rows, tc.want, func(a, b threatq.Attribute) bool {
				return a.ID == b.ID && a.Name == b.Name && a.Value == b.Value && slices.Equal(a.Sources, b.Sources)
			}) || (tc.want != nil) != (rows != nil) {
				t.Errorf("rows %+v shown %v, want %+v shown %v", rows, shown, tc.want, tc.wantShown)
			}
		})
	}
}

// TestQueryRowSources: a query asked for the rows' sources gives each row
// its own (empty when it lists none); one not asked gives none, so a
// reader cannot mistake "not shown" for "nobody's".
func TestQueryRowSources(t *testing.T) {
	t.Parallel()
	s, c := simClient(t, tqsim.Options{}, nil)
	if err := s.Load([]tqsim.Indicator{{ID: 9, Value: "a.example", Type: "FQDN", Attributes: []tqsim.Attribute{
		{Name: "Disposition", Value: "Malicious", Source: "Cisco CTR"},
		{Name: "Description", Value: "Scanner", Sources: []string{"AlienVault OTX", "Cisco CTR"}},
		{Name: "Other", Value: "keep"},
	}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		rowSources bool
		want       map[string][]string
	}{
		{"asked", true, map[string][]string{"Malicious": {"Cisco CTR"}, "Scanner": {"AlienVault OTX", "Cisco CTR"}, "keep": {}}},
		{"not asked", false, map[string][]string{"Malicious": nil, "Scanner": nil, "keep": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []threatq.Indicator
			if err := c.Query(context.Background(), threatq.Query{RowSources: tc.rowSources}, func(p []threatq.Indicator) error {
				got = append(got, p...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || len(got[0].Attributes) != 3 {
				t.Fatalf("indicators %+v", got)
			}
			for _, a := range got[0].Attributes {
				want := tc.want[a.Value]
				sorted := slices.Sorted(slices.Values(a.Sources))
				if (a.Sources == nil) != (want == nil) || !slices.Equal(sorted, want) {
					t.Errorf("row %s=%s: sources %#v, want %#v", a.Name, a.Value, a.Sources, want)
				}
			}
		})
	}
}
