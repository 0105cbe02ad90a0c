package et_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/et"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/etsim"
)

const secret = "SECRET123"

// assertNoSecret fails if secret shows anywhere in err: its text, any
// formatting of it, or any error in its tree (including a *url.Error's URL).
func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error")
	}
	var walk func(e error)
	seen := 0
	walk = func(e error) {
		if e == nil || seen > 100 {
			return
		}
		seen++
		texts := []string{e.Error(), fmt.Sprintf("%v|%+v|%#v|%s|%q", e, e, e, e, e)}
		if ue, ok := e.(*url.Error); ok { //nolint:errorlint // Walking the tree by hand.
			texts = append(texts, ue.URL)
		}
		for _, txt := range texts {
			for _, s := range secrets {
				if strings.Contains(txt, s) {
					t.Errorf("secret %q leaks in %T: %s", s, e, txt)
				}
			}
		}
		switch u := e.(type) { //nolint:errorlint // Walking the tree by hand.
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	var ue *url.Error
	if errors.As(err, &ue) {
		t.Errorf("a *url.Error is reachable with errors.As: %v", ue)
	}
}

func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

func TestOinkcodeNeverShown(t *testing.T) {
	t.Parallel()
	tarball := []byte("pro ruleset bytes")
	tests := []struct {
		name   string
		simOpt etsim.Options
		cfg    et.Config
		setup  func(*etsim.Server)
		ctx    func(context.Context) context.Context
		check  func(t *testing.T, err error) // extra assertions
	}{
		{
			name:   "403 wrong code",
			simOpt: etsim.Options{Oinkcode: "GOODCODE"},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, et.ErrOinkcodeRejected) || httpx.IsTransient(err) {
					t.Errorf("err = %v, want a permanent ErrOinkcodeRejected", err)
				}
				for _, want := range []string{"ET Pro rejected the oinkcode (HTTP 403)", "/<oinkcode>/" + et.DefaultFlavor + "/etpro.rules.tar.gz"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("err = %q, want %q in it", err, want)
					}
				}
			},
		},
		{
			name:   "401 wrong code",
			simOpt: etsim.Options{Oinkcode: "GOODCODE", RejectStatus: http.StatusUnauthorized},
			check: func(t *testing.T, err error) {
				var se *httpx.StatusError
				if !errors.Is(err, et.ErrOinkcodeRejected) || !errors.As(err, &se) || se.StatusCode != 401 ||
					!strings.Contains(err.Error(), "ET Pro rejected the oinkcode (HTTP 401)") {
					t.Errorf("err = %v, want ErrOinkcodeRejected with a 401", err)
				}
			},
		},
		{
			name: "connection refused",
			cfg:  et.Config{ProURL: closedURL(t)},
			check: func(t *testing.T, err error) {
				var te *httpx.TransportError
				if !errors.As(err, &te) || !httpx.IsTransient(err) || !strings.Contains(err.Error(), "<oinkcode>") {
					t.Errorf("err = %v, want a transient TransportError showing <oinkcode>", err)
				}
			},
		},
		{
			name: "connection refused, password in the base url",
			cfg:  et.Config{ProURL: strings.Replace(closedURL(t), "http://", "http://user:PASSWORD9@", 1)},
		},
		{name: "dropped", setup: func(s *etsim.Server) { s.Faults.Set(sim.Faults{DropRate: 1}) }},
		{name: "503", setup: func(s *etsim.Server) { s.Faults.Set(sim.Faults{ErrorRate: 1}) }},
		{
			name:  "timeout",
			cfg:   et.Config{Timeout: 50 * time.Millisecond},
			setup: func(s *etsim.Server) { s.Faults.Set(sim.Faults{Latency: 5 * time.Second}) },
		},
		{
			name: "canceled",
			ctx: func(ctx context.Context) context.Context {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return ctx
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v, want context.Canceled kept", err)
				}
			},
		},
		{name: "unknown flavour", cfg: et.Config{Flavor: "suricata-9.9"}},
		{name: "truncated", setup: func(s *etsim.Server) { s.SetTruncate(5) }},
		{
			name:  "md5 mismatch",
			setup: func(s *etsim.Server) { s.SetMD5Override(etsim.SourcePro, et.DefaultFlavor, strings.Repeat("0", 32)) },
		},
		{name: "too large", cfg: et.Config{MaxSize: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opt := tt.simOpt
			if opt.Oinkcode == "" {
				opt.Oinkcode = secret
			}
			cfg := tt.cfg
			cfg.Sources, cfg.Oinkcode = []string{"pro"}, secret
			f := newFixture(t, opt, cfg, nil)
			_ = f.sim.Put(etsim.SourcePro, et.DefaultFlavor, tarball)
			if tt.setup != nil {
				tt.setup(f.sim)
			}
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(ctx)
			}
			_, cerr := f.c.Check(ctx, et.SourcePro, et.State{ETag: `"x"`})
			art, derr := f.c.Download(ctx, et.SourcePro, &bytes.Buffer{})
			errs := []error{derr}
			if tt.name != "md5 mismatch" && tt.name != "too large" && tt.name != "truncated" {
				errs = append(errs, cerr) // Those only fail the download.
			}
			for _, err := range errs {
				assertNoSecret(t, err, secret, "PASSWORD9")
				if tt.check != nil {
					tt.check(t, err)
				}
			}
			if art != (et.Artefact{}) {
				t.Errorf("a failed download returned %+v", art)
			}
		})
	}
}

func TestNothingReturnedShowsTheCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t, etsim.Options{Oinkcode: secret},
		et.Config{Sources: []string{"pro", "open"}, Oinkcode: secret}, nil)
	_ = f.sim.Put(etsim.SourcePro, et.DefaultFlavor, []byte("pro"))
	up, err := f.c.Check(t.Context(), et.SourcePro, et.State{})
	if err != nil {
		t.Fatal(err)
	}
	art, err := f.c.Download(t.Context(), et.SourcePro, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(art.URL, "/<oinkcode>/"+et.DefaultFlavor+"/etpro.rules.tar.gz") {
		t.Errorf("Artefact.URL = %q, want the redacted URL", art.URL)
	}
	for _, v := range []any{f.c, *f.c, up, art, art.State, f.c.Sources()} {
		for _, format := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
			if s := fmt.Sprintf(format, v); strings.Contains(s, secret) || strings.Contains(s, fmt.Sprintf("%x", secret)) {
				t.Errorf("Sprintf(%q, %T) shows the code: %s", format, v, s)
			}
		}
		if b, err := json.Marshal(v); err != nil && !strings.Contains(err.Error(), "unsupported") {
			t.Errorf("json %T: %v", v, err)
		} else if strings.Contains(string(b), secret) {
			t.Errorf("json of %T shows the code: %s", v, b)
		}
	}
}
