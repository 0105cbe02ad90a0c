package rulesets_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/et"
	"github.com/tqflow/tqflow/pkg/rules"
	"github.com/tqflow/tqflow/pkg/rules/rulestest"
	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/sim/etsim"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/fetcher/internal/rulesets"
)

const (
	flavor   = "suricata-5.0"
	goodCode = "GOODCODE123"
	instance = "default"
)

// files2017 is the number of *.rules members of the 2017 tarball.
const files2017 = 47

type fixture struct {
	sim  *etsim.Server
	bus  *bus.Bus
	f    *rulesets.Fetcher
	logs *bytes.Buffer
}

func readShared(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newFixture serves an ET simulator and returns a fetcher for cfg with its
// URLs pointing at it, on a fresh embedded NATS.
func newFixture(t *testing.T, opts etsim.Options, cfg rulesets.Config) fixture {
	t.Helper()
	s := etsim.New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	cfg.ET.OpenURL, cfg.ET.ProURL, cfg.ET.BlockURL = srv.URL, srv.URL, srv.URL
	if cfg.ET.Flavor == "" {
		cfg.ET.Flavor = flavor
	}
	b := bustest.New(t)
	logs := &bytes.Buffer{}
	f, err := rulesets.New(context.Background(), cfg, instance, b, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.TempDir = t.TempDir()
	return fixture{sim: s, bus: b, f: f, logs: logs}
}

// published returns every ruleset.v1 message on the instance's subject.
func published(t *testing.T, b *bus.Bus) []schemas.Ruleset {
	t.Helper()
	var out []schemas.Ruleset
	for _, m := range bustest.Stored(t, b, bus.StreamRulesets, bus.RulesetSubject(instance)) {
		var r schemas.Ruleset
		if err := schemas.Decode(m.Data(), &r); err != nil {
			t.Fatal(err)
		}
		if want := rulesets.MsgID(instance, r.MD5, r.File); m.Headers().Get(jetstream.MsgIDHeader) != want {
			t.Errorf("message id %q, want %q", m.Headers().Get(jetstream.MsgIDHeader), want)
		}
		out = append(out, r)
	}
	return out
}

func stateOf(t *testing.T, f *rulesets.Fetcher, src et.Source) (rulesets.State, bool) {
	t.Helper()
	e, err := f.State.Get(context.Background(), rulesets.StateKey(instance, src))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rulesets.State{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var st rulesets.State
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		t.Fatal(err)
	}
	return st, true
}

func TestRunOnceOpenThenUnchanged(t *testing.T) {
	t.Parallel()
	tgz := readShared(t, "et/suricata-2017/emerging.rules.tar.gz")
	fx := newFixture(t, etsim.Options{}, rulesets.Config{})
	if err := fx.sim.Put(etsim.SourceOpen, flavor, tgz); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rep, err := fx.f.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sum := etsim.MD5Hex(tgz)
	if len(rep.Sources) != 1 || !rep.Sources[0].Changed || rep.Sources[0].MD5 != sum || !rep.Sources[0].Stored {
		t.Fatalf("report %+v", rep.Sources)
	}
	if rep.Published() != files2017 {
		t.Errorf("published %d, want %d", rep.Published(), files2017)
	}
	msgs := published(t, fx.bus)
	if len(msgs) != files2017 {
		t.Fatalf("%d messages on the stream, want %d", len(msgs), files2017)
	}
	for _, m := range msgs {
		if m.Object != sum+".tar.gz" || m.MD5 != sum || m.Source != "open" || m.Flavor != flavor || m.Files != files2017 || !strings.HasPrefix(m.File, "rules/") {
			t.Fatalf("message %+v", m)
		}
	}
	info, err := fx.f.Objects.GetInfo(ctx, sum+".tar.gz")
	if err != nil || info.Size != uint64(len(tgz)) {
		t.Fatalf("object: %v %+v", err, info)
	}
	st, ok := stateOf(t, fx.f, et.SourceOpen)
	if !ok || st.ET.MD5 != sum || st.Files != files2017 || st.Selection != "all" {
		t.Fatalf("state %+v", st)
	}

	// Same md5: one small request, nothing downloaded or published.
	tarballs, md5s := fx.sim.Stats.Count(etsim.RouteOpenTarball), fx.sim.Stats.Count(etsim.RouteOpenMD5)
	rep, err = fx.f.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sources[0].Changed || rep.Published() != 0 {
		t.Errorf("second run: %+v", rep.Sources[0])
	}
	if got := fx.sim.Stats.Count(etsim.RouteOpenTarball) - tarballs; got != 0 {
		t.Errorf("second run downloaded the tarball %d times", got)
	}
	if got := fx.sim.Stats.Count(etsim.RouteOpenMD5) - md5s; got != 1 {
		t.Errorf("second run fetched the .md5 %d times, want 1", got)
	}
	if n := len(published(t, fx.bus)); n != files2017 {
		t.Errorf("%d messages after the second run, want %d", n, files2017)
	}

	// A new tarball: published again, under its own md5.
	tgz2, err := etsim.RewriteTarball(tgz, func(file string, b []byte) []byte {
		if strings.HasSuffix(file, "emerging-dns.rules") {
			return append(bytes.Clone(b), "\n# touched\n"...)
		}
		return b
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.sim.Put(etsim.SourceOpen, flavor, tgz2); err != nil {
		t.Fatal(err)
	}
	rep, err = fx.f.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Published() != files2017 || rep.Sources[0].MD5 != etsim.MD5Hex(tgz2) {
		t.Errorf("third run: %+v", rep.Sources[0])
	}
}

func TestRunOnceSelection(t *testing.T) {
	t.Parallel()
	tgz := readShared(t, "et/suricata-2017/emerging.rules.tar.gz")
	fx := newFixture(t, etsim.Options{}, rulesets.Config{Rulesets: []string{"Malware", "emerging-dns.rules", "tor", "nosuch"}})
	if err := fx.sim.Put(etsim.SourceOpen, flavor, tgz); err != nil {
		t.Fatal(err)
	}
	rep, err := fx.f.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sr := rep.Sources[0]
	if sr.Files != files2017 || sr.Selected != 3 || sr.Published != 3 {
		t.Errorf("report %+v", sr)
	}
	if len(sr.Unmatched) != 1 || sr.Unmatched[0] != "nosuch" {
		t.Errorf("unmatched %v", sr.Unmatched)
	}
	var files []string
	for _, m := range published(t, fx.bus) {
		files = append(files, m.File)
	}
	want := map[string]bool{"rules/emerging-malware.rules": true, "rules/emerging-dns.rules": true, "rules/tor.rules": true}
	for _, f := range files {
		if !want[f] {
			t.Errorf("published %s", f)
		}
	}
	if !strings.Contains(fx.logs.String(), "nosuch") {
		t.Errorf("no warning about the unmatched entry:\n%s", fx.logs)
	}

	// A different selection publishes the same ruleset again, for it.
	fx.f.Select = rulesets.NewSelection([]string{"scan"})
	rep, err = fx.f.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Published() != 1 {
		t.Errorf("after reselection published %d, want 1", rep.Published())
	}
}

func TestRunOnceFailuresLeaveStateAlone(t *testing.T) {
	t.Parallel()
	tgz := readShared(t, "et/suricata-2017/emerging.rules.tar.gz")
	// A gzip stream cut short, published with its own (matching) md5.
	cut := tgz[:len(tgz)/2]
	tests := []struct {
		name    string
		cfg     rulesets.Config
		opts    etsim.Options
		setup   func(*testing.T, *etsim.Server)
		src     et.Source
		wantErr error
		hidden  string // must not appear in the error or the logs
	}{
		{
			name: "md5 mismatch",
			setup: func(t *testing.T, s *etsim.Server) {
				s.SetMD5Override(etsim.SourceOpen, flavor, strings.Repeat("ab", 16))
			},
			src:     et.SourceOpen,
			wantErr: et.ErrMD5Mismatch,
		},
		{
			name:    "truncated download",
			setup:   func(t *testing.T, s *etsim.Server) { s.SetTruncate(int64(len(tgz) / 3)) },
			src:     et.SourceOpen,
			wantErr: et.ErrTruncated,
		},
		{
			name: "truncated archive with a matching md5",
			setup: func(t *testing.T, s *etsim.Server) {
				if err := s.Put(etsim.SourceOpen, flavor, cut); err != nil {
					t.Fatal(err)
				}
			},
			src:     et.SourceOpen,
			wantErr: rulesets.ErrBadArchive,
		},
		{
			name: "sparse member claiming 2^62 bytes",
			setup: func(t *testing.T, s *etsim.Server) {
				if err := s.Put(etsim.SourceOpen, flavor, rulestest.GNUSparse()); err != nil {
					t.Fatal(err)
				}
			},
			src:     et.SourceOpen,
			wantErr: rules.ErrSparseMember,
		},
		{
			name: "member over the size cap",
			setup: func(t *testing.T, s *etsim.Server) {
				if err := s.Put(etsim.SourceOpen, flavor, rulestest.Zeros(1, rules.DefaultMaxMember+1)); err != nil {
					t.Fatal(err)
				}
			},
			src:     et.SourceOpen,
			wantErr: rules.ErrMemberTooLarge,
		},
		{
			name:    "wrong oinkcode",
			cfg:     rulesets.Config{ET: et.Config{Sources: []string{"pro"}, Oinkcode: config.Secret("WRONGCODE42")}},
			opts:    etsim.Options{Oinkcode: goodCode, RejectStatus: http.StatusUnauthorized},
			src:     et.SourcePro,
			wantErr: et.ErrOinkcodeRejected,
			hidden:  "WRONGCODE42",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, tt.opts, tt.cfg)
			for _, src := range []string{etsim.SourceOpen, etsim.SourcePro} {
				if err := fx.sim.Put(src, flavor, tgz); err != nil {
					t.Fatal(err)
				}
			}
			if tt.setup != nil {
				tt.setup(t, fx.sim)
			}
			rep, err := fx.f.RunOnce(context.Background())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !errors.Is(rep.Sources[0].Err, tt.wantErr) {
				t.Errorf("report error %v", rep.Sources[0].Err)
			}
			if tt.hidden != "" && (strings.Contains(err.Error(), tt.hidden) || strings.Contains(fx.logs.String(), tt.hidden)) {
				t.Errorf("the oinkcode shows: %v\n%s", err, fx.logs)
			}
			if _, ok := stateOf(t, fx.f, tt.src); ok {
				t.Error("state stored after a failure")
			}
			if n := len(published(t, fx.bus)); n != 0 {
				t.Errorf("%d messages published after a failure", n)
			}
			t.Logf("error, as reported: %v", err)
		})
	}
}

func TestRunOnceProAndBlock(t *testing.T) {
	t.Parallel()
	tgz := readShared(t, "et/suricata-2017/emerging.rules.tar.gz")
	cfg := rulesets.Config{ET: et.Config{
		Sources:  []string{"pro", "block:emerging-drop.suricata.rules"},
		Oinkcode: config.Secret(goodCode),
	}, Rulesets: []string{"dns"}}
	fx := newFixture(t, etsim.Options{Oinkcode: goodCode}, cfg)
	if err := fx.sim.Put(etsim.SourcePro, flavor, tgz); err != nil {
		t.Fatal(err)
	}
	block := []byte("alert ip [1.2.3.4] any -> $HOME_NET any (msg:\"ET DROP test\"; sid:2400000; rev:1;)\n")
	if err := fx.sim.PutBlock("emerging-drop.suricata.rules", block); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rep, err := fx.f.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Published() != 2 {
		t.Fatalf("published %d, want 2 (one pro file, one block file): %+v", rep.Published(), rep.Sources)
	}
	got := map[string]schemas.Ruleset{}
	for _, m := range published(t, fx.bus) {
		got[m.Source] = m
	}
	if m := got["pro"]; m.File != "rules/emerging-dns.rules" {
		t.Errorf("pro message %+v", m)
	}
	bm := got["block:emerging-drop.suricata.rules"]
	if bm.File != "emerging-drop.suricata.rules" || bm.Object != etsim.MD5Hex(block)+".rules" {
		t.Errorf("block message %+v", bm)
	}
	if strings.Contains(fx.logs.String(), goodCode) {
		t.Errorf("the oinkcode shows in the logs:\n%s", fx.logs)
	}
	// The block file has no .md5: the second run asks with a conditional
	// GET, answered 304.
	rep, err = fx.f.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Published() != 0 {
		t.Errorf("second run published %d", rep.Published())
	}
	for _, s := range rep.Sources {
		if s.Changed {
			t.Errorf("second run: %s changed (%s)", s.Source, s.Method)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  rulesets.Config
		want []string
	}{
		{name: "defaults", cfg: rulesets.Config{}},
		{name: "bad entries and pro without code", cfg: rulesets.Config{
			ET: et.Config{Sources: []string{"pro"}}, Rulesets: []string{"rules/x.rules", ""},
		}, want: []string{"ET_OINKCODE", `ET_RULESETS: "rules/x.rules"`, `ET_RULESETS: ""`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSelection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries []string
		file    string
		want    bool
	}{
		{"empty is all", nil, "rules/emerging-scan.rules", true},
		{"all", []string{"all"}, "rules/botcc.rules", true},
		{"file name", []string{"emerging-scan.rules"}, "rules/emerging-scan.rules", true},
		{"category", []string{"SCAN"}, "rules/emerging-scan.rules", true},
		{"pro member without prefix", []string{"malware"}, "rules/malware.rules", true},
		{"suricata block variant", []string{"drop"}, "emerging-drop.suricata.rules", true},
		{"other", []string{"scan"}, "rules/emerging-dns.rules", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, _ := rulesets.NewSelection(tt.entries).Match(tt.file); got != tt.want {
				t.Errorf("Match(%q) = %v, want %v", tt.file, got, tt.want)
			}
		})
	}
	if c := rulesets.Category("rules/emerging-web_specific_apps.rules"); c != "WEB_SPECIFIC_APPS" {
		t.Errorf("category %q", c)
	}
}
