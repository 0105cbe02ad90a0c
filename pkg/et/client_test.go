package et_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/et"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/etsim"
)

const proCode = "0123456789abcdef"

// corpus is one real ET tarball with the md5 ET published for it.
type corpus struct {
	tarball []byte
	md5     string
}

func loadCorpus(t *testing.T, dir string) corpus {
	t.Helper()
	tgz, err := os.ReadFile(sharedtest.Path(t, "et/"+dir+"/emerging.rules.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(sharedtest.Path(t, "et/"+dir+"/emerging.rules.tar.gz.md5"))
	if err != nil {
		t.Fatal(err)
	}
	return corpus{tgz, strings.TrimSpace(string(sum))}
}

type fixture struct {
	sim *etsim.Server
	srv *httptest.Server
	c   *et.Client
}

// newFixture serves the simulator behind wrap (nil for none) and returns a
// client for it, cfg's zero URLs pointing at it.
func newFixture(t *testing.T, opts etsim.Options, cfg et.Config, wrap func(http.Handler) http.Handler) fixture {
	t.Helper()
	s := etsim.New(opts)
	h := s.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, u := range []*string{&cfg.OpenURL, &cfg.ProURL, &cfg.BlockURL} {
		if *u == "" {
			*u = srv.URL
		}
	}
	c, err := et.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{s, srv, c}
}

func TestCheckAndDownloadRulesets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		corpus      string
		source      et.Source
		simSource   string
		flavor      string
		tarball     string
		md5         string
		withholdMD5 bool
	}{
		{"open suricata 2025", "suricata-5.0-2025", et.SourceOpen, etsim.SourceOpen, "suricata-5.0", etsim.RouteOpenTarball, etsim.RouteOpenMD5, false},
		{"open suricata 2017", "suricata-2017", et.SourceOpen, etsim.SourceOpen, "suricata", etsim.RouteOpenTarball, etsim.RouteOpenMD5, false},
		{"open snort", "snort-2.9.0-2020", et.SourceOpen, etsim.SourceOpen, "snort-2.9.0", etsim.RouteOpenTarball, etsim.RouteOpenMD5, false},
		{"open-nogpl", "snort-2.9.0-2020", et.SourceOpenNoGPL, etsim.SourceOpenNoGPL, "snort-2.9.0", etsim.RouteNoGPLTarball, etsim.RouteNoGPLMD5, false},
		{"pro", "suricata-5.0-2025", et.SourcePro, etsim.SourcePro, "suricata-7.0.3", etsim.RouteProTarball, etsim.RouteProMD5, false},
		{"pro without md5", "suricata-5.0-2025", et.SourcePro, etsim.SourcePro, "suricata-5.0", etsim.RouteProTarball, etsim.RouteProMD5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cp := loadCorpus(t, tt.corpus)
			f := newFixture(t, etsim.Options{Oinkcode: proCode},
				et.Config{Sources: []string{string(tt.source)}, Flavor: tt.flavor, Oinkcode: proCode}, nil)
			if err := f.sim.Put(tt.simSource, tt.flavor, cp.tarball); err != nil {
				t.Fatal(err)
			}
			f.sim.WithholdMD5(tt.simSource, tt.flavor, tt.withholdMD5)
			wantMethod := et.MethodMD5
			if tt.withholdMD5 {
				wantMethod = et.MethodVersion
			}
			ctx := t.Context()

			// First run: nothing known, so changed.
			up, err := f.c.Check(ctx, tt.source, et.State{})
			if err != nil {
				t.Fatal(err)
			}
			if !up.Changed || up.Method != wantMethod || up.Source != tt.source {
				t.Fatalf("first Check = %+v, want changed by %s", up, wantMethod)
			}
			if !tt.withholdMD5 && up.Remote.MD5 != cp.md5 {
				t.Errorf("Remote.MD5 = %s, want the published %s", up.Remote.MD5, cp.md5)
			}
			var buf bytes.Buffer
			art, err := f.c.Download(ctx, tt.source, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), cp.tarball) || art.Size != int64(len(cp.tarball)) || art.MD5 != cp.md5 {
				t.Errorf("Download: %d bytes, md5 %s; want the tarball (%d bytes, md5 %s)", buf.Len(), art.MD5, len(cp.tarball), cp.md5)
			}
			if art.Verified == tt.withholdMD5 || art.State.MD5 != cp.md5 {
				t.Errorf("Artefact = %+v", art)
			}
			if tt.withholdMD5 && art.State.Version == "" {
				t.Error("without a .md5 the state must keep version.txt")
			}
			if strings.Contains(art.URL, proCode) || tt.source == et.SourcePro && !strings.Contains(art.URL, "/<oinkcode>/"+tt.flavor+"/etpro.rules.tar.gz") {
				t.Errorf("Artefact.URL = %q, want the oinkcode redacted", art.URL)
			}

			// The state survives a round trip through JSON (NATS KV).
			raw, err := json.Marshal(art.State)
			if err != nil {
				t.Fatal(err)
			}
			var st et.State
			if err := json.Unmarshal(raw, &st); err != nil || st != art.State {
				t.Fatalf("State JSON round trip: %s -> %+v, %v", raw, st, err)
			}

			// Second run with the same md5: one small request, no download.
			tarballs, md5s := f.sim.Stats.Count(tt.tarball), f.sim.Stats.Count(tt.md5)
			total := f.sim.Stats.Total()
			up, err = f.c.Check(ctx, tt.source, st)
			if err != nil {
				t.Fatal(err)
			}
			if up.Changed || up.Method != wantMethod {
				t.Fatalf("second Check = %+v, want unchanged by %s", up, wantMethod)
			}
			if got := f.sim.Stats.Count(tt.tarball); got != tarballs {
				t.Errorf("tarball requests went %d -> %d, want no download", tarballs, got)
			}
			if !tt.withholdMD5 {
				if got := f.sim.Stats.Total() - total; got != 1 || f.sim.Stats.Count(tt.md5) != md5s+1 {
					t.Errorf("an unchanged check made %d requests, want one .md5 request", got)
				}
			}

			// ET bumps a few revs and disables a rule: changed.
			edited, err := etsim.RewriteTarball(cp.tarball, bumpRevs)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.sim.Put(tt.simSource, tt.flavor, edited); err != nil {
				t.Fatal(err)
			}
			f.sim.WithholdMD5(tt.simSource, tt.flavor, tt.withholdMD5)
			up, err = f.c.Check(ctx, tt.source, st)
			if err != nil {
				t.Fatal(err)
			}
			if !up.Changed {
				t.Fatalf("Check after an update = %+v, want changed", up)
			}
			buf.Reset()
			art2, err := f.c.Download(ctx, tt.source, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), edited) || art2.MD5 == art.MD5 || art2.MD5 != etsim.MD5Hex(edited) {
				t.Errorf("second Download: md5 %s, want %s", art2.MD5, etsim.MD5Hex(edited))
			}
		})
	}
}

// bumpRevs bumps the rev of the first rule of every emerging-*.rules file
// and comments out the second, as an ET update does.
func bumpRevs(name string, content []byte) []byte {
	if !strings.HasSuffix(name, ".rules") {
		return content
	}
	lines := strings.Split(string(content), "\n")
	seen := 0
	for i, l := range lines {
		if !strings.HasPrefix(l, "alert ") {
			continue
		}
		seen++
		switch seen {
		case 1:
			lines[i] = strings.Replace(l, "; rev:", "; rev:1", 1)
		case 2:
			lines[i] = "#" + l
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

func TestDownloadMD5Mismatch(t *testing.T) {
	t.Parallel()
	cp := loadCorpus(t, "suricata-2017")
	f := newFixture(t, etsim.Options{}, et.Config{Flavor: "suricata-5.0"}, nil)
	_ = f.sim.Put(etsim.SourceOpen, "suricata-5.0", cp.tarball)
	wrong := strings.Repeat("ab", 16)
	f.sim.SetMD5Override(etsim.SourceOpen, "suricata-5.0", wrong)
	var buf bytes.Buffer
	art, err := f.c.Download(t.Context(), et.SourceOpen, &buf)
	if !errors.Is(err, et.ErrMD5Mismatch) {
		t.Fatalf("Download = %+v, %v; want ErrMD5Mismatch", art, err)
	}
	var me *et.MismatchError
	if !errors.As(err, &me) || me.Published != wrong || me.Downloaded != cp.md5 {
		t.Errorf("MismatchError = %+v", me)
	}
	want := "md5 mismatch: published " + wrong + ", downloaded " + cp.md5
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if httpx.IsTransient(err) {
		t.Error("an md5 mismatch must be permanent")
	}
	if art != (et.Artefact{}) {
		t.Errorf("a refused download returned %+v", art)
	}
}

// republishing serves the simulator and runs change once, just after the
// first tarball request has been answered (or before, if before is set).
func republishing(before bool, change func()) func(http.Handler) http.Handler {
	var once sync.Once
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			isTarball := strings.HasSuffix(r.URL.Path, ".tar.gz")
			if isTarball && before {
				once.Do(change)
			}
			h.ServeHTTP(w, r)
			if isTarball && !before {
				once.Do(change)
			}
		})
	}
}

func TestDownloadDuringRepublish(t *testing.T) {
	t.Parallel()
	old, next := []byte("old ruleset"), []byte("new ruleset")
	t.Run("consistent new ruleset is accepted", func(t *testing.T) {
		t.Parallel()
		var s *etsim.Server
		f := newFixture(t, etsim.Options{}, et.Config{}, republishing(true, func() { _ = s.Put(etsim.SourceOpen, et.DefaultFlavor, next) }))
		s = f.sim
		_ = s.Put(etsim.SourceOpen, et.DefaultFlavor, old)
		var buf bytes.Buffer
		art, err := f.c.Download(t.Context(), et.SourceOpen, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if buf.String() != string(next) || art.MD5 != etsim.MD5Hex(next) || !art.Verified {
			t.Errorf("Download = %+v (%q), want the new ruleset, verified", art, buf.String())
		}
	})
	t.Run("md5 moving under the download is transient", func(t *testing.T) {
		t.Parallel()
		var s *etsim.Server
		f := newFixture(t, etsim.Options{}, et.Config{}, republishing(false, func() {
			s.SetMD5Override(etsim.SourceOpen, et.DefaultFlavor, strings.Repeat("cd", 16))
		}))
		s = f.sim
		_ = s.Put(etsim.SourceOpen, et.DefaultFlavor, old)
		s.SetMD5Override(etsim.SourceOpen, et.DefaultFlavor, strings.Repeat("ab", 16))
		_, err := f.c.Download(t.Context(), et.SourceOpen, &bytes.Buffer{})
		if err == nil || errors.Is(err, et.ErrMD5Mismatch) || !httpx.IsTransient(err) {
			t.Errorf("Download = %v, want a transient error that is not a mismatch", err)
		}
	})
}

func TestDownloadTruncated(t *testing.T) {
	t.Parallel()
	cp := loadCorpus(t, "suricata-2017")
	tests := []struct {
		name   string
		source et.Source
		put    func(*etsim.Server)
	}{
		{"tarball", et.SourceOpen, func(s *etsim.Server) { _ = s.Put(etsim.SourceOpen, et.DefaultFlavor, cp.tarball) }},
		{"block file", et.BlockFile("emerging-tor.suricata.rules"), func(s *etsim.Server) {
			_ = s.PutBlock("emerging-tor.suricata.rules", cp.tarball)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, etsim.Options{}, et.Config{}, nil)
			tt.put(f.sim)
			f.sim.SetTruncate(int64(len(cp.tarball) / 2))
			_, err := f.c.Download(t.Context(), tt.source, &bytes.Buffer{})
			if !errors.Is(err, et.ErrTruncated) {
				t.Fatalf("Download = %v, want ErrTruncated", err)
			}
			if !httpx.IsTransient(err) || errors.Is(err, et.ErrMD5Mismatch) {
				t.Errorf("a truncated body must be transient and reported as truncated: %v", err)
			}
		})
	}
}

func TestDownloadTooLarge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, etsim.Options{}, et.Config{MaxSize: 1000}, nil)
	_ = f.sim.Put(etsim.SourceOpen, et.DefaultFlavor, bytes.Repeat([]byte("x"), 1001))
	_, err := f.c.Download(t.Context(), et.SourceOpen, &bytes.Buffer{})
	if !errors.Is(err, et.ErrTooLarge) || httpx.IsTransient(err) {
		t.Fatalf("Download = %v, want a permanent ErrTooLarge", err)
	}
	_ = f.sim.Put(etsim.SourceOpen, et.DefaultFlavor, bytes.Repeat([]byte("x"), 1000))
	if _, err := f.c.Download(t.Context(), et.SourceOpen, &bytes.Buffer{}); err != nil {
		t.Errorf("Download at the limit = %v", err)
	}
}

func TestUnknownFlavour(t *testing.T) {
	t.Parallel()
	f := newFixture(t, etsim.Options{Oinkcode: proCode},
		et.Config{Flavor: "suricata-9.9", Sources: []string{"open", "pro"}, Oinkcode: proCode}, nil)
	_ = f.sim.Put(etsim.SourceOpen, et.DefaultFlavor, []byte("x"))
	_ = f.sim.Put(etsim.SourcePro, et.DefaultFlavor, []byte("x"))
	for _, src := range []et.Source{et.SourceOpen, et.SourcePro} {
		t.Run(string(src), func(t *testing.T) {
			t.Parallel()
			_, err := f.c.Download(t.Context(), src, &bytes.Buffer{})
			if !errors.Is(err, et.ErrUnknownFlavour) || httpx.IsTransient(err) {
				t.Fatalf("Download = %v, want a permanent ErrUnknownFlavour", err)
			}
			for _, want := range []string{"unknown flavour", "flavour suricata-9.9 (HTTP 404 for ", "/suricata-9.9/", "try ET_FLAVOR=" + et.DefaultFlavor} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), proCode) {
				t.Errorf("error %q shows the oinkcode", err)
			}
			var se *httpx.StatusError
			if !errors.As(err, &se) || se.StatusCode != 404 {
				t.Errorf("want an httpx.StatusError 404 inside, got %v", se)
			}
			// With validators from an earlier run, Check asks and finds out.
			_, err = f.c.Check(t.Context(), src, et.State{ETag: `"x"`})
			if !errors.Is(err, et.ErrUnknownFlavour) {
				t.Errorf("Check = %v, want ErrUnknownFlavour", err)
			}
		})
	}
}

func TestBlockRules(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFixture(t, etsim.Options{Now: clock}, et.Config{Sources: []string{"block"}}, nil)
	const file = "emerging-drop.suricata.rules"
	src := et.BlockFile(file)
	v1 := []byte("alert ip [1.2.3.4] any -> $HOME_NET any (msg:\"ET DROP\"; sid:2400000; rev:1;)\n")
	_ = f.sim.PutBlock(file, v1)
	ctx := t.Context()

	up, err := f.c.Check(ctx, src, et.State{})
	if err != nil || !up.Changed || up.Method != et.MethodNone || f.sim.Stats.Total() != 0 {
		t.Fatalf("first Check = %+v, %v after %d requests; want changed without asking", up, err, f.sim.Stats.Total())
	}
	var buf bytes.Buffer
	art, err := f.c.Download(ctx, src, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(v1) || art.State.ETag == "" || art.State.LastModified == "" || art.Verified {
		t.Fatalf("Download = %+v, %q", art, buf.String())
	}
	before := f.sim.Stats.Count(etsim.RouteBlockRules)
	up, err = f.c.Check(ctx, src, art.State)
	if err != nil || up.Changed || up.Method != et.MethodConditional {
		t.Fatalf("Check of an unchanged file = %+v, %v", up, err)
	}
	if got := f.sim.Stats.Count(etsim.RouteBlockRules) - before; got != 1 {
		t.Errorf("unchanged check made %d requests, want 1 (a 304)", got)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	_ = f.sim.PutBlock(file, append(v1, "# more\n"...))
	up, err = f.c.Check(ctx, src, art.State)
	if err != nil || !up.Changed || up.Remote.ETag == art.State.ETag {
		t.Fatalf("Check of a changed file = %+v, %v", up, err)
	}
	// Last-Modified alone also works.
	up, err = f.c.Check(ctx, src, et.State{LastModified: up.Remote.LastModified})
	if err != nil || up.Changed {
		t.Errorf("Check with Last-Modified only = %+v, %v", up, err)
	}

	_, err = f.c.Download(ctx, et.BlockFile("emerging-nothing.rules"), &bytes.Buffer{})
	if !errors.Is(err, et.ErrNotFound) || httpx.IsTransient(err) || !strings.Contains(err.Error(), "emerging-nothing.rules") {
		t.Errorf("Download of a missing file = %v, want a permanent ErrNotFound naming it", err)
	}
	if _, err := f.c.Download(ctx, et.SourceBlock, &bytes.Buffer{}); !errors.Is(err, et.ErrInvalidSource) {
		t.Errorf("Download(SourceBlock) = %v, want ErrInvalidSource (name a file)", err)
	}
}

func TestBadMD5File(t *testing.T) {
	t.Parallel()
	f := newFixture(t, etsim.Options{}, et.Config{}, nil)
	_ = f.sim.Put(etsim.SourceOpen, et.DefaultFlavor, []byte("x"))
	f.sim.SetMD5Override(etsim.SourceOpen, et.DefaultFlavor, "<html>oops</html>")
	_, err := f.c.Check(t.Context(), et.SourceOpen, et.State{})
	var de *httpx.DecodeError
	if !errors.Is(err, et.ErrBadMD5File) || !errors.As(err, &de) || httpx.IsTransient(err) {
		t.Errorf("Check = %v, want a permanent DecodeError with ErrBadMD5File", err)
	}
}

func TestServerTrouble(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		faults    sim.Faults
		timeout   time.Duration
		status    int
		retry     time.Duration
		transport bool
	}{
		{name: "503", faults: sim.Faults{ErrorRate: 1}, status: 503},
		{name: "500", faults: sim.Faults{ErrorRate: 1, ErrorStatus: 500}, status: 500},
		{name: "429", faults: sim.Faults{RateLimitRate: 1, RetryAfter: 7 * time.Second}, status: 429, retry: 7 * time.Second},
		{name: "dropped", faults: sim.Faults{DropRate: 1}, transport: true},
		{name: "timeout", faults: sim.Faults{Latency: 5 * time.Second}, timeout: 100 * time.Millisecond, transport: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, etsim.Options{}, et.Config{Timeout: tt.timeout}, nil)
			_ = f.sim.Put(etsim.SourceOpen, et.DefaultFlavor, []byte("x"))
			f.sim.Faults.Set(tt.faults)
			_, cerr := f.c.Check(t.Context(), et.SourceOpen, et.State{})
			_, derr := f.c.Download(t.Context(), et.SourceOpen, &bytes.Buffer{})
			for _, err := range []error{cerr, derr} {
				if !httpx.IsTransient(err) {
					t.Fatalf("err = %v, want transient", err)
				}
				var se *httpx.StatusError
				var te *httpx.TransportError
				switch {
				case tt.transport && !errors.As(err, &te):
					t.Errorf("err = %v, want an httpx.TransportError", err)
				case !tt.transport && (!errors.As(err, &se) || se.StatusCode != tt.status):
					t.Errorf("err = %v, want an httpx.StatusError %d", err, tt.status)
				case httpx.RetryAfterOf(err) != tt.retry:
					t.Errorf("RetryAfter = %v, want %v", httpx.RetryAfterOf(err), tt.retry)
				}
			}
		})
	}
}

func TestContextCanceled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, etsim.Options{}, et.Config{}, nil)
	_ = f.sim.Put(etsim.SourceOpen, et.DefaultFlavor, []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := f.c.Check(ctx, et.SourceOpen, et.State{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Check = %v, want context.Canceled", err)
	}
}

// TestFlavourPaths checks that ET_FLAVOR=suricata-7.0.6 asks for what
// suricata-update asks for (the full version; etsim, like ET, serves the
// 7.0.3 fork there) and that snort-2.9.7.0 asks for snort-2.9.7/, as
// pulledpork does; a 404 there names both flavours, the redacted path and
// what to try.
func TestFlavourPaths(t *testing.T) {
	t.Parallel()
	cp := loadCorpus(t, "suricata-2017")
	tests := []struct {
		name, flavor, put string
		source            et.Source
		want              []string
	}{
		{name: "suricata-update's full version", flavor: "suricata-7.0.6", put: "suricata-7.0.3", source: et.SourceOpen,
			want: []string{"/open/suricata-7.0.6/emerging.rules.tar.gz.md5", "/open/suricata-7.0.6/emerging.rules.tar.gz"}},
		{name: "pulledpork's snort version", flavor: "snort-2.9.7.0", put: "snort-2.9.7", source: et.SourceOpen,
			want: []string{"/open/snort-2.9.7/emerging.rules.tar.gz.md5", "/open/snort-2.9.7/emerging.rules.tar.gz"}},
		{name: "pro with a full version", flavor: "suricata-7.0.6", put: "suricata-7.0.3", source: et.SourcePro,
			want: []string{"/" + proCode + "/suricata-7.0.6/etpro.rules.tar.gz.md5", "/" + proCode + "/suricata-7.0.6/etpro.rules.tar.gz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, etsim.Options{Oinkcode: proCode}, et.Config{Flavor: tt.flavor, Sources: []string{string(tt.source)}, Oinkcode: proCode}, nil)
			simSrc := etsim.SourceOpen
			if tt.source == et.SourcePro {
				simSrc = etsim.SourcePro
			}
			if err := f.sim.Put(simSrc, tt.put, cp.tarball); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			art, err := f.c.Download(t.Context(), tt.source, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if !art.Verified || !bytes.Equal(buf.Bytes(), cp.tarball) {
				t.Errorf("artefact %+v, %d bytes", art, buf.Len())
			}
			if got := f.sim.Paths(); strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("paths %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("snort 404", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, etsim.Options{}, et.Config{Flavor: "snort-2.9.7.0"}, nil)
		_ = f.sim.Put(etsim.SourceOpen, "snort-2.9.0", cp.tarball)
		_, err := f.c.Download(t.Context(), et.SourceOpen, &bytes.Buffer{})
		if !errors.Is(err, et.ErrUnknownFlavour) || httpx.IsTransient(err) {
			t.Fatalf("Download = %v, want a permanent ErrUnknownFlavour", err)
		}
		for _, want := range []string{"flavour snort-2.9.7 (ET_FLAVOR snort-2.9.7.0)", "/open/snort-2.9.7/emerging.rules.tar.gz", "try ET_FLAVOR=snort-2.9.0"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
}
