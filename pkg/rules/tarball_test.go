package rules_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/rules"
	"github.com/tqflow/tqflow/pkg/rules/rulestest"
)

// TestHostileTarballs: each ends in a clear error, soon, whatever it
// claims to hold.
func TestHostileTarballs(t *testing.T) {
	t.Parallel()
	small := rules.TarLimits{MaxMember: 4 << 20, MaxTotal: 16 << 20}
	tests := []struct {
		name string
		data []byte
		lim  rules.TarLimits
		want error
	}{
		{"gnu sparse member", rulestest.GNUSparse(), rules.TarLimits{}, rules.ErrSparseMember},
		{"member over the cap", rulestest.Zeros(1, 5<<20), small, rules.ErrMemberTooLarge},
		{"gzip bomb of members under the cap", rulestest.Zeros(6, 3<<20), small, rules.ErrArchiveTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			p := rules.Parser{Limits: tt.lim}
			_, err := p.WalkTarball(bytes.NewReader(tt.data), "hostile.tar.gz", func(*rules.Rule, error) error { return nil })
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			t.Logf("%d-byte tarball: %v in %v", len(tt.data), err, time.Since(start))
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestTarballDefaultsStopABomb measures the default bounds against a bomb
// of 9 members of 120 MiB (each under the member cap, 1080 MiB in all):
// it stops at the 1 GiB total, in bounded memory. It takes a minute and
// runs only with TQFLOW_BOMB_TEST=1; TestHostileTarballs checks the same
// bounds, smaller.
func TestTarballDefaultsStopABomb(t *testing.T) {
	if os.Getenv("TQFLOW_BOMB_TEST") != "1" {
		t.Skip("decompresses 1 GiB; set TQFLOW_BOMB_TEST=1 to run it")
	}
	t.Parallel()
	data := rulestest.Zeros(9, 120<<20)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	tb, err := rules.OpenTarball(context.Background(), bytes.NewReader(data), rules.TarLimits{})
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		if _, err = tb.Next(); err == nil {
			_, err = io.Copy(io.Discard, tb)
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if !errors.Is(err, rules.ErrArchiveTooLarge) {
		t.Fatalf("err = %v, want ErrArchiveTooLarge", err)
	}
	t.Logf("%d-byte bomb refused in %v, %d MiB allocated while reading", len(data), time.Since(start), (after.TotalAlloc-before.TotalAlloc)>>20)
}

// TestTarballContext: a cancelled context stops the read loop.
func TestTarballContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	tb, err := rules.OpenTarball(ctx, bytes.NewReader(rulestest.Zeros(2, 1<<20)), rules.TarLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.Copy(io.Discard, tb); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want context.Canceled", err)
	}
}

// FuzzTarball: any bytes, read as a ruleset tarball, give rules or an
// error, never a panic or an endless read.
func FuzzTarball(f *testing.F) {
	f.Add(rulestest.GNUSparse())
	f.Add(rulestest.Zeros(1, 600))
	var ok bytes.Buffer
	zw := gzip.NewWriter(&ok)
	tw := tar.NewWriter(zw)
	for _, m := range []struct{ name, body string }{
		{"rules/classification.config", "config classification: trojan-activity,A Network Trojan was detected,1\n"},
		{"rules/emerging-x.rules", base + "\n#" + base + "\n"},
	} {
		_ = tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(m.body))
	}
	_ = tw.Close()
	_ = zw.Close()
	f.Add(ok.Bytes())
	f.Add(ok.Bytes()[:ok.Len()/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		p := rules.Parser{Limits: rules.TarLimits{MaxMember: 1 << 20, MaxTotal: 4 << 20}}
		n := 0
		st, err := p.WalkTarball(bytes.NewReader(data), "fuzz.tar.gz", func(r *rules.Rule, lerr error) error {
			if (r == nil) == (lerr == nil) {
				t.Fatalf("rule %v with error %v", r, lerr)
			}
			n++
			return nil
		})
		if err == nil && st.Rules()+st.Errors < n {
			t.Fatalf("stats %+v for %d callbacks", st, n)
		}
		if err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatal("an empty error")
		}
	})
}
