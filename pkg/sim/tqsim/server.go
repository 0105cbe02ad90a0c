package tqsim

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tqflow/tqflow/pkg/sim"
)

// System is the ledger's System for every entry of this simulator.
const System = "threatq"

// User is an account of the password grant.
type User struct {
	Email    string
	Password string
	// ClientID is the user's API client id, which the password grant
	// requires beside the password.
	ClientID string
}

// OAuthClient is an OAuth client of the client-credentials grant.
type OAuthClient struct {
	ID     string
	Secret string
}

// DefaultUser and DefaultClient are the accounts accepted when Options
// names none.
var (
	DefaultUser   = User{Email: "analyst@example.com", Password: "tqsim-password", ClientID: "tqsim-user-client"}
	DefaultClient = OAuthClient{ID: "tqsim-oauth-client", Secret: "tqsim-oauth-secret"}
)

// Options configures a [Server].
type Options struct {
	// Seed drives the fault injector, the tokens and the default id shift.
	Seed uint64
	// Users and Clients are the accepted credentials; when both are empty,
	// DefaultUser and DefaultClient.
	Users   []User
	Clients []OAuthClient
	// TokenTTL is the lifetime of a token (expires_in); one hour when zero.
	TokenTTL time.Duration
	// TokenRedirect, when set, makes POST /api/token answer 302 to this
	// URL, to check that clients never follow a token redirect.
	TokenRedirect string
	// AllowSuricataType adds a custom "Suricata" signature type; a stock
	// instance has none (contract §3).
	AllowSuricataType bool
	// IDShift moves every type and status id away from 1..n, as ids differ
	// per instance; when zero it is derived from Seed (never zero).
	IDShift int
	// EmptyPagesAsArray answers an empty page with "data": []; by default
	// it is "data": {}, as real instances do (contract §1).
	EmptyPagesAsArray bool
	// NoSignatureStatusRoute makes GET /api/signature/statuses answer 404,
	// as on versions where statuses are only in /api/objects.
	NoSignatureStatusRoute bool
	// PutIgnoresWith makes PUT /api/indicators/{id} ignore "with" and
	// answer the indicator with its attributes and sources but not the
	// rows' own sources, as an instance whose update route does not eager
	// load what it is asked for would. By default PUT honours "with" as GET
	// does (XSOAR sends ?with=attributes,sources,score on it, contract §5.3).
	PutIgnoresWith bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Server is a simulated ThreatQ instance. It is safe for concurrent use.
type Server struct {
	sim.Base

	opts Options
	now  func() time.Time

	ref refData

	tokMu     sync.Mutex
	rng       *rand.Rand
	tokens    map[string]time.Time // access token -> expiry
	refreshes map[string]bool
	minted    atomic.Int64

	mu     sync.RWMutex
	inds   map[int64]*indicator
	byKey  map[ikey]*indicator
	order  []*indicator // sorted by (updated, id) when sorted
	sorted bool
	// inPlace counts the changes applied to the sorted order in place
	// since the last sort; past maxIncremental, further ones wait for the
	// next query's sort.
	inPlace   int
	gen       uint64 // bumped by every change a query can see
	nextInd   int64
	nextRow   int64
	sigs      map[ikey]*signature
	sigByID   map[int64]*signature
	sigOrder  []*signature
	nextSig   int64
	searches  []*search
	nextSrch  int64
	rejects   []string
	cacheMu   sync.Mutex
	cache     map[string]*cached
	pageEmpty []byte
}

// New returns a simulator holding no indicators.
func New(opts Options) *Server {
	if len(opts.Users) == 0 && len(opts.Clients) == 0 {
		opts.Users = []User{DefaultUser}
		opts.Clients = []OAuthClient{DefaultClient}
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.IDShift == 0 {
		opts.IDShift = 7 + int(opts.Seed%89)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		Base:      sim.NewBase(opts.Seed),
		opts:      opts,
		now:       now,
		rng:       rand.New(rand.NewPCG(opts.Seed^0x51ed, opts.Seed+0x7a3)),
		tokens:    map[string]time.Time{},
		refreshes: map[string]bool{},
		inds:      map[int64]*indicator{},
		byKey:     map[ikey]*indicator{},
		sorted:    true,
		sigs:      map[ikey]*signature{},
		sigByID:   map[int64]*signature{},
		cache:     map[string]*cached{},
		nextInd:   1,
		nextRow:   1,
		nextSig:   1,
		nextSrch:  1,
	}
	s.ref = newRefData(opts.IDShift, opts.AllowSuricataType)
	if opts.EmptyPagesAsArray {
		s.pageEmpty = []byte("[]")
	} else {
		s.pageEmpty = []byte("{}")
	}
	return s
}

// Handler returns the simulator's HTTP handler: the API under /api/, the
// shared admin routes of pkg/sim and this simulator's own under
// /_sim/threatq/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/token", s.serveToken)
	api := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.auth(h)) }
	api("GET /api/indicator/types", s.serveRef(&s.ref.indTypes))
	api("GET /api/indicator/statuses", s.serveRef(&s.ref.indStatuses))
	api("GET /api/signature/types", s.serveRef(&s.ref.sigTypes))
	api("GET /api/signature/statuses", s.serveSigStatuses)
	api("GET /api/objects", s.serveObjects)
	api("GET /api/search/query", s.serveSearches)
	api("POST /api/search/query", s.createSearch)
	api("POST /api/indicators/query", s.serveQuery)
	api("POST /api/indicators/consume", s.consumeIndicators)
	api("GET /api/indicators/{id}", s.serveIndicator)
	api("PUT /api/indicators/{id}", s.updateIndicator)
	api("GET /api/indicators/{id}/attributes", s.serveAttributes)
	api("POST /api/indicators/{id}/attributes", s.addAttribute)
	api("PUT /api/indicators/{id}/attributes/{row}", s.updateAttribute)
	api("DELETE /api/indicators/{id}/attributes/{row}", s.deleteAttribute)
	api("POST /api/signatures/consume", s.consumeSignatures)
	api("PUT /api/signatures/{id}", s.updateSignature)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{"Route not found."}})
	})
	return s.Base.Handler(mux, s.adminRoutes())
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode answer", http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

// writeRaw writes a JSON body with status.
func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// validation answers 400 with the API's validation shape
// {"data":{"errors":{field:[msg]}}}.
func validation(w http.ResponseWriter, errs map[string][]string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"data": map[string]any{"errors": errs}})
}

// notFound answers 404 as the API does for a missing object.
func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{"Object does not exist"}})
}

// readBody reads a request body of at most 64 MB.
func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, 64<<20))
}

// serveToken implements POST /api/token: the password grant as a JSON
// body, as query parameters plus a JSON body, or as a form; client
// credentials with HTTP Basic (or in the form); and refresh tokens.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if s.opts.TokenRedirect != "" {
		http.Redirect(w, r, s.opts.TokenRedirect, http.StatusFound)
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "Unreadable body."})
		return
	}
	params := url.Values{}
	for k, v := range r.URL.Query() {
		params[k] = v
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		form, err := url.ParseQuery(string(body))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "Malformed form body."})
			return
		}
		for k, v := range form {
			params[k] = v
		}
	case len(strings.TrimSpace(string(body))) > 0:
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "Malformed JSON body."})
			return
		}
		for k, v := range m {
			if s, ok := v.(string); ok {
				params.Set(k, s)
			}
		}
	}
	switch params.Get("grant_type") {
	case "password":
		for _, u := range s.opts.Users {
			if u.Email == params.Get("email") && u.Password == params.Get("password") && u.ClientID == params.Get("client_id") {
				s.issue(w)
				return
			}
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "message": "The user credentials were incorrect."})
	case "client_credentials":
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = params.Get("client_id"), params.Get("client_secret")
		}
		for _, c := range s.opts.Clients {
			if c.ID == id && c.Secret == secret && id != "" {
				s.issue(w)
				return
			}
		}
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "message": "Client authentication failed"})
	case "refresh_token":
		s.tokMu.Lock()
		ok := s.refreshes[params.Get("refresh_token")]
		delete(s.refreshes, params.Get("refresh_token"))
		s.tokMu.Unlock()
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "message": "The refresh token is invalid."})
			return
		}
		s.issue(w)
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "message": "The authorization grant type is not supported by the authorization server."})
	}
}

// issue mints a token and answers with it.
func (s *Server) issue(w http.ResponseWriter) {
	s.tokMu.Lock()
	var b [24]byte
	for i := range b {
		b[i] = byte(s.rng.Uint32())
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	for i := range b {
		b[i] = byte(s.rng.Uint32())
	}
	refresh := hex.EncodeToString(b[:])
	now := s.now()
	for t, exp := range s.tokens {
		if !now.Before(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = now.Add(s.opts.TokenTTL)
	s.refreshes[refresh] = true
	s.tokMu.Unlock()
	s.minted.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer",
		"expires_in": int64(s.opts.TokenTTL / time.Second), "refresh_token": refresh,
	})
}

// TokensIssued returns how many tokens the simulator has minted.
func (s *Server) TokensIssued() int64 { return s.minted.Load() }

// ExpireTokens makes every token minted so far invalid, as if they had
// expired: the next call with one is answered 401.
func (s *Server) ExpireTokens() {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	clear(s.tokens)
}

// auth answers 401 to a request without a valid bearer token.
func (s *Server) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok {
			s.tokMu.Lock()
			exp, found := s.tokens[tok]
			s.tokMu.Unlock()
			ok = found && s.now().Before(exp)
		}
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"name": "Unauthorized", "message": "Unauthenticated."})
			return
		}
		h(w, r)
	})
}
