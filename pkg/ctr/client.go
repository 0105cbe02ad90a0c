package ctr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// Paths of the IROH routes the client calls.
const (
	pathToken      = "/iroh/oauth2/token"
	pathObserve    = "/iroh/iroh-enrich/observe/observables"
	pathDeliberate = "/iroh/iroh-enrich/deliberate/observables"
)

// maxBody bounds how much of an answer is read. Observe answers grow with
// modules × observables × documents (relay modules send up to 100
// judgements and 100 sightings per observable).
const maxBody = 256 << 20

// Smaller bounds, per call: a token answer is a few hundred bytes, an
// error answer is read up to 4 MiB (a schema-validation 400 can name a
// field of every observable), and an enrich answer is sized to
// the observables asked (perObservable each, at least minEnrichBody).
const (
	maxTokenBody  = 64 << 10
	maxErrorBody  = 4 << 20
	perObservable = 4 << 20
	minEnrichBody = 16 << 20
)

// enrichLimit is the most bytes read of the answer for n observables.
func enrichLimit(n int) int64 {
	return min(maxBody, max(minEnrichBody, int64(n)*perObservable))
}

// Client calls the CTR (IROH) enrich API of one region with one API
// client. It is safe for concurrent use.
type Client struct {
	scope      string
	retryAfter time.Duration
	pace       func(context.Context) error
	base       string
	id         string
	password   string
	batchSize  int
	hc         *http.Client
	now        func() time.Time
	tokens     *httpx.TokenCache
	// scrub replaces the credentials (and the process's other secrets,
	// Config.Scrub) in server-supplied text.
	scrub *httpx.Scrubber
}

// New returns a client for cfg, after validating it. No request is made
// until the first call: the token is minted then.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configure ctr client: %w", err)
	}
	cfg.setDefaults()
	base, err := cfg.baseURL()
	if err != nil {
		return nil, fmt.Errorf("configure ctr client: %w", err)
	}
	hc, err := httpx.NewClient(httpx.TLSConfig{Insecure: cfg.Insecure, CAFile: cfg.CAFile}, cfg.Timeout, cfg.WrapTransport)
	if err != nil {
		return nil, fmt.Errorf("configure ctr client: %w", err)
	}
	c := &Client{
		scope:      cfg.Scope(),
		retryAfter: cfg.RetryAfterDefault,
		pace:       cfg.Pace,
		base:       base,
		id:         cfg.ClientID,
		password:   cfg.ClientPassword.Reveal(),
		batchSize:  cfg.BatchSize,
		hc:         hc,
		now:        time.Now,
		scrub:      cfg.Scrub.Join(httpx.NewScrubber(cfg.ClientPassword.Reveal()).WithBasic(cfg.ClientID, cfg.ClientPassword.Reveal())),
	}
	c.tokens = httpx.NewTokenCache(httpx.TokenCacheConfig{
		Op:      "ctr",
		Mint:    c.mint,
		Refused: ErrCredentials,
		Now:     func() time.Time { return c.now() },
	})
	return c, nil
}

// BatchSize returns the most observables sent in one call.
func (c *Client) BatchSize() int { return c.batchSize }

// Scope names what answers this client's calls: the host and the API
// client id ([Config.Scope]).
func (c *Client) Scope() string { return c.scope }

// Observe asks every enabled module of the org for full context (verdicts,
// judgements, sightings, …) on obs, via POST
// /iroh/iroh-enrich/observe/observables. See [Client.Deliberate] for the
// rules both share.
func (c *Client) Observe(ctx context.Context, obs []Observable) (*Response, error) {
	return c.enrich(ctx, "ctr: observe observables", pathObserve, obs)
}

// ObserveModules is [Client.Observe] restricted to the module instances
// mids (the mids query parameter): to ask again only the modules that
// failed inside an answer. No mids means every module.
func (c *Client) ObserveModules(ctx context.Context, obs []Observable, mids []string) (*Response, error) {
	path := pathObserve
	if len(mids) > 0 {
		path += "?" + url.Values{"mids": mids}.Encode()
	}
	return c.enrich(ctx, "ctr: observe observables", path, obs)
}

// Deliberate asks for verdicts only, via POST
// /iroh/iroh-enrich/deliberate/observables: faster, but its results carry
// only CTR Module and Disposition.
//
// Both send obs in one call, as given but for the values of
// case-insensitive types, sent lower-cased; they skip observables of a
// type CTR does not know or with an empty value (listed in
// Response.Skipped), refuse more than BatchSize observables (the caller
// chunks) and split a call refused with 413 in half. On a 401 the token is
// minted again once and the call retried once. Errors: 429 is an
// [*httpx.StatusError] with Retry from Retry-After (whole seconds, "3172s"
// or an HTTP date; RetryAfterDefault when missing or unreadable); 5xx and
// transport failures are transient; 400, 403 and a 413 of one observable
// are permanent [*Error] values (ErrBadRequest, ErrMissingScope,
// ErrTooLarge); an undecodable answer is an [*httpx.DecodeError]. See
// [Fatal] for the errors no other observable would escape.
func (c *Client) Deliberate(ctx context.Context, obs []Observable) (*Response, error) {
	return c.enrich(ctx, "ctr: deliberate observables", pathDeliberate, obs)
}

func (c *Client) enrich(ctx context.Context, op, path string, obs []Observable) (*Response, error) {
	out := &Response{Observables: obs}
	send := make([]Observable, 0, len(obs))
	for _, o := range obs {
		k := keyOf(o)
		if !ValidType(k.typ) || k.value == "" {
			out.Skipped = append(out.Skipped, o)
			continue
		}
		send = append(send, Observable{Type: k.typ, Value: k.value})
	}
	if len(send) > c.batchSize {
		return nil, fmt.Errorf("%s: %d observables in one call, at most %d: %w", op, len(send), c.batchSize, ErrBatchTooLong)
	}
	if len(send) == 0 {
		return out, nil
	}
	if err := c.post(ctx, op, path, send, out); err != nil {
		return nil, err
	}
	return out, nil
}

// post sends one chunk and merges its answer into out, halving the chunk
// on 413.
func (c *Client) post(ctx context.Context, op, path string, chunk []Observable, out *Response) error {
	body, err := json.Marshal(chunk)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", op, err)
	}
	a, err := c.authorized(ctx, op, path, body, enrichLimit(len(chunk)))
	if err != nil {
		return err
	}
	if a.status == http.StatusRequestEntityTooLarge && len(chunk) > 1 {
		half := len(chunk) / 2
		if err := c.post(ctx, op, path, chunk[:half], out); err != nil {
			return err
		}
		return c.post(ctx, op, path, chunk[half:], out)
	}
	if a.status != http.StatusOK {
		return c.apiError(op, a, false)
	}
	r, err := DecodeResponse(a.body)
	if err != nil {
		return &httpx.DecodeError{Op: op, Err: err}
	}
	out.Modules = append(out.Modules, r.Modules...)
	out.Errors = append(out.Errors, r.Errors...)
	return nil
}

// answer is an HTTP answer read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// authorized POSTs body with a bearer token, minting the token again and
// retrying once on a 401.
func (c *Client) authorized(ctx context.Context, op, path string, body []byte, limit int64) (answer, error) {
	return httpx.Authorized(ctx, c.tokens,
		func(tok string) (answer, error) { return c.do(ctx, op, path, tok, body, limit) },
		func(a answer) bool { return a.status == http.StatusUnauthorized })
}

func (c *Client) do(ctx context.Context, op, path, tok string, body []byte, limit int64) (answer, error) {
	if c.pace != nil {
		if err := c.pace(ctx); err != nil {
			return answer{}, fmt.Errorf("%s: wait for the request budget: %w", op, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return answer{}, fmt.Errorf("%s: build request: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return c.read(op, req, limit)
}

// read does req and reads its answer: a 2xx one up to limit bytes (more is
// a decode error), any other up to maxErrorBody (the rest is not read).
// Every answer has the secrets scrubbed out: module error texts inside a
// 200 are server-supplied too.
func (c *Client) read(op string, req *http.Request, limit int64) (answer, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, &httpx.TransportError{Op: op, Err: c.scrub.Error(err)}
	}
	defer func() { _ = resp.Body.Close() }()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if !ok {
		limit = min(limit, maxErrorBody)
	}
	var buf bytes.Buffer
	if cl := resp.ContentLength; cl > 0 && cl <= limit {
		buf.Grow(int(cl)) // no doubling of a large answer
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return answer{}, &httpx.TransportError{Op: op, Err: c.scrub.Error(fmt.Errorf("read response: %w", err))}
	}
	b := buf.Bytes()
	switch {
	case n <= limit:
	case ok:
		return answer{}, &httpx.DecodeError{Op: op, Err: fmt.Errorf("answer larger than %d bytes", limit)}
	default:
		b = b[:limit]
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: c.scrub.Bytes(b)}, nil
}

// mint requests a token for c.tokens; it is replaced a margin before CTR
// expires it.
func (c *Client) mint(ctx context.Context) (string, time.Time, error) {
	tok, ttl, err := c.requestToken(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, c.now().Add(httpx.ExpireEarly(ttl)), nil
}

// tokenAnswer is the OAuth2 token answer.
type tokenAnswer struct {
	AccessToken string  `json:"access_token"`
	TokenType   string  `json:"token_type"`
	ExpiresIn   lnumber `json:"expires_in"`
}

// requestToken runs the client-credentials grant: Basic auth and a form
// body (contract §2).
func (c *Client) requestToken(ctx context.Context) (string, time.Duration, error) {
	const op = "ctr: mint token"
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+pathToken, strings.NewReader(form))
	if err != nil {
		return "", 0, fmt.Errorf("%s: build request: %w", op, err)
	}
	req.SetBasicAuth(c.id, c.password)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	a, err := c.read(op, req, maxTokenBody)
	if err != nil {
		return "", 0, err
	}
	if a.status != http.StatusOK {
		return "", 0, c.apiError(op, a, true)
	}
	var ta tokenAnswer
	if err := json.Unmarshal(a.body, &ta); err != nil {
		return "", 0, &httpx.DecodeError{Op: op, Err: err}
	}
	if ta.AccessToken == "" {
		return "", 0, &httpx.DecodeError{Op: op, Err: errors.New("answer has no access_token")}
	}
	ttl := time.Duration(float64(ta.ExpiresIn) * float64(time.Second))
	if ttl <= 0 {
		ttl = 600 * time.Second
	}
	return ta.AccessToken, ttl, nil
}

// errorBody holds the fields of IROH's error answers: NormalizedError
// (error, error_description, trace_id), the missing_scope 403 and the
// schema-validation 400 ({"errors": …} or {"<field>": "<problem>"}).
type errorBody struct {
	Error         lstring         `json:"error"`
	Description   lstring         `json:"error_description"`
	TraceID       lstring         `json:"trace_id"`
	MissingScopes lslice[lstring] `json:"missing-scopes"`
}

// apiError turns a failed answer into an error. Only CTR's own error
// fields reach the message, never the raw body or the request.
func (c *Client) apiError(op string, a answer, tokenCall bool) error {
	se := &httpx.StatusError{Op: op, StatusCode: a.status}
	if a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable {
		se.Retry = parseRetryAfter(a.header.Get("Retry-After"), c.now())
		if se.Retry <= 0 && a.status == http.StatusTooManyRequests {
			// Missing or unreadable: the window is a rolling hour, so a
			// second's backoff would only spend the org's quota.
			se.Retry = c.retryAfter
		}
	}
	var eb errorBody
	isJSON := isObject(a.body) && json.Unmarshal(a.body, &eb) == nil
	switch {
	case isJSON && eb.Error != "":
		se.Detail = clip(string(eb.Error))
		if eb.Description != "" {
			se.Detail += ": " + clip(string(eb.Description))
		}
		if eb.TraceID != "" {
			se.Detail += " (trace_id " + clip(string(eb.TraceID)) + ")"
		}
	case isJSON && a.status == http.StatusBadRequest:
		se.Detail = "schema validation: " + clip(validationSummary(a.body))
	case len(bytes.TrimSpace(a.body)) == 0:
		se.Detail = "empty body"
	case !isJSON:
		se.Detail = "non-JSON body"
	}
	se.Detail = c.scrub.String(se.Detail) // decoded escapes may spell a secret
	var kind error
	switch {
	case tokenCall && a.status >= 400 && a.status < 500 && a.status != http.StatusTooManyRequests:
		kind = ErrCredentials
	case a.status == http.StatusUnauthorized:
		kind = ErrUnauthorized
	case a.status == http.StatusForbidden:
		kind = ErrMissingScope
	case a.status == http.StatusBadRequest:
		kind = ErrBadRequest
	case a.status == http.StatusRequestEntityTooLarge:
		kind = ErrTooLarge
	default:
		return se
	}
	e := &Error{Kind: kind, Status: se}
	for _, s := range eb.MissingScopes {
		if s != "" {
			e.MissingScopes = append(e.MissingScopes, c.scrub.String(string(s)))
		}
	}
	if len(e.MissingScopes) > 0 {
		se.Detail += " (missing scopes: " + strings.Join(e.MissingScopes, ", ") + ")"
	}
	return e
}

// validationSummary names the keys of a schema-validation body, e.g.
// "errors: 3.type" or "content", without the values (which may quote the
// observables sent).
func validationSummary(body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return "unreadable"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		var inner map[string]json.RawMessage
		if json.Unmarshal(m[k], &inner) != nil || len(inner) == 0 {
			parts = append(parts, k)
			continue
		}
		for _, ik := range sortedKeys(inner) {
			var deeper map[string]json.RawMessage
			if json.Unmarshal(inner[ik], &deeper) != nil || len(deeper) == 0 {
				parts = append(parts, k+"."+ik)
				continue
			}
			for _, dk := range sortedKeys(deeper) {
				parts = append(parts, k+"."+ik+"."+dk)
			}
		}
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func clip(s string) string {
	const n = 200
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// parseRetryAfter reads Retry-After as httpx does (seconds or an HTTP
// date), and also the "3172s" form one summary of CTR reports (ctr.md,
// corrections 2).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if n, ok := strings.CutSuffix(v, "s"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		v = n
	}
	return httpx.ParseRetryAfter(v, now)
}
