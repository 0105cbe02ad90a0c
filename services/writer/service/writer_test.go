package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
	"github.com/tqflow/tqflow/pkg/threatq"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/writer/internal/write"
	"github.com/tqflow/tqflow/services/writer/service"
)

const ours = "Cisco Threat Response Enrichment"

// simWriter is a writer on a ThreatQ simulator.
func simWriter(t *testing.T) (*tqsim.Server, *write.Writer) {
	t.Helper()
	return simWriterWith(t, tqsim.Options{Seed: 5})
}

// simWriterWith is a writer on a ThreatQ simulator with opts.
func simWriterWith(t *testing.T, opts tqsim.Options) (*tqsim.Server, *write.Writer) {
	t.Helper()
	s := tqsim.New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	u := tqsim.DefaultUser
	tq, err := threatq.New(threatq.Config{URL: srv.URL, Email: u.Email, Password: config.Secret(u.Password), ClientID: config.Secret(u.ClientID)})
	if err != nil {
		t.Fatal(err)
	}
	return s, service.NewWriter(tq, &service.Stats{})
}

func message(t *testing.T, w schemas.Write) *bus.Message {
	t.Helper()
	w.Schema, w.Instance = schemas.WriteV1, "default"
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Message{Data: b}
}

func indicatorWrite(t *testing.T, iw schemas.IndicatorWrite) *bus.Message {
	return message(t, schemas.Write{Kind: schemas.KindIndicator, Indicator: &iw})
}

func rowsOf(s *tqsim.Server, id int64) []string {
	var out []string
	for _, a := range s.Attributes(id) {
		out = append(out, a.Name+"="+a.Value+" "+jsonList(a.Sources))
	}
	sort.Strings(out)
	return out
}

func jsonList(v []string) string { b, _ := json.Marshal(v); return string(b) }

// TestWriterOwnRowsAndStatus: a write replaces only the rows listing our
// source alone, keeps every row another feed reports, and PUTs the status
// only where it differs; a redelivery changes nothing. Where the status
// PUT's answer shows the rows with their sources, they are not read
// again; where ThreatQ ignores "with" on PUT, they are, and the outcome
// is the same.
func TestWriterOwnRowsAndStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   tqsim.Options
		reads  int64 // GET …/attributes in the first pass
		reads2 int64 // and in the redelivery (no PUT: every row read)
	}{
		{"put answers rows", tqsim.Options{Seed: 5}, 1, 3},
		{"put ignores with", tqsim.Options{Seed: 5, PutIgnoresWith: true}, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, w := simWriterWith(t, tc.opts)
			testWriterOwnRowsAndStatus(t, s, w, tc.reads, tc.reads2)
		})
	}
}

func testWriterOwnRowsAndStatus(t *testing.T, s *tqsim.Server, w *write.Writer, reads, reads2 int64) {
	t.Helper()
	const rowReads = "GET /api/indicators/{id}/attributes"
	if err := s.Load([]tqsim.Indicator{
		{ID: 1, Value: "198.51.100.7", Type: "IP Address", Status: "Active", Attributes: []tqsim.Attribute{
			{Name: "Disposition", Value: "Unknown", Source: ours},
			{Name: "Description", Value: "Old", Source: ours},
			{Name: "Description", Value: "Feed text", Source: "AlienVault OTX"},
			{Name: "Confidence", Value: "Low", Sources: []string{"AlienVault OTX", ours}},
			{Name: "Severity", Value: "Low", Source: "AlienVault OTX"},
			{Name: "CTR Module", Value: "Old module", Source: ours},
		}},
		// Fetched as Review, but Expired in ThreatQ by now.
		{ID: 2, Value: "bad.example", Type: "FQDN", Status: "Expired"},
		// Already at the status: no PUT.
		{ID: 3, Value: "ok.example", Type: "FQDN", Status: "Review"},
	}); err != nil {
		t.Fatal(err)
	}
	attrs := []schemas.Attribute{{Name: "Disposition", Value: "Malicious"}, {Name: "Description", Value: "New"}, {Name: "Confidence", Value: "High"}}
	ms := []*bus.Message{
		indicatorWrite(t, schemas.IndicatorWrite{ID: 1, Value: "198.51.100.7", Type: "IP Address", Status: "Review", FetchedStatus: "Active", Source: ours, Attributes: attrs}),
		indicatorWrite(t, schemas.IndicatorWrite{ID: 2, Value: "bad.example", Type: "FQDN", Status: "Review", FetchedStatus: "Review", Source: ours, Attributes: attrs[:1]}),
		indicatorWrite(t, schemas.IndicatorWrite{ID: 3, Value: "ok.example", Type: "FQDN", Status: "Review", FetchedStatus: "Review", Source: ours, Attributes: attrs[:1]}),
	}
	for _, err := range w.Handle(context.Background(), ms) {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		`Confidence=High ["Cisco Threat Response Enrichment"]`,
		`Confidence=Low ["AlienVault OTX","Cisco Threat Response Enrichment"]`,
		`Description=Feed text ["AlienVault OTX"]`,
		`Description=New ["Cisco Threat Response Enrichment"]`,
		`Disposition=Malicious ["Cisco Threat Response Enrichment"]`,
		`Severity=Low ["AlienVault OTX"]`,
	}
	if got := rowsOf(s, 1); !slices.Equal(got, want) {
		t.Errorf("rows:\n%q\nwant\n%q", got, want)
	}
	var deleted []string
	for _, e := range s.Ledger.Entries() {
		if e.Op == "attribute.delete" {
			deleted = append(deleted, e.Name+"="+e.Value)
			if !slices.Equal(e.Sources, []string{ours}) {
				t.Errorf("deleted a row of other sources: %+v", e)
			}
		}
	}
	sort.Strings(deleted)
	if want := []string{"CTR Module=Old module", "Description=Old", "Disposition=Unknown"}; !slices.Equal(deleted, want) {
		t.Errorf("deleted %q, want %q", deleted, want)
	}
	for id, st := range map[int64]string{1: "Review", 2: "Review", 3: "Review"} {
		if in, _ := s.Indicator(id); in.Status != st {
			t.Errorf("indicator %d: status %q, want %q", id, in.Status, st)
		}
	}
	if n := s.Stats.Count("PUT /api/indicators/{id}"); n != 2 {
		t.Errorf("%d status PUTs, want 2 (indicators 1 and 2; 3 has it)", n)
	}
	if n := s.Stats.Count(rowReads); n != reads {
		t.Errorf("%d reads of the rows, want %d", n, reads)
	}
	// A redelivery: nothing changes, no PUT.
	n := s.Ledger.Len()
	for _, err := range w.Handle(context.Background(), ms) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.Ledger.Len() != n || s.Stats.Count("PUT /api/indicators/{id}") != 2 {
		t.Errorf("redelivery: %d new ledger entries, %d PUTs", s.Ledger.Len()-n, s.Stats.Count("PUT /api/indicators/{id}"))
	}
	if got := s.Stats.Count(rowReads) - reads; got != reads2 {
		t.Errorf("redelivery: %d reads of the rows, want %d", got, reads2)
	}
}

// TestWriterSignatureStatus: a new signature gets its status from consume,
// an existing one by PUT, once; a status ThreatQ does not have, as
// spelt, fails the write permanently.
func TestWriterSignatureStatus(t *testing.T) {
	t.Parallel()
	s, w := simWriter(t)
	rule := `alert tcp any any -> any any (msg:"ET TEST"; sid:2000001; rev:1;)`
	sig := func(status, last string) *bus.Message {
		return message(t, schemas.Write{Kind: schemas.KindSignature, Signature: &schemas.SignatureWrite{
			Name: "ET TEST", Value: rule, Type: "Snort", Status: status, LastStatus: last, Source: "Emerging Threats"}})
	}
	ctx := context.Background()
	for _, step := range []struct {
		m    *bus.Message
		want string
		puts int64
	}{
		{sig("Active", ""), "Active", 0},
		{sig("Active", "Active"), "Active", 0},
		{sig("Expired", "Active"), "Expired", 1},
		{sig("Expired", "Active"), "Expired", 1}, // redelivered: the answer shows Expired
	} {
		if errs := w.Handle(ctx, []*bus.Message{step.m}); errs[0] != nil {
			t.Fatal(errs[0])
		}
		sigs := s.Signatures()
		if len(sigs) != 1 || sigs[0].Status != step.want || s.Stats.Count("PUT /api/signatures/{id}") != step.puts {
			t.Fatalf("signatures %+v, %d PUTs; want one at %s, %d PUTs", sigs, s.Stats.Count("PUT /api/signatures/{id}"), step.want, step.puts)
		}
	}
	errs := w.Handle(ctx, []*bus.Message{sig("expired", "Expired")})
	if errs[0] == nil || !bus.IsPermanent(errs[0]) {
		t.Errorf("misspelt status: %v, want a permanent error", errs[0])
	}
}

// TestWriterIsolatesARefusedValue: ThreatQ refusing one value of a batch
// fails that write alone, permanently; the others are written, and a
// malformed message is refused before anything is asked of ThreatQ.
func TestWriterIsolatesARefusedValue(t *testing.T) {
	t.Parallel()
	s, w := simWriter(t)
	var seed []tqsim.Indicator
	var ms []*bus.Message
	for i := range int64(8) {
		v := fmt.Sprintf("host%d.example", i)
		if i == 5 {
			v = "poison.example"
		}
		seed = append(seed, tqsim.Indicator{ID: 10 + i, Value: v, Type: "FQDN", Status: "Review"})
		ms = append(ms, indicatorWrite(t, schemas.IndicatorWrite{ID: 10 + i, Value: v, Type: "FQDN", Status: "Review", FetchedStatus: "Review",
			Source: ours, Attributes: []schemas.Attribute{{Name: "Disposition", Value: "Malicious"}}}))
	}
	if err := s.Load(seed); err != nil {
		t.Fatal(err)
	}
	s.RejectValue("poison")
	ms = append(ms, &bus.Message{Data: []byte(`{"schema":"write.v1","kind":"indicator"}`)})
	errs := w.Handle(context.Background(), ms)
	for i, err := range errs {
		switch i {
		case 5, 8:
			if err == nil || !bus.IsPermanent(err) {
				t.Errorf("message %d: %v, want a permanent error", i, err)
			}
		default:
			if err != nil {
				t.Errorf("message %d: %v", i, err)
			}
		}
	}
	if got := w.Stats.Indicators.Load(); got != 7 {
		t.Errorf("%d indicators written, want 7", got)
	}
	if w.Stats.Invalid.Load() != 1 || w.Stats.Failed.Load() != 2 {
		t.Errorf("invalid %d, failed %d; want 1 and 2", w.Stats.Invalid.Load(), w.Stats.Failed.Load())
	}
	for i := range int64(8) {
		if got := len(s.Attributes(10 + i)); got != map[bool]int{true: 0, false: 1}[i == 5] {
			t.Errorf("indicator %d: %d rows", 10+i, got)
		}
	}
}

// TestWriterByValue: a write known by value and type only (an ET IP list
// address, ID 0) creates or finds the indicator, sets the status of an
// existing one, and removes no row: rows under our source name on an
// indicator we never wrote are not ours to judge.
func TestWriterByValue(t *testing.T) {
	t.Parallel()
	const et = "Emerging Threats"
	s, w := simWriter(t)
	if err := s.Load([]tqsim.Indicator{{ID: 40, Value: "203.0.113.9", Type: "IP Address", Status: "Active",
		Attributes: []tqsim.Attribute{{Name: "Note", Value: "kept", Source: et}}}}); err != nil {
		t.Fatal(err)
	}
	ms := []*bus.Message{
		indicatorWrite(t, schemas.IndicatorWrite{Value: "203.0.113.9", Type: "IP Address", Status: "Review", Source: et, Attributes: []schemas.Attribute{}}),
		indicatorWrite(t, schemas.IndicatorWrite{Value: "203.0.113.10", Type: "IP Address", Status: "Review", Source: et, Attributes: []schemas.Attribute{}}),
	}
	for i, err := range w.Handle(context.Background(), ms) {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	in, ok := s.Indicator(40)
	if !ok || in.Status != "Review" {
		t.Errorf("existing indicator: %+v, want status Review", in)
	}
	if got := rowsOf(s, 40); !slices.Equal(got, []string{`Note=kept ["Emerging Threats"]`}) {
		t.Errorf("existing indicator's rows: %q", got)
	}
	for _, e := range s.Ledger.Entries() {
		if e.Op == "attribute.delete" {
			t.Errorf("deleted a row: %+v", e)
		}
	}
	if n := s.Stats.Count("GET /api/indicators/{id}/attributes"); n != 0 {
		t.Errorf("%d reads of rows, want none", n)
	}
	if w.Stats.Indicators.Load() != 2 {
		t.Errorf("%d indicators written, want 2", w.Stats.Indicators.Load())
	}
}

// TestWriterStatusPutFails: a status PUT ThreatQ answers with a 503 fails
// that write transiently, for the runner to retry; the upsert before it
// stands, and the retry finishes the job without writing anything twice.
func TestWriterStatusPutFails(t *testing.T) {
	t.Parallel()
	s, w := simWriter(t)
	if err := s.Load([]tqsim.Indicator{{ID: 50, Value: "198.51.100.50", Type: "IP Address", Status: "Active"}}); err != nil {
		t.Fatal(err)
	}
	m := indicatorWrite(t, schemas.IndicatorWrite{ID: 50, Value: "198.51.100.50", Type: "IP Address", Status: "Review", FetchedStatus: "Active",
		Source: ours, Attributes: []schemas.Attribute{{Name: "Disposition", Value: "Malicious"}}})
	s.Faults.Set(sim.Faults{ErrorRate: 1, ErrorStatus: 503, Methods: []string{http.MethodPut}})
	err := w.Handle(context.Background(), []*bus.Message{m})[0]
	if err == nil || bus.IsPermanent(err) {
		t.Fatalf("status PUT answered 503: %v, want a transient error", err)
	}
	if in, _ := s.Indicator(50); in.Status != "Active" || len(s.Attributes(50)) != 1 {
		t.Errorf("after the failed PUT: %+v, rows %q", in, rowsOf(s, 50))
	}
	s.Faults.Set(sim.Faults{})
	n := s.Ledger.Len()
	if err := w.Handle(context.Background(), []*bus.Message{m})[0]; err != nil {
		t.Fatal(err)
	}
	if in, _ := s.Indicator(50); in.Status != "Review" {
		t.Errorf("after the retry: status %q, want Review", in.Status)
	}
	if got := ledgerOps(s, n); !slices.Equal(got, []string{"status.set"}) {
		t.Errorf("the retry wrote %q, want the status alone", got)
	}
}

// ledgerOps returns the operations of the ledger's entries from the nth.
func ledgerOps(s *tqsim.Server, from int) []string {
	var out []string
	for _, e := range s.Ledger.Entries()[from:] {
		out = append(out, e.Op)
	}
	return out
}
