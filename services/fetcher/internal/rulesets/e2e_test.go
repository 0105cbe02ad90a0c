package rulesets_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/rules"
	"github.com/tqflow/tqflow/pkg/sim/etsim"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/fetcher/internal/rulesets"
	"github.com/tqflow/tqflow/services/signature-loader/service"
)

// Counts of the 2017 Suricata tarball (shared/data/et/README.md).
const (
	enabled2017  = 19556
	disabled2017 = 4350
)

// writesSince returns the write.v1 messages stored on tq.writes.signature
// after the first skip, waiting until there are want of them beyond skip
// (and a moment longer, to catch any extra).
func writesSince(t *testing.T, b *bus.Bus, skip, want int) []schemas.Write {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := b.JetStream().Stream(ctx, bus.StreamWrites)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(bus.SubjectWriteSignature))
		if err != nil {
			t.Fatal(err)
		}
		return int(info.State.Msgs)
	}
	for count() < skip+want && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	n := count() - skip
	if n <= 0 {
		return nil
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.SubjectWriteSignature},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    1,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []schemas.Write
	seen := 0
	for seen < skip+n {
		batch, err := c.Fetch(min(skip+n-seen, 5000), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			seen++
			if seen <= skip {
				continue
			}
			var w schemas.Write
			if err := schemas.Decode(m.Data(), &w); err != nil {
				t.Fatal(err)
			}
			out = append(out, w)
		}
		if got == 0 {
			t.Fatalf("read %d of %d writes", seen, skip+n)
		}
	}
	return out
}

// startLoader runs the signature-loader on b until the test ends and
// returns a counter of settled ruleset messages.
func startLoader(t *testing.T, b *bus.Bus, c service.Config) (*atomic.Int64, *service.Stats) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var settled atomic.Int64
	stats := &service.Stats{}
	go func() {
		done <- service.Run(ctx, c, b, service.StockCatalog, discard(), stats,
			func(_ bus.ConsumerSpec, _ *bus.Message, o bus.Outcome, err error) {
				if o != bus.Acked {
					t.Errorf("ruleset message %s: %v", o, err)
				}
				settled.Add(1)
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loader: %v", err)
		}
	})
	return &settled, stats
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var revRE = regexp.MustCompile(`rev:\s*(\d+)\s*;`)

// edit bumps the rev of the first three enabled rules of
// emerging-scan.rules, disables the first enabled rule of
// emerging-dns.rules and adds garbage lines to emerging-info.rules. It
// returns the edited tarball and the sids bumped and disabled.
func edit(t *testing.T, tgz []byte) ([]byte, []int, int) {
	t.Helper()
	var bumped []int
	disabled := 0
	out, err := etsim.RewriteTarball(tgz, func(file string, b []byte) []byte {
		switch file {
		case "rules/emerging-scan.rules", "rules/emerging-dns.rules":
		case "rules/emerging-info.rules":
			return append(bytes.Clone(b), "this line is garbage (\nalert tcp any any -> any any (msg:\"no sid\"; rev:1;)\n"...)
		default:
			return b
		}
		lines := strings.Split(string(b), "\n")
		for i, line := range lines {
			r, err := rules.Parse(line)
			if err != nil || !r.Enabled {
				continue
			}
			if file == "rules/emerging-dns.rules" {
				lines[i] = "#" + line
				disabled = r.SID
				break
			}
			lines[i] = revRE.ReplaceAllString(line, "rev:"+strconv.Itoa(r.Rev+1)+";")
			bumped = append(bumped, r.SID)
			if len(bumped) == 3 {
				break
			}
		}
		return []byte(strings.Join(lines, "\n"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bumped) != 3 || disabled == 0 {
		t.Fatalf("edit: bumped %v, disabled %d", bumped, disabled)
	}
	return out, bumped, disabled
}

func sidOf(t *testing.T, w schemas.Write) int {
	t.Helper()
	for _, a := range w.Signature.Attributes {
		if a.Name == "SID" {
			n, err := strconv.Atoi(a.Value)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("write without a SID: %+v", w.Signature)
	return 0
}

// TestEndToEnd runs the ET simulator serving the real 2017 Suricata
// tarball, the fetcher's ET job and the signature-loader on one embedded
// NATS, and counts the signature writes.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	tgz := readShared(t, "et/suricata-2017/emerging.rules.tar.gz")
	tgz2, bumped, disabledSID := edit(t, tgz)
	tests := []struct {
		name        string
		nonStandard bool
		first       map[string]int // writes by status
		second      int
	}{
		// The disabled rule goes to Review all the same; each bumped rev
		// also retires the previous revision's signature.
		{"standard only", false, map[string]int{"Active": enabled2017}, 7},
		{"with non-standard", true, map[string]int{"Active": enabled2017, "Review": disabled2017}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, etsim.Options{}, rulesets.Config{})
			if err := fx.sim.Put(etsim.SourceOpen, flavor, tgz); err != nil {
				t.Fatal(err)
			}
			settled, stats := startLoader(t, fx.bus, service.Config{
				Instance: instance, StandardStatus: "Active", NonStandardStatus: "Review", RetiredStatus: "Expired",
				IncludeNonStandard: tt.nonStandard, Source: service.DefaultSource, SuricataType: "Suricata",
				Concurrency: 2, MaxDeliver: 5, DrainTimeout: 5 * time.Second,
			})
			ctx := context.Background()

			// First run: every rule once, with its status.
			start := time.Now()
			if _, err := fx.f.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the first ruleset", func() bool { return settled.Load() == files2017 })
			total := 0
			for _, n := range tt.first {
				total += n
			}
			ws := writesSince(t, fx.bus, 0, total)
			t.Logf("first load: %d writes in %s", len(ws), time.Since(start).Round(time.Millisecond))
			if len(ws) != total {
				t.Fatalf("%d writes, want %d", len(ws), total)
			}
			byStatus := map[string]int{}
			for _, w := range ws {
				s := w.Signature
				byStatus[s.Status]++
				if s.Type != "Snort" || s.Source != "Emerging Threats" || s.Name == "" || s.Value == "" || w.Instance != instance {
					t.Fatalf("write %+v", s)
				}
			}
			if fmt.Sprint(byStatus) != fmt.Sprint(tt.first) {
				t.Errorf("writes by status %v, want %v", byStatus, tt.first)
			}

			badBefore := stats.BadLines.Load()

			// Same md5: nothing downloaded, nothing published or written.
			tarballs := fx.sim.Stats.Count(etsim.RouteOpenTarball)
			rep, err := fx.f.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Published() != 0 || fx.sim.Stats.Count(etsim.RouteOpenTarball) != tarballs {
				t.Errorf("unchanged run: published %d, downloads %d", rep.Published(), fx.sim.Stats.Count(etsim.RouteOpenTarball)-tarballs)
			}
			if extra := writesSince(t, fx.bus, total, 0); len(extra) != 0 {
				t.Errorf("unchanged run wrote %d signatures", len(extra))
			}

			// A new tarball with three revs bumped, one rule disabled and
			// garbage lines: exactly those changes are written.
			if err := fx.sim.Put(etsim.SourceOpen, flavor, tgz2); err != nil {
				t.Fatal(err)
			}
			if _, err := fx.f.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the second ruleset", func() bool { return settled.Load() == 2*files2017 })
			ws = writesSince(t, fx.bus, total, tt.second)
			got := map[int][]string{}
			for _, w := range ws {
				got[sidOf(t, w)] = append(got[sidOf(t, w)], w.Signature.Status)
			}
			want := map[int][]string{}
			for _, sid := range bumped {
				want[sid] = []string{"Active", "Expired"} // The new rev, then the old one retired.
			}
			want[disabledSID] = []string{"Review"}
			if len(ws) != tt.second || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("second load wrote %d: %v, want %v", len(ws), got, want)
			}
			if bad := stats.BadLines.Load() - badBefore; bad != 2 {
				t.Errorf("second load counted %d bad lines, want the 2 added", bad)
			}
		})
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
