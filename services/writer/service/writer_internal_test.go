package service

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"sort"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
	"github.com/tqflow/tqflow/pkg/threatq"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/writer/internal/write"
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
	return s, &write.Writer{ThreatQ: adapter{tq}, Stats: &write.Stats{}}
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
