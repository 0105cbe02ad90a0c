package ctrsim

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tqflow/tqflow/pkg/sim"
)

// Route patterns, as counted by the embedded [sim.Stats].
const (
	RouteToken      = "POST /iroh/oauth2/token"
	RouteObserve    = "POST /iroh/iroh-enrich/observe/observables"
	RouteDeliberate = "POST /iroh/iroh-enrich/deliberate/observables"
	RouteSettings   = "GET /iroh/iroh-enrich/settings"
)

// Default credentials, accepted when Options.Clients is nil.
const (
	DefaultClientID       = "client-00000000-0000-4000-8000-000000000000"
	DefaultClientPassword = "sim-password-sim-password-sim-password-sim-password-xx"
)

// Defaults of [Options].
const (
	DefaultTokenTTL   = 600 * time.Second
	DefaultRateLimit  = 8000
	DefaultRateWindow = time.Hour
)

// maxRequestBody bounds an enrich request body.
const maxRequestBody = 16 << 20

// Options configures a [Server].
type Options struct {
	// Seed seeds the fault injector, the tokens and the module errors.
	Seed uint64
	// Clients maps API client ids to passwords; nil means one client,
	// DefaultClientID with DefaultClientPassword.
	Clients map[string]string
	// TokenTTL is the tokens' expires_in; DefaultTokenTTL (600 s) when zero.
	TokenTTL time.Duration
	// RateLimit is how many API requests the org may make per RateWindow
	// (a rolling window); DefaultRateLimit (8000) when zero, none when
	// negative. Over it the answer is 429 with Retry-After in seconds.
	RateLimit int
	// RateWindow is the window of RateLimit; DefaultRateWindow (an hour)
	// when zero.
	RateWindow time.Duration
	// MaxObservables, when positive, caps the observables of one enrich
	// request; over it the answer is 413. The real limit is undocumented.
	MaxObservables int
	// ModuleErrorRate is the share (0 to 1) of module answers replaced by a
	// per-module error inside the 200 ({"type":"fatal","code":"too many
	// requests",…}), as a relay module reports its upstream's rate limit.
	ModuleErrorRate float64
	// RetryAfter is how the org limit's 429 states its Retry-After;
	// RetryAfterSeconds when empty.
	RetryAfter RetryAfterStyle
	// Now is the clock of token expiry, the rate window and default
	// validity; time.Now when nil.
	Now func() time.Time
}

// RetryAfterStyle is how a 429 over the org's limit states when to come
// back (ctr.md, corrections 2).
type RetryAfterStyle string

// Retry-After styles.
const (
	// RetryAfterSeconds is the documented form, whole seconds ("3557").
	RetryAfterSeconds RetryAfterStyle = "seconds"
	// RetryAfterSuffixed is the "3172s" form one summary reports.
	RetryAfterSuffixed RetryAfterStyle = "suffixed"
	// RetryAfterMissing leaves the header out.
	RetryAfterMissing RetryAfterStyle = "missing"
)

// Refusal is a condition under which CTR refuses every call, whatever it
// is asked (ctr.md, corrections 3).
type Refusal string

// Refusals.
const (
	// RefuseNone answers normally.
	RefuseNone Refusal = ""
	// RefuseMissingScope answers every enrich call 403 missing_scope: the
	// API client lacks the Enrich scope (enrich:read). Tokens are still
	// minted.
	RefuseMissingScope Refusal = "missing_scope"
	// RefuseRevoked is an API client deleted or disabled: the token route
	// answers 401 invalid_client and tokens minted before stop working.
	RefuseRevoked Refusal = "revoked"
)

// Server simulates the CTR (IROH) token and enrich routes. It is safe for
// concurrent use.
type Server struct {
	sim.Base
	opts Options
	now  func() time.Time

	kbMu    sync.RWMutex
	modules []*module
	byInst  map[string]int
	kb      map[okey][]*entry

	tokMu  sync.Mutex
	tokens map[string]time.Time
	rng    *rand.Rand

	rateMu sync.Mutex
	times  []time.Time // accepted requests in the window, oldest first
	head   int

	observables atomic.Int64
	askedMu     sync.Mutex
	asked       map[Observable]int64

	modeMu     sync.Mutex
	refusal    Refusal
	errRate    float64
	retryStyle RetryAfterStyle
	requests   []time.Time // every API request that reached the org limit, in order
}

// maxRequestLog bounds the request log.
const maxRequestLog = 1 << 20

// SetRefusal makes CTR refuse every call as r says from now on;
// RefuseNone restores normal answers (the scope granted again, the client
// re-enabled).
func (s *Server) SetRefusal(r Refusal) {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	s.refusal = r
}

// SetModuleErrorRate changes Options.ModuleErrorRate from now on.
func (s *Server) SetModuleErrorRate(rate float64) {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	s.errRate = rate
}

// SetRetryAfter changes Options.RetryAfter from now on.
func (s *Server) SetRetryAfter(style RetryAfterStyle) {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	s.retryStyle = style
}

func (s *Server) mode() (Refusal, float64, RetryAfterStyle) {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	return s.refusal, s.errRate, s.retryStyle
}

// Requests returns when each API request (enrich and settings, not token
// calls) reached the org's rate limit, in order, whether admitted or not:
// the log a test checks a client's pacing against. It keeps the last
// 1,048,576.
func (s *Server) Requests() []time.Time {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	return slices.Clone(s.requests)
}

// MaxInWindow returns the most requests of the log that fell in any window
// of length w (a window starting at each request).
func MaxInWindow(log []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range log {
		for log[i].Sub(log[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// New returns a server with an empty knowledge base.
func New(opts Options) *Server {
	if opts.Clients == nil {
		opts.Clients = map[string]string{DefaultClientID: DefaultClientPassword}
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = DefaultRateWindow
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.RetryAfter == "" {
		opts.RetryAfter = RetryAfterSeconds
	}
	return &Server{
		errRate:    opts.ModuleErrorRate,
		retryStyle: opts.RetryAfter,
		Base:       sim.NewBase(opts.Seed),
		opts:       opts,
		now:        now,
		byInst:     make(map[string]int),
		kb:         make(map[okey][]*entry),
		tokens:     make(map[string]time.Time),
		asked:      make(map[Observable]int64),
		rng:        rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5bd1e9955bd1e995)),
	}
}

// ObservablesReceived returns how many observables the enrich routes have
// received in requests that passed validation.
func (s *Server) ObservablesReceived() int64 { return s.observables.Load() }

// Asked returns how many times the enrich routes have received each
// observable, as sent, in requests that passed validation: what a test
// needs to tell which observables a client asked about, not only how many.
func (s *Server) Asked() map[Observable]int64 {
	s.askedMu.Lock()
	defer s.askedMu.Unlock()
	return maps.Clone(s.asked)
}

// Handler returns the HTTP handler: the IROH routes wrapped in the fault
// injector and statistics, plus the admin routes of [sim.Base] and GET
// /_sim/ctr (observables received).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(RouteToken, s.serveToken)
	mux.HandleFunc(RouteObserve, func(w http.ResponseWriter, r *http.Request) { s.serveEnrich(w, r, true) })
	mux.HandleFunc(RouteDeliberate, func(w http.ResponseWriter, r *http.Request) { s.serveEnrich(w, r, false) })
	mux.HandleFunc(RouteSettings, s.serveSettings)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Ratelimit-Org-Limit", strconv.Itoa(max(s.opts.RateLimit, 0)))
		h.Set("X-Iroh-Version", "1.0.107")
		h.Set("X-Ctim-Version", "1.3.28")
		mux.ServeHTTP(w, r)
	})
	admin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int64{"observables_received": s.ObservablesReceived()})
	})
	return s.Base.Handler(api, map[string]http.Handler{"GET " + sim.AdminPrefix + "ctr": admin})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"unknown server error"}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// normalizedError writes IROH's NormalizedError body.
func normalizedError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// serveToken is the OAuth2 client-credentials grant: HTTP Basic client
// authentication and a form body only.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	id, pw, ok := r.BasicAuth()
	want, known := s.opts.Clients[id]
	if refusal, _, _ := s.mode(); refusal == RefuseRevoked {
		known = false
	}
	if !ok || !known || pw != want {
		w.Header().Set("WWW-Authenticate", `Basic realm="iroh"`)
		normalizedError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		normalizedError(w, http.StatusBadRequest, "invalid_request", "Expected an application/x-www-form-urlencoded body")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		normalizedError(w, http.StatusBadRequest, "invalid_request", "Malformed form body")
		return
	}
	switch g := r.PostForm.Get("grant_type"); g {
	case "client_credentials":
	case "":
		normalizedError(w, http.StatusBadRequest, "invalid_request", "Missing grant_type")
		return
	default:
		normalizedError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type")
		return
	}
	s.tokMu.Lock()
	now := s.now()
	for t, exp := range s.tokens {
		if !now.Before(exp) {
			delete(s.tokens, t)
		}
	}
	var raw [24]byte
	for i := 0; i < len(raw); i += 8 {
		v := s.rng.Uint64()
		for j := range 8 {
			raw[i+j] = byte(v >> (8 * j))
		}
	}
	tok := "eyJhbGciOiJSUzI1NiJ9.sim." + hex.EncodeToString(raw[:])
	s.tokens[tok] = now.Add(s.opts.TokenTTL)
	s.tokMu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "bearer",
		"expires_in":   int64(s.opts.TokenTTL / time.Second),
		"scope":        "enrich:read casebook inspect:read",
	})
}

// authorize checks the bearer token and the org's rate limit, answering
// the request itself when either fails.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		normalizedError(w, http.StatusUnauthorized, "invalid_request", "No JWT found in HTTP Authorization header")
		return false
	}
	s.tokMu.Lock()
	exp, known := s.tokens[tok]
	now := s.now()
	s.tokMu.Unlock()
	refusal, _, style := s.mode()
	switch {
	case !known || refusal == RefuseRevoked:
		normalizedError(w, http.StatusUnauthorized, "invalid_token", "JWT could not be verified")
		return false
	case !now.Before(exp):
		normalizedError(w, http.StatusUnauthorized, "invalid_token", "JWT expired")
		return false
	}
	s.modeMu.Lock()
	if len(s.requests) >= maxRequestLog {
		s.requests = append(s.requests[:0], s.requests[len(s.requests)/2:]...)
	}
	s.requests = append(s.requests, now)
	s.modeMu.Unlock()
	if wait, ok := s.admit(now); !ok {
		secs := max(1, int64((wait+time.Second-1)/time.Second))
		switch style {
		case RetryAfterSuffixed:
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10)+"s")
		case RetryAfterMissing:
		default:
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
		writeRaw(w, http.StatusTooManyRequests, []byte(`{"error":"Too Many Requests"}`+"\n"))
		return false
	}
	if refusal == RefuseMissingScope && r.URL.Path != "/iroh/iroh-enrich/settings" {
		writeJSON(w, http.StatusForbidden, map[string]any{
			"error":             "missing_scope",
			"error_description": "You do not have the required credentials to access this route.",
			"missing-scopes":    []string{"enrich:read"},
			"required-scopes":   []string{"enrich:read"},
			"scopes":            []string{"casebook", "inspect:read"},
			"user-id":           "sim-user",
			"org-id":            "sim-org",
			"trace_id":          "ctx-" + uuidOf("trace", now.String()),
		})
		return false
	}
	return true
}

// admit counts a request against the rolling window, or says how long
// until the window frees a slot.
func (s *Server) admit(now time.Time) (time.Duration, bool) {
	limit := s.opts.RateLimit
	if limit < 0 {
		return 0, true
	}
	s.rateMu.Lock()
	defer s.rateMu.Unlock()
	if s.times == nil {
		s.times = make([]time.Time, 0, min(limit, 1<<16))
	}
	cutoff := now.Add(-s.opts.RateWindow)
	for s.head < len(s.times) && !s.times[s.head].After(cutoff) {
		s.head++
	}
	if s.head > 0 && s.head >= len(s.times)/2 {
		s.times = append(s.times[:0], s.times[s.head:]...)
		s.head = 0
	}
	if len(s.times)-s.head >= limit {
		return s.times[s.head].Add(s.opts.RateWindow).Sub(now), false
	}
	s.times = append(s.times, now)
	return 0, true
}

func (s *Server) serveSettings(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	writeRaw(w, http.StatusOK, []byte(`{"settings":{}}`))
}

// serveEnrich answers observe (full) or deliberate (verdicts only).
func (s *Server) serveEnrich(w http.ResponseWriter, r *http.Request, observe bool) {
	if !s.authorize(w, r) {
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		normalizedError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"Content-Type must be application/json, application/edn or application/transit+json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		normalizedError(w, http.StatusRequestEntityTooLarge, "request_entity_too_large", "Request body too large")
		return
	}
	obs, status, problem := s.parseObservables(body)
	if status != http.StatusOK {
		writeRaw(w, status, problem)
		return
	}
	s.observables.Add(int64(len(obs)))
	s.askedMu.Lock()
	for _, o := range obs {
		s.asked[o]++
	}
	s.askedMu.Unlock()
	writeRaw(w, http.StatusOK, s.answer(obs, r.URL.Query()["mids"], observe))
}

// parseObservables validates the body as IROH's schema does: a JSON array
// of objects with exactly the string keys type (one of the enum) and
// value. Any bad item refuses the whole batch with 400.
func (s *Server) parseObservables(body []byte) ([]Observable, int, []byte) {
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		if !json.Valid(body) {
			return nil, http.StatusBadRequest, []byte(`{"error":"invalid_request","error_description":"Malformed JSON in request body"}`)
		}
		return nil, http.StatusBadRequest, []byte(`{"errors":"(not (sequential? a-clojure.lang.PersistentArrayMap))"}`)
	}
	if s.opts.MaxObservables > 0 && len(items) > s.opts.MaxObservables {
		return nil, http.StatusRequestEntityTooLarge, fmt.Appendf(nil,
			`{"error":"request_entity_too_large","error_description":"Too many observables: %d, at most %d"}`,
			len(items), s.opts.MaxObservables)
	}
	obs := make([]Observable, 0, len(items))
	problems := make(map[string]any)
	for i, it := range items {
		p := map[string]string{}
		var fields map[string]json.RawMessage
		if json.Unmarshal(it, &fields) != nil || fields == nil {
			problems[strconv.Itoa(i)] = "(not (map? a-" + kindOf(it) + "))"
			continue
		}
		var o Observable
		for k, v := range fields {
			switch k {
			case "type", "value":
				var str string
				if json.Unmarshal(v, &str) != nil {
					p[k] = "(not (instance? java.lang.String " + string(v) + "))"
				} else if k == "type" {
					o.Type = str
				} else {
					o.Value = str
				}
			default:
				p[k] = "disallowed-key"
			}
		}
		for _, k := range []string{"type", "value"} {
			if _, ok := fields[k]; !ok {
				p[k] = "missing-required-key"
			}
		}
		if _, bad := p["type"]; !bad && fields["type"] != nil && !observableTypes[o.Type] {
			b, _ := json.Marshal(o.Type)
			p["type"] = "(not (#{\"ip\" \"domain\" \"sha256\" ...63 observable types} " + string(b) + "))"
		}
		if len(p) > 0 {
			problems[strconv.Itoa(i)] = p
			continue
		}
		obs = append(obs, o)
	}
	if len(problems) > 0 {
		b, err := json.Marshal(map[string]any{"errors": problems})
		if err != nil {
			b = []byte(`{"errors":{}}`)
		}
		return nil, http.StatusBadRequest, b
	}
	return obs, http.StatusOK, nil
}

// moduleFails decides, from the seeded generator, whether one module's
// answer to one request is replaced by an error.
func (s *Server) moduleFails() bool {
	_, rate, _ := s.mode()
	if rate <= 0 {
		return false
	}
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	return s.rng.Float64() < rate
}

// kindOf names the JSON kind of a value, for a schema error message.
func kindOf(b json.RawMessage) string {
	switch t := strings.TrimSpace(string(b)); {
	case t == "null":
		return "nil"
	case strings.HasPrefix(t, "["):
		return "vector"
	case strings.HasPrefix(t, `"`):
		return "string"
	case t == "true" || t == "false":
		return "boolean"
	}
	return "number"
}
