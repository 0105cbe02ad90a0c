// Package etsim simulates the Emerging Threats rules servers
// (rules.emergingthreats.net and rules.emergingthreatspro.com) as described
// in shared/contracts/et.md, for tests and the local sandbox.
//
// One [Server] serves every layout under one root:
//
//	/open/<flavour>/emerging.rules.tar.gz       (+ .md5, and version.txt)
//	/open-nogpl/<flavour>/emerging.rules.tar.gz (+ .md5, and version.txt)
//	/<oinkcode>/<flavour>/etpro.rules.tar.gz    (+ .md5, and version.txt)
//	/blockrules/<file>                          plain files, no .md5
//	/fwrules/<file>                             plain files, no .md5
//
// The block-rules and fwrules directories hold rules files and IP lists
// (blockrules/compromised-ips.txt, fwrules/emerging-Block-IPs.txt) alike;
// like ET, the simulator serves whatever bytes were put, so a list fed to
// a rule parser, or rules to a list parser, is the client's problem.
//
// Like the real servers it maps a full Suricata version, which is what
// suricata-update asks for, onto one of ET's forks (see [ForkOf]): a
// request for open/suricata-7.0.6/ is served what was put under
// suricata-7.0.3. Snort directories are served only as put: whether ET
// answers for snort-2.9.7/ (what pulledpork asks for on Snort 2.9.7.0) is
// not known, so the simulator answers 404 unless a test puts it.
//
// Like the real servers it publishes next to every tarball a .md5 file
// holding the tarball's hex md5 and a newline, answers conditional GETs
// (ETag, Last-Modified) with 304, answers 404 for a flavour it does not
// have, and answers a wrong or missing oinkcode with 403 ("Expired code"),
// or 401 if [Options.RejectStatus] says so. Tests control the content with
// [Server.Put] and [Server.PutBlock], publish a wrong md5 with
// [Server.SetMD5Override], withhold it with [Server.WithholdMD5] and cut
// bodies short with [Server.SetTruncate].
//
// ET is read-only, so the ledger stays empty; tests count requests per
// route with Stats.Count and the Route constants.
package etsim

import (
	"bytes"
	"crypto/md5" //nolint:gosec // ET publishes md5; it is a change marker here, not a security control.
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tqflow/tqflow/pkg/sim"
)

// Route patterns, as counted by the embedded [sim.Stats]. The tarball and
// its .md5 are distinct routes, so a test can tell a check from a download.
const (
	RouteOpenTarball  = "GET /open/{flavour}/emerging.rules.tar.gz"
	RouteOpenMD5      = "GET /open/{flavour}/emerging.rules.tar.gz.md5"
	RouteOpenVersion  = "GET /open/{flavour}/version.txt"
	RouteNoGPLTarball = "GET /open-nogpl/{flavour}/emerging.rules.tar.gz"
	RouteNoGPLMD5     = "GET /open-nogpl/{flavour}/emerging.rules.tar.gz.md5"
	RouteNoGPLVersion = "GET /open-nogpl/{flavour}/version.txt"
	RouteProTarball   = "GET /{oinkcode}/{flavour}/etpro.rules.tar.gz"
	RouteProMD5       = "GET /{oinkcode}/{flavour}/etpro.rules.tar.gz.md5"
	RouteProVersion   = "GET /{oinkcode}/{flavour}/version.txt"
	RouteBlockRules   = "GET /blockrules/{file}"
	RouteFWRules      = "GET /fwrules/{file}"
)

const (
	openTarballName     = "emerging.rules.tar.gz"
	firstVersion        = 10000
	defaultRejectStatus = http.StatusForbidden
)

// Sources accepted by [Server.Put].
const (
	SourceOpen      = "open"
	SourceOpenNoGPL = "open-nogpl"
	SourcePro       = "pro"
	SourceBlock     = "block"
)

// ErrBadContent is returned by Put and PutBlock for a source, flavour or
// file name the server cannot serve.
var ErrBadContent = errors.New("etsim: bad content")

// Options configures a [Server].
type Options struct {
	// Seed seeds the fault injector.
	Seed uint64
	// Oinkcode is the one ET Pro oinkcode the server accepts; empty means
	// every Pro request is rejected.
	Oinkcode string
	// RejectStatus is the status of the answer to a wrong oinkcode: 403
	// (what the real server is reported to answer, "403 Forbidden - Expired
	// code") when zero, or 401.
	RejectStatus int
	// Now gives the Last-Modified time of content put; time.Now when nil.
	Now func() time.Time
}

// Server is the simulated ET rules server. It is safe for concurrent use.
type Server struct {
	sim.Base

	opts Options

	mu       sync.Mutex
	paths    []string
	sets     map[setKey]*file
	block    map[string]*file
	fw       map[string]*file
	version  int
	truncate int64
}

type setKey struct{ source, flavour string }

// file is one published artefact.
type file struct {
	body     []byte
	md5      string
	override string // published instead of md5 when set
	noMD5    bool   // the .md5 is withheld (404)
	version  int
	modTime  time.Time
}

func (f *file) etag() string {
	return `"` + strconv.FormatInt(f.modTime.Unix(), 16) + "-" + strconv.FormatInt(int64(len(f.body)), 16) + "-" + f.md5[:8] + `"`
}

func (f *file) publishedMD5() string {
	if f.override != "" {
		return f.override
	}
	return f.md5
}

// New returns a server with no content.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RejectStatus == 0 {
		opts.RejectStatus = defaultRejectStatus
	}
	return &Server{
		Base:    sim.NewBase(opts.Seed),
		opts:    opts,
		sets:    make(map[setKey]*file),
		block:   make(map[string]*file),
		fw:      make(map[string]*file),
		version: firstVersion,
	}
}

// MD5Hex returns the hex md5 of b, as ET publishes it.
func MD5Hex(b []byte) string {
	sum := md5.Sum(b) //nolint:gosec // See the import.
	return hex.EncodeToString(sum[:])
}

// Put publishes tarball as the ruleset of source ("open", "open-nogpl" or
// "pro") and flavour (e.g. "suricata-5.0"), with its md5 and a new
// version.txt number. For source "block", flavour is the file name and
// Put is [Server.PutBlock]. A wrong-md5 override set earlier is cleared.
func (s *Server) Put(source, flavour string, tarball []byte) error {
	if source == SourceBlock {
		return s.PutBlock(flavour, tarball)
	}
	switch source {
	case SourceOpen, SourceOpenNoGPL, SourcePro:
	default:
		return fmt.Errorf("%w: unknown source %q", ErrBadContent, source)
	}
	if !validName(flavour) {
		return fmt.Errorf("%w: flavour %q", ErrBadContent, flavour)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version++
	s.sets[setKey{source, flavour}] = s.newFile(tarball)
	return nil
}

// PutBlock publishes content as /blockrules/<name>.
func (s *Server) PutBlock(name string, content []byte) error {
	if !validName(name) {
		return fmt.Errorf("%w: block file %q", ErrBadContent, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.block[name] = s.newFile(content)
	return nil
}

// PutList publishes content at path, "blockrules/<file>" or
// "fwrules/<file>" (an IP list such as fwrules/emerging-Block-IPs.txt):
// plain files with ETag and Last-Modified and no .md5.
func (s *Server) PutList(path string, content []byte) error {
	dir, name, _ := strings.Cut(path, "/")
	if !validName(name) {
		return fmt.Errorf("%w: list file %q", ErrBadContent, path)
	}
	switch dir {
	case "blockrules":
		return s.PutBlock(name, content)
	case "fwrules":
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fw[name] = s.newFile(content)
		return nil
	}
	return fmt.Errorf("%w: list directory %q: want blockrules or fwrules", ErrBadContent, dir)
}

func (s *Server) newFile(body []byte) *file {
	return &file{
		body:    bytes.Clone(body),
		md5:     MD5Hex(body),
		version: s.version,
		modTime: s.opts.Now().UTC().Truncate(time.Second),
	}
}

// SetMD5Override makes the .md5 of source and flavour publish sum instead
// of the tarball's real md5; an empty sum restores the real one. It reports
// whether that ruleset exists.
func (s *Server) SetMD5Override(source, flavour, sum string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.sets[setKey{source, flavour}]
	if ok {
		f.override = sum
	}
	return ok
}

// WithholdMD5 makes the .md5 of source and flavour answer 404 (as for a
// mirror that does not carry it, or ET Pro, which suricata-update fetches
// without a checksum) or, with withhold false, publishes it again. It
// reports whether that ruleset exists.
func (s *Server) WithholdMD5(source, flavour string, withhold bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.sets[setKey{source, flavour}]
	if ok {
		f.noMD5 = withhold
	}
	return ok
}

// SetTruncate makes every tarball and block-rules answer announce its full
// Content-Length, send only the first n bytes and close the connection; zero
// (or less) turns it off.
func (s *Server) SetTruncate(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncate = n
}

// maxPaths bounds the request paths a Server remembers.
const maxPaths = 4096

// Paths returns the URL paths of the requests the server received, oldest
// first (at most the last 4096), oinkcodes included as sent.
func (s *Server) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.paths)
}

func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if len(s.paths) == maxPaths {
			s.paths = slices.Delete(s.paths, 0, maxPaths/2)
		}
		s.paths = append(s.paths, r.URL.Path)
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// ForkOf returns the fork directory ET serves for a full Suricata version
// directory, as ET announced it for suricata-update users
// (shared/contracts/et.md §1.1 and corrections 2): suricata-7.0.3 for 7.0.3
// and later, suricata-5.0 for 5.x, 6.x and 7.0.0 to 7.0.2. It reports false
// for anything else (a fork name itself, a Snort flavour, older versions).
func ForkOf(flavour string) (string, bool) {
	v, ok := strings.CutPrefix(flavour, "suricata-")
	if !ok {
		return "", false
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return "", false
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || len(p) > 3 {
			return "", false
		}
		n[i] = x
	}
	switch {
	case n[0] > 7 || n[0] == 7 && (n[1] > 0 || n[2] >= 3):
		return "suricata-7.0.3", true
	case n[0] >= 5:
		return "suricata-5.0", true
	}
	return "", false
}

// Handler returns the server's HTTP handler, admin routes included.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, src := range []string{SourceOpen, SourceOpenNoGPL} {
		mux.HandleFunc("GET /"+src+"/{flavour}/"+openTarballName, s.serveSet(src, kindTarball))
		mux.HandleFunc("GET /"+src+"/{flavour}/"+openTarballName+".md5", s.serveSet(src, kindMD5))
		mux.HandleFunc("GET /"+src+"/{flavour}/version.txt", s.serveSet(src, kindVersion))
	}
	mux.HandleFunc(RouteProTarball, s.servePro(kindTarball))
	mux.HandleFunc(RouteProMD5, s.servePro(kindMD5))
	mux.HandleFunc(RouteProVersion, s.servePro(kindVersion))
	mux.HandleFunc(RouteBlockRules, s.servePlain(func() map[string]*file { return s.block }))
	mux.HandleFunc(RouteFWRules, s.servePlain(func() map[string]*file { return s.fw }))
	return s.record(s.Base.Handler(mux, nil))
}

type kind int

const (
	kindTarball kind = iota
	kindMD5
	kindVersion
)

func (s *Server) serveSet(source string, k kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.serveFile(w, r, setKey{source, r.PathValue("flavour")}, k)
	}
}

func (s *Server) servePro(k kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		code := r.PathValue("oinkcode")
		if s.opts.Oinkcode == "" || code != s.opts.Oinkcode {
			http.Error(w, "Expired code", s.opts.RejectStatus)
			return
		}
		s.serveFile(w, r, setKey{SourcePro, r.PathValue("flavour")}, k)
	}
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, key setKey, k kind) {
	s.mu.Lock()
	f, ok := s.sets[key]
	if !ok {
		if fork, mapped := ForkOf(key.flavour); mapped {
			f, ok = s.sets[setKey{key.source, fork}]
		}
	}
	var cp file
	if ok {
		cp = *f
	}
	truncate := s.truncate
	s.mu.Unlock()
	if !ok || k == kindMD5 && cp.noMD5 {
		http.NotFound(w, r)
		return
	}
	switch k {
	case kindMD5:
		w.Header().Set("Content-Type", "text/plain")
		http.ServeContent(w, r, "", cp.modTime, strings.NewReader(cp.publishedMD5()+"\n"))
	case kindVersion:
		w.Header().Set("Content-Type", "text/plain")
		http.ServeContent(w, r, "", cp.modTime, strings.NewReader(strconv.Itoa(cp.version)+"\n"))
	default:
		w.Header().Set("Content-Type", "application/x-gzip")
		serveBody(w, r, &cp, truncate)
	}
}

// servePlain serves the plain files of the map files returns, which it
// reads under s.mu.
func (s *Server) servePlain(files func() map[string]*file) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.serveFrom(w, r, files) }
}

func (s *Server) serveFrom(w http.ResponseWriter, r *http.Request, files func() map[string]*file) {
	s.mu.Lock()
	f, ok := files()[r.PathValue("file")]
	var cp file
	if ok {
		cp = *f
	}
	truncate := s.truncate
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	serveBody(w, r, &cp, truncate)
}

// serveBody serves f with ETag and Last-Modified, honouring conditional and
// range requests, or cuts it short after truncate bytes.
func serveBody(w http.ResponseWriter, r *http.Request, f *file, truncate int64) {
	w.Header().Set("ETag", f.etag())
	if truncate <= 0 || truncate >= int64(len(f.body)) || r.Method == http.MethodHead {
		http.ServeContent(w, r, "", f.modTime, bytes.NewReader(f.body))
		return
	}
	w.Header().Set("Last-Modified", f.modTime.Format(http.TimeFormat))
	w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(f.body[:truncate])
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2 or a recorder: abort the stream instead.
}

// validName reports whether name is a single, plain path segment.
func validName(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}
