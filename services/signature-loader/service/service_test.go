package service_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5" //nolint:gosec // ET's change marker, as in the fetcher.
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/pkg/threatq"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/signature-loader/service"
)

func testConfig() service.Config {
	return service.Config{
		Instance: "default", StandardStatus: "Active", NonStandardStatus: "Review", RetiredStatus: "Expired", Source: service.DefaultSource,
		SuricataType: "Suricata",
		ThreatQ:      threatq.Config{URL: "https://threatq.example", ClientID: "id", ClientSecret: "secret"},
		WorkerConfig: bus.WorkerConfig{Concurrency: 1, BatchSize: 1, MaxAckPending: 64, MaxDeliver: 3, DrainTimeout: 5 * time.Second},
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      func(*service.Config)
		catalog  service.StaticCatalog
		want     service.Resolved
		wantErrs []string
	}{
		{
			name: "stock ThreatQ: Suricata falls back to Snort", cfg: func(c *service.Config) { c.NonStandardStatus = "Non-malicious" },
			catalog: service.StockCatalog(),
			want: service.Resolved{StandardStatus: "Active", NonStandardStatus: "Non-malicious", RetiredStatus: "Expired",
				SnortType: "Snort", SuricataType: "Snort", SuricataFallback: true},
		},
		{
			// Status names match exactly, as ThreatQ's SDK resolves them.
			name: "misspelt status", cfg: func(c *service.Config) { c.NonStandardStatus, c.RetiredStatus = "non-MALICIOUS", "Retired" },
			catalog:  service.StockCatalog(),
			wantErrs: []string{`ET_NONSTANDARD_STATUS "non-MALICIOUS"`, `ET_RETIRED_STATUS "Retired"`, "statuses are: Active, Expired, Inactive, Indirect, Non-malicious, Review, Whitelisted"},
		},
		{
			name: "custom Suricata type", catalog: service.StaticCatalog{Types: []string{"snort", "suricata"}, Statuses: []string{"Active", "Review", "Expired"}},
			want: service.Resolved{StandardStatus: "Active", NonStandardStatus: "Review", RetiredStatus: "Expired", SnortType: "snort", SuricataType: "suricata"},
		},
		{
			name:     "unknown statuses and no Snort",
			cfg:      func(c *service.Config) { c.StandardStatus, c.NonStandardStatus = "Enabled", "Disabled" },
			catalog:  service.StaticCatalog{Types: []string{"YARA"}, Statuses: []string{"Active", "Review"}},
			wantErrs: []string{`ET_STANDARD_STATUS "Enabled"`, `ET_NONSTANDARD_STATUS "Disabled"`, "statuses are: Active, Review", "no Snort signature type"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testConfig()
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			got, err := service.Resolve(context.Background(), c, tt.catalog)
			if len(tt.wantErrs) > 0 {
				var ce *config.Error
				if !errors.As(err, &ce) {
					t.Fatalf("error %v, want a *config.Error", err)
				}
				for _, w := range tt.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	c := testConfig()
	c.Instance, c.StandardStatus, c.Concurrency = "a.b", " ", 0
	err := c.Validate()
	for _, w := range []string{"INSTANCE", "ET_STANDARD_STATUS", "LOADER_CONCURRENCY"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not name %s", err, w)
		}
	}
	if err := testConfig().Validate(); err != nil {
		t.Error(err)
	}
}

// valid returns c after checking it is valid: Run takes its configuration
// as valid, as config.Parse returns it.
func valid(t testing.TB, c service.Config) service.Config {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	return c
}

// tarball returns a gzipped tar holding rules/<name> with content.
func tarball(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "rules/" + name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// syncBuffer is a log sink for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

type harness struct {
	b       *bus.Bus
	objs    jetstream.ObjectStore
	settled atomic.Int64
	logs    *syncBuffer
	writes  int
}

func newHarness(t *testing.T, c service.Config) *harness {
	t.Helper()
	c = valid(t, c)
	h := &harness{b: bustest.New(t), logs: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	objs, err := h.b.ObjectStore(ctx, bus.ObjectRulesets)
	if err != nil {
		t.Fatal(err)
	}
	h.objs = objs
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, c, h.b, service.StockCatalog(), slog.New(slog.NewTextHandler(h.logs, nil)), &service.Stats{},
			func(st bus.Settlement) {
				if st.Outcome != bus.Acked {
					t.Errorf("ruleset message %s: %v", st.Outcome, st.Err)
				}
				h.settled.Add(1)
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loader: %v", err)
		}
	})
	return h
}

// load stores a one-file ruleset and publishes its ruleset.v1, waits for
// the loader, and returns the signature writes it made.
func (h *harness) load(t *testing.T, source, flavor, file, content string) []schemas.SignatureWrite {
	t.Helper()
	ctx := context.Background()
	tgz := tarball(t, file, content)
	sum := md5.Sum(tgz) //nolint:gosec // See the import.
	md := hex.EncodeToString(sum[:])
	if _, err := h.objs.PutBytes(ctx, md+".tar.gz", tgz); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(schemas.Ruleset{Schema: schemas.RulesetV1, Instance: "default", Source: source, Flavor: flavor,
		MD5: md, Object: md + ".tar.gz", File: "rules/" + file})
	if err != nil {
		t.Fatal(err)
	}
	before := h.settled.Load()
	if err := h.b.Publish(ctx, bus.Outgoing{Subject: bus.RulesetSubject("default"), ID: "default:" + md + ":" + file, Data: data}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, func() bool { return h.settled.Load() != before }, 30*time.Second, "the loader to settle the ruleset")
	st, err := h.b.JetStream().Stream(ctx, bus.StreamWrites)
	if err != nil {
		t.Fatal(err)
	}
	var out []schemas.SignatureWrite
	for seq := uint64(h.writes + 1); ; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var w schemas.Write
		if err := schemas.Decode(m.Data, &w); err != nil {
			t.Fatal(err)
		}
		out = append(out, *w.Signature)
		h.writes++
	}
	return out
}

const ruleFmt = `alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"ET MALWARE Test %s"; flow:established,to_server; content:"x"; reference:url,example.com/a; reference:cve,2017-0144; classtype:trojan-activity; sid:2000100; rev:%d; metadata:former_category TROJAN, signature_severity Major;)`

func rule(status string, rev int) string {
	r := strings.Replace(strings.Replace(ruleFmt, "%s", status, 1), "%d", strconv.Itoa(rev), 1)
	return r + "\n"
}

func TestLoaderIncrementalAndOverlap(t *testing.T) {
	t.Parallel()
	c := testConfig()
	c.IncludeNonStandard = true
	h := newHarness(t, c)
	const garbage = "not a rule at all (\nalert tcp any any -> any any (msg:\"no sid\"; rev:1;)\n"
	steps := []struct {
		name, source, flavor, file, content string
		want                                []string // statuses written, in order
		wantType                            string
	}{
		{"open rev 5", "open", "suricata-5.0", "emerging-malware.rules", garbage + rule("one", 5), []string{"Active"}, "Snort"},
		{"open again, unchanged", "open", "suricata-5.0", "emerging-malware.rules", rule("one", 5) + "# new comment\n", nil, ""},
		// Pro's rev 6 is new text, so a new signature; open's rev 5 is
		// retired, its text read from open's own file.
		{"pro rev 6 wins", "pro", "suricata-5.0", "malware.rules", rule("pro", 6), []string{"Active", "Expired"}, "Snort"},
		{"open rev 5 is older", "open", "suricata-5.0", "emerging-malware.rules", rule("one", 5) + "\n", nil, ""},
		{"pro disables it", "pro", "suricata-5.0", "malware.rules", "#" + rule("pro", 6), []string{"Review"}, "Snort"},
		// Rev 7 retires pro's rev 6, found in pro's file.
		{"snort flavour", "open", "snort-2.9.0", "emerging-malware.rules", rule("snort", 7), []string{"Active", "Expired"}, "Snort"},
	}
	for _, s := range steps {
		got := h.load(t, s.source, s.flavor, s.file, s.content)
		var statuses []string
		for _, w := range got {
			statuses = append(statuses, w.Status)
			if w.Type != s.wantType {
				t.Errorf("%s: type %q, want %q", s.name, w.Type, s.wantType)
			}
		}
		if strings.Join(statuses, ",") != strings.Join(s.want, ",") {
			t.Fatalf("%s: wrote %v, want %v", s.name, statuses, s.want)
		}
		retired := map[string]struct{ value, last string }{
			"pro rev 6 wins": {rule("one", 5), "Active"},
			"snort flavour":  {rule("pro", 6), "Review"},
		}[s.name]
		for _, w := range got {
			if w.Status == "Expired" && (w.Value+"\n" != retired.value || w.LastStatus != retired.last) {
				t.Errorf("%s: retired %q (last status %q), want %q, last %s", s.name, w.Value, w.LastStatus, retired.value, retired.last)
			}
		}
	}
	if n := strings.Count(h.logs.String(), "no Suricata signature type"); n != 1 {
		t.Errorf("the Suricata fallback was said %d times, want once:\n%s", n, h.logs)
	}
	if !strings.Contains(h.logs.String(), "rules/emerging-malware.rules:1:") || !strings.Contains(h.logs.String(), "rules/emerging-malware.rules:2:") {
		t.Errorf("bad lines not logged with file:line:\n%s", h.logs)
	}
}

func TestLoaderSignatureFields(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig())
	got := h.load(t, "open", "suricata-5.0", "emerging-malware.rules", rule("fields", 3)+"#"+rule("off", 1))
	if len(got) != 1 {
		t.Fatalf("%d writes, want 1 (the disabled rule is non-standard, not included)", len(got))
	}
	w := got[0]
	if w.Name != "ET MALWARE Test fields" || !strings.HasPrefix(w.Value, "alert http") || w.Status != "Active" || w.Source != "Emerging Threats" {
		t.Errorf("write %+v", w)
	}
	var attrs []string
	for _, a := range w.Attributes {
		attrs = append(attrs, a.Name+"="+a.Value)
	}
	want := "SID=2000100|Revision=3|Classtype=trojan-activity|Category=MALWARE|Reference=url,example.com/a|Reference=cve,2017-0144|Metadata=former_category TROJAN|Metadata=signature_severity Major"
	if strings.Join(attrs, "|") != want {
		t.Errorf("attributes\n%s\nwant\n%s", strings.Join(attrs, "|"), want)
	}
}

// sid returns r with its sid replaced.
func sid(r string, sid int) string {
	return strings.Replace(r, "sid:2000100;", "sid:"+strconv.Itoa(sid)+";", 1)
}

// TestLoaderDisabledRuleWithNonStandardOff: with non-standard rules not
// included, a rule loaded as standard that ET then ships disabled is
// written once with the non-standard status, and back when re-enabled; a
// disabled rule never loaded is never written.
func TestLoaderDisabledRuleWithNonStandardOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig())
	never := "#" + sid(rule("never loaded", 1), 2000200)
	// Each step's content differs: the same tarball twice is one message.
	steps := []struct {
		name, content string
		want          []string // statuses written, in order
	}{
		{"enabled", rule("one", 5) + never, []string{"Active"}},
		{"ET disables it", "#" + rule("one", 5) + never, []string{"Review"}},
		{"still disabled", "#" + rule("one", 5) + never + "# new comment\n", nil},
		{"re-enabled", rule("one", 5) + never + "# re-enabled\n", []string{"Active"}},
		{"re-enabled again", rule("one", 5) + never + "\n", nil},
		// New text, a new signature: the previous revision's is retired.
		{"disabled with a new rev", "#" + rule("one", 6) + never, []string{"Review", "Expired"}},
		{"disabled, rev 6 again", "#" + rule("one", 6) + never + "\n", nil},
		{"a disabled rev 7 of a rule now non-standard", "#" + rule("one", 7) + never, nil},
	}
	for _, s := range steps {
		got := h.load(t, "open", "suricata-5.0", "emerging-malware.rules", s.content)
		var statuses []string
		for _, w := range got {
			statuses = append(statuses, w.Status)
			if !strings.Contains(w.Value, "sid:2000100;") {
				t.Errorf("%s: wrote %s", s.name, w.Value)
			}
		}
		if strings.Join(statuses, ",") != strings.Join(s.want, ",") {
			t.Fatalf("%s: wrote %v, want %v", s.name, statuses, s.want)
		}
	}
}

// TestLoaderRetires: over three versions of a file, a rev bump retires
// the previous revision's signature, a rule ET disables moves to the
// non-standard status on its signature, and a rule that leaves the file
// is retired; each write says the status last written, so the writer
// PUTs the status of the existing signature.
func TestLoaderRetires(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig())
	a, b, c := sid(rule("a", 1), 2000301), sid(rule("b", 1), 2000302), sid(rule("c", 1), 2000303)
	type w struct{ sid, rev, status, last string }
	steps := []struct {
		name, content string
		want          []w
	}{
		{"v1", a + b + c, []w{{"2000301", "1", "Active", ""}, {"2000302", "1", "Active", ""}, {"2000303", "1", "Active", ""}}},
		{"v2: a bumped, b disabled", sid(rule("a", 2), 2000301) + "#" + b + c,
			[]w{{"2000301", "2", "Active", ""}, {"2000302", "1", "Review", "Active"}, {"2000301", "1", "Expired", "Active"}}},
		{"v3: c removed", sid(rule("a", 2), 2000301) + "#" + b,
			[]w{{"2000303", "1", "Expired", "Active"}}},
		{"v3 again", sid(rule("a", 2), 2000301) + "#" + b + "\n", nil},
	}
	for _, s := range steps {
		var got []w
		for _, x := range h.load(t, "open", "suricata-5.0", "emerging-malware.rules", s.content) {
			var sidV, revV string
			for _, at := range x.Attributes {
				switch at.Name {
				case "SID":
					sidV = at.Value
				case "Revision":
					revV = at.Value
				}
			}
			got = append(got, w{sidV, revV, x.Status, x.LastStatus})
		}
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Fatalf("%s: wrote %v, want %v", s.name, got, s.want)
		}
	}
}

// TestLoaderReadsOldState: state entries written before the loader
// recorded whether a rule was disabled still decide what is written.
func TestLoaderReadsOldState(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig())
	ctx := context.Background()
	kv, err := h.b.KeyValue(ctx, bus.BucketETState)
	if err != nil {
		t.Fatal(err)
	}
	// 2000100 was loaded enabled (Active); 2000101 was loaded disabled
	// while non-standard rules were included (Review).
	const old = `{"2000100":{"r":5,"s":"Active","o":"open"},"2000101":{"r":2,"s":"Review","o":"open"}}`
	if _, err := kv.Create(ctx, "default.sids.2000", []byte(old)); err != nil {
		t.Fatal(err)
	}
	both := "#" + rule("one", 5) + "#" + sid(rule("two", 2), 2000101) + "#" + sid(rule("two", 3), 2000102)
	got := h.load(t, "open", "suricata-5.0", "emerging-malware.rules", both)
	if len(got) != 1 || got[0].Status != "Review" || !strings.Contains(got[0].Value, "sid:2000100;") {
		t.Fatalf("wrote %+v, want 2000100 as Review only", got)
	}
	if got := h.load(t, "open", "suricata-5.0", "emerging-malware.rules", both+"\n"); len(got) != 0 {
		t.Fatalf("the same rules again wrote %+v", got)
	}
	e, err := kv.Get(ctx, "default.sids.2000")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]map[string]any
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		t.Fatal(err)
	}
	if s := st["2000100"]; s["s"] != "Review" || s["d"] != true || s["r"] != 5.0 {
		t.Errorf("state of 2000100: %v, want rev 5, Review, disabled", s)
	}
	if s := st["2000101"]; s["s"] != "Review" || s["r"] != 2.0 {
		t.Errorf("state of 2000101: %v, want it kept", s)
	}
	if _, ok := st["2000102"]; ok {
		t.Errorf("a disabled rule never loaded is in the state: %v", st["2000102"])
	}
}

// TestConfigParse: the LOADER_ variables users set keep their names and
// defaults now that they are the shared worker settings, and the loader's
// bounds are reported once each.
func TestConfigParse(t *testing.T) {
	t.Parallel()
	tq := map[string]string{"THREATQ_URL": "https://threatq.example", "THREATQ_CLIENT_ID": "id", "THREATQ_CLIENT_SECRET": "secret"}
	tests := []struct {
		name     string
		vars     map[string]string
		want     bus.WorkerConfig
		wantErrs []string
	}{
		{name: "defaults", want: bus.WorkerConfig{Concurrency: 2, BatchSize: 1, MaxAckPending: 64, MaxDeliver: 5, DrainTimeout: 20 * time.Second}},
		{
			name: "the documented variables",
			vars: map[string]string{"LOADER_CONCURRENCY": "3", "LOADER_MAX_DELIVER": "7", "LOADER_DRAIN_TIMEOUT": "9s", "LOADER_MAX_ACK_PENDING": "10"},
			want: bus.WorkerConfig{Concurrency: 3, BatchSize: 1, MaxAckPending: 10, MaxDeliver: 7, DrainTimeout: 9 * time.Second},
		},
		{
			name:     "out of bounds",
			vars:     map[string]string{"LOADER_CONCURRENCY": "17", "LOADER_BATCH_SIZE": "2", "LOADER_MAX_DELIVER": "0", "LOADER_DRAIN_TIMEOUT": "-1s"},
			wantErrs: []string{"LOADER_CONCURRENCY 17: want 1 to 16", "LOADER_BATCH_SIZE 2: want 1 to 1", "LOADER_MAX_DELIVER 0: want at least 1", "LOADER_DRAIN_TIMEOUT -1s: want a positive duration"},
		},
		{
			name:     "no ThreatQ",
			vars:     map[string]string{"THREATQ_URL": ""},
			wantErrs: []string{"THREATQ_URL is required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := maps.Clone(tq)
			maps.Copy(vars, tt.vars)
			var c service.Config
			err := config.Parse(&c, vars)
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if c.WorkerConfig != tt.want {
					t.Errorf("worker settings %+v, want %+v", c.WorkerConfig, tt.want)
				}
				if spec := c.Spec(); spec.MaxDeliver != tt.want.MaxDeliver || spec.MaxAckPending != tt.want.MaxAckPending {
					t.Errorf("consumer %+v does not have the worker settings %+v", spec, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErrs)
			}
			for _, w := range tt.wantErrs {
				if n := strings.Count(err.Error(), w); n != 1 {
					t.Errorf("error says %q %d times, want once:\n%v", w, n, err)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.wantErrs) {
				t.Errorf("%d problems reported, want %d:\n%v", n, len(tt.wantErrs), err)
			}
		})
	}
}
