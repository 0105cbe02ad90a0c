package etsim_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/sim/etsim"
)

const goodCode = "GOODCODE1"

func readShared(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newServer(t *testing.T, opts etsim.Options) (*etsim.Server, *httptest.Server) {
	t.Helper()
	s := etsim.New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	tarball := readShared(t, "et/suricata-2017/emerging.rules.tar.gz")
	wantMD5 := strings.TrimSpace(string(readShared(t, "et/suricata-2017/emerging.rules.tar.gz.md5")))
	s, srv := newServer(t, etsim.Options{Oinkcode: goodCode})
	for _, src := range []string{etsim.SourceOpen, etsim.SourceOpenNoGPL, etsim.SourcePro} {
		if err := s.Put(src, "suricata-5.0", tarball); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutBlock("emerging-drop.suricata.rules", []byte("alert ip any any -> any any (sid:1;)\n")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		status     int
		body       string // exact body when set
		route      string
	}{
		{"open tarball", "/open/suricata-5.0/emerging.rules.tar.gz", 200, string(tarball), etsim.RouteOpenTarball},
		{"open md5", "/open/suricata-5.0/emerging.rules.tar.gz.md5", 200, wantMD5 + "\n", etsim.RouteOpenMD5},
		{"open version", "/open/suricata-5.0/version.txt", 200, "", etsim.RouteOpenVersion},
		{"nogpl tarball", "/open-nogpl/suricata-5.0/emerging.rules.tar.gz", 200, string(tarball), etsim.RouteNoGPLTarball},
		{"nogpl md5", "/open-nogpl/suricata-5.0/emerging.rules.tar.gz.md5", 200, wantMD5 + "\n", etsim.RouteNoGPLMD5},
		{"pro tarball", "/" + goodCode + "/suricata-5.0/etpro.rules.tar.gz", 200, string(tarball), etsim.RouteProTarball},
		{"pro md5", "/" + goodCode + "/suricata-5.0/etpro.rules.tar.gz.md5", 200, wantMD5 + "\n", etsim.RouteProMD5},
		{"pro version", "/" + goodCode + "/suricata-5.0/version.txt", 200, "", etsim.RouteProVersion},
		{"pro wrong code", "/WRONG/suricata-5.0/etpro.rules.tar.gz", 403, "", etsim.RouteProTarball},
		{"pro wrong code md5", "/WRONG/suricata-5.0/etpro.rules.tar.gz.md5", 403, "", etsim.RouteProMD5},
		{"pro wrong code unknown flavour", "/WRONG/suricata-9.9/etpro.rules.tar.gz", 403, "", etsim.RouteProTarball},
		{"pro unknown flavour", "/" + goodCode + "/suricata-9.9/etpro.rules.tar.gz", 404, "", etsim.RouteProTarball},
		{"open unknown flavour", "/open/suricata-9.9/emerging.rules.tar.gz", 404, "", etsim.RouteOpenTarball},
		{"open unknown flavour md5", "/open/suricata-9.9/emerging.rules.tar.gz.md5", 404, "", etsim.RouteOpenMD5},
		{"block", "/blockrules/emerging-drop.suricata.rules", 200, "alert ip any any -> any any (sid:1;)\n", etsim.RouteBlockRules},
		{"block unknown", "/blockrules/emerging-tor.rules", 404, "", etsim.RouteBlockRules},
		{"block has no md5", "/blockrules/emerging-drop.suricata.rules.md5", 404, "", etsim.RouteBlockRules},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := s.Stats.Count(tt.route)
			resp, body, err := get(t, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.body != "" && string(body) != tt.body {
				t.Errorf("body = %.80q, want %.80q", body, tt.body)
			}
			if s.Stats.Count(tt.route) <= before {
				t.Errorf("route %q not counted", tt.route)
			}
		})
	}
}

func TestVersionAndHeaders(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 7, 29, 10, 0, 0, 0, time.UTC)
	s, srv := newServer(t, etsim.Options{Now: func() time.Time { return now }})
	if err := s.Put(etsim.SourceOpen, "suricata-5.0", []byte("one")); err != nil {
		t.Fatal(err)
	}
	_, v1, err := get(t, srv.URL+"/open/suricata-5.0/version.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(etsim.SourceOpen, "suricata-5.0", []byte("two")); err != nil {
		t.Fatal(err)
	}
	resp, v2, err := get(t, srv.URL+"/open/suricata-5.0/version.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	n1, err1 := strconv.Atoi(strings.TrimSpace(string(v1)))
	n2, err2 := strconv.Atoi(strings.TrimSpace(string(v2)))
	if err1 != nil || err2 != nil || n2 <= n1 {
		t.Errorf("version.txt went %q then %q, want increasing numbers", v1, v2)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("version.txt Content-Type = %q", ct)
	}
	resp, body, err := get(t, srv.URL+"/open/suricata-5.0/emerging.rules.tar.gz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "two" || resp.Header.Get("ETag") == "" || resp.Header.Get("Last-Modified") != now.Format(http.TimeFormat) {
		t.Errorf("tarball answer: body %q, headers %v", body, resp.Header)
	}
}

func TestRejectStatus401(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, etsim.Options{Oinkcode: goodCode, RejectStatus: http.StatusUnauthorized})
	if err := s.Put(etsim.SourcePro, "suricata-5.0", []byte("x")); err != nil {
		t.Fatal(err)
	}
	resp, _, err := get(t, srv.URL+"/nope/suricata-5.0/etpro.rules.tar.gz.md5", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", resp.StatusCode)
	}
}

func TestConditionalGet(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	s, srv := newServer(t, etsim.Options{Now: clock})
	const path = "/blockrules/emerging-tor.rules"
	if err := s.PutBlock("emerging-tor.rules", []byte("v1\n")); err != nil {
		t.Fatal(err)
	}
	resp, _, err := get(t, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lm == "" {
		t.Fatalf("no validators: %v", resp.Header)
	}
	tests := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"etag", map[string]string{"If-None-Match": etag}, 304},
		{"last-modified", map[string]string{"If-Modified-Since": lm}, 304},
		{"stale etag", map[string]string{"If-None-Match": `"other"`}, 200},
		{"none", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, _, err := get(t, srv.URL+path, tt.hdr)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	t.Run("changed", func(t *testing.T) {
		t.Parallel()
		s2, srv2 := newServer(t, etsim.Options{Now: clock})
		_ = s2.PutBlock("f.rules", []byte("v1\n"))
		r1, _, err := get(t, srv2.URL+"/blockrules/f.rules", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = s2.PutBlock("f.rules", []byte("v2 longer\n"))
		r2, body, err := get(t, srv2.URL+"/blockrules/f.rules", map[string]string{"If-None-Match": r1.Header.Get("ETag")})
		if err != nil {
			t.Fatal(err)
		}
		if r2.StatusCode != 200 || string(body) != "v2 longer\n" {
			t.Errorf("after a change: status %d body %q, want 200 and the new content", r2.StatusCode, body)
		}
	})
}

func TestMD5Override(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, etsim.Options{})
	if s.SetMD5Override(etsim.SourceOpen, "suricata-5.0", "x") {
		t.Error("override of a ruleset that does not exist reported true")
	}
	_ = s.Put(etsim.SourceOpen, "suricata-5.0", []byte("content"))
	wrong := strings.Repeat("0", 32)
	if !s.SetMD5Override(etsim.SourceOpen, "suricata-5.0", wrong) {
		t.Fatal("override reported false")
	}
	_, body, err := get(t, srv.URL+"/open/suricata-5.0/emerging.rules.tar.gz.md5", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != wrong+"\n" {
		t.Errorf("md5 = %q, want the override", body)
	}
	s.SetMD5Override(etsim.SourceOpen, "suricata-5.0", "")
	_, body, _ = get(t, srv.URL+"/open/suricata-5.0/emerging.rules.tar.gz.md5", nil)
	if string(body) != etsim.MD5Hex([]byte("content"))+"\n" {
		t.Errorf("md5 = %q, want the real one back", body)
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, etsim.Options{})
	content := bytes.Repeat([]byte("0123456789"), 1000)
	_ = s.Put(etsim.SourceOpen, "suricata-5.0", content)
	_ = s.PutBlock("b.rules", content)
	s.SetTruncate(1234)
	for _, path := range []string{"/open/suricata-5.0/emerging.rules.tar.gz", "/blockrules/b.rules"} {
		resp, body, err := get(t, srv.URL+path, nil)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: err = %v, want unexpected EOF", path, err)
		}
		if resp != nil && (resp.ContentLength != int64(len(content)) || len(body) != 1234) {
			t.Errorf("%s: Content-Length %d, got %d bytes; want %d announced, 1234 sent", path, resp.ContentLength, len(body), len(content))
		}
	}
	_, body, err := get(t, srv.URL+"/open/suricata-5.0/emerging.rules.tar.gz.md5", nil)
	if err != nil || len(body) != 33 {
		t.Errorf("the .md5 must not be cut: %q, %v", body, err)
	}
	s.SetTruncate(0)
	_, body, err = get(t, srv.URL+"/blockrules/b.rules", nil)
	if err != nil || len(body) != len(content) {
		t.Errorf("after SetTruncate(0): %d bytes, %v", len(body), err)
	}
}

func TestPutRejectsBadNames(t *testing.T) {
	t.Parallel()
	s := etsim.New(etsim.Options{})
	tests := []struct{ name, source, flavour string }{
		{"unknown source", "closed", "suricata-5.0"},
		{"empty flavour", etsim.SourceOpen, ""},
		{"slash in flavour", etsim.SourceOpen, "a/b"},
		{"dot-dot block", etsim.SourceBlock, ".."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := s.Put(tt.source, tt.flavour, nil); !errors.Is(err, etsim.ErrBadContent) {
				t.Errorf("Put = %v, want ErrBadContent", err)
			}
		})
	}
}

func members(t *testing.T, tgz []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = string(b)
	}
}

func TestRewriteTarball(t *testing.T) {
	t.Parallel()
	in := readShared(t, "et/suricata-2017/emerging.rules.tar.gz")
	const file = "rules/emerging-scan.rules"
	out, err := etsim.RewriteTarball(in, func(name string, content []byte) []byte {
		if name != file {
			return content
		}
		s := strings.Replace(string(content), "sid:2009555; rev:7;", "sid:2009555; rev:8;", 1)
		s = strings.Replace(s, "\nalert http $EXTERNAL_NET any -> $HTTP_SERVERS $HTTP_PORTS (msg:\"ET SCAN Acunetix Version 6 Crawl", "\n#alert http $EXTERNAL_NET any -> $HTTP_SERVERS $HTTP_PORTS (msg:\"ET SCAN Acunetix Version 6 Crawl", 1)
		return []byte(s)
	})
	if err != nil {
		t.Fatal(err)
	}
	before, after := members(t, in), members(t, out)
	if len(before) != len(after) {
		t.Fatalf("members: %d before, %d after", len(before), len(after))
	}
	for name, content := range before {
		if name == file {
			continue
		}
		if after[name] != content {
			t.Errorf("%s changed, want it kept", name)
		}
	}
	got := after[file]
	if !strings.Contains(got, "sid:2009555; rev:8;") || strings.Contains(got, "sid:2009555; rev:7;") {
		t.Error("rev of 2009555 not bumped")
	}
	if !strings.Contains(got, "\n#alert http $EXTERNAL_NET any -> $HTTP_SERVERS $HTTP_PORTS (msg:\"ET SCAN Acunetix Version 6 Crawl") {
		t.Error("sid 2008571 not disabled")
	}
	if etsim.MD5Hex(out) == etsim.MD5Hex(in) {
		t.Error("rewritten tarball has the same md5")
	}
	if _, err := etsim.RewriteTarball([]byte("not gzip"), nil); err == nil {
		t.Error("RewriteTarball of garbage: want an error")
	}
}

func TestWithholdMD5(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, etsim.Options{})
	if s.WithholdMD5(etsim.SourceOpen, "suricata-5.0", true) {
		t.Error("withholding the md5 of a ruleset that does not exist reported true")
	}
	_ = s.Put(etsim.SourceOpen, "suricata-5.0", []byte("content"))
	s.WithholdMD5(etsim.SourceOpen, "suricata-5.0", true)
	const md5Path = "/open/suricata-5.0/emerging.rules.tar.gz.md5"
	for _, tt := range []struct {
		path string
		want int
	}{
		{md5Path, 404},
		{"/open/suricata-5.0/emerging.rules.tar.gz", 200},
		{"/open/suricata-5.0/version.txt", 200},
	} {
		resp, _, err := get(t, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
	}
	s.WithholdMD5(etsim.SourceOpen, "suricata-5.0", false)
	if resp, _, err := get(t, srv.URL+md5Path, nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("md5 not published again: %v", err)
	}
}

// TestForkMapping checks that a full Suricata version, as suricata-update
// asks for it, is served from ET's fork for that version, that Snort
// directories are served only as put, and that Paths records what was
// asked for.
func TestForkMapping(t *testing.T) {
	t.Parallel()
	s := etsim.New(etsim.Options{})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	if err := s.Put(etsim.SourceOpen, "suricata-7.0.3", []byte("fork 7")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(etsim.SourceOpen, "suricata-5.0", []byte("fork 5")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		flavour string
		status  int
		body    string
	}{
		{"suricata-7.0.6", 200, "fork 7"},
		{"suricata-7.0.3", 200, "fork 7"},
		{"suricata-8.0.1", 200, "fork 7"},
		{"suricata-7.0.2", 200, "fork 5"},
		{"suricata-6.0.10", 200, "fork 5"},
		{"suricata-4.1.0", 404, ""},
		{"suricata-7.0", 404, ""},
		{"snort-2.9.7", 404, ""},
	}
	var want []string
	for _, tt := range tests {
		p := "/open/" + tt.flavour + "/emerging.rules.tar.gz"
		want = append(want, p)
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tt.status || tt.status == 200 && string(b) != tt.body {
			t.Errorf("%s: %d %q, want %d %q", tt.flavour, resp.StatusCode, b, tt.status, tt.body)
		}
	}
	if got := s.Paths(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Paths = %q, want %q", got, want)
	}
}
