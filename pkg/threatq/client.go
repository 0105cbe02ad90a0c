package threatq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// maxBody bounds how much of an answer is read: a page of 1000 indicators
// with their attributes and sources.
const maxBody = 256 << 20

// maxTokenBody bounds a token answer, a few hundred bytes in practice; an
// endless one stops there.
const maxTokenBody = 64 << 10

// maxErrorBody bounds how much of a non-2xx answer is read: only its
// error messages are used, but a 400 for a 500-item consume names the
// fields of every item, which bisection relies on.
const maxErrorBody = 4 << 20

// defaultTokenLife is how long a token is used when the answer gave no
// expires_in (contract §11); one with expires_in is replaced
// httpx.TokenMargin before it expires.
const defaultTokenLife = 25 * time.Minute

// Read retries: idempotent reads (GETs and queries) are retried this many
// times on a transient failure, after retryBase, doubled each time, or the
// server's Retry-After up to retryMax.
const (
	readRetries = 3
	retryBase   = 250 * time.Millisecond
	retryMax    = 30 * time.Second
)

// Client calls the ThreatQ REST API of one instance as one user or OAuth
// client. It is safe for concurrent use.
type Client struct {
	base     string
	cfg      Config
	hc       *http.Client
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	pageSize int
	tokens   *httpx.TokenCache
	// scrub replaces the credentials (and every secret of the process
	// the service passed in Config.Scrub) in server-supplied text.
	scrub *httpx.Scrubber

	refMu sync.Mutex
	refs  map[string]*refCache
}

// New returns a client for cfg, after validating it. No request is made
// until the first call: the token is minted then.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configure threatq client: %w", err)
	}
	cfg.setDefaults()
	hc, err := httpx.NewClient(cfg.TLS(), cfg.Timeout, cfg.WrapTransport)
	if err != nil {
		return nil, fmt.Errorf("configure threatq client: %w", err)
	}
	c := &Client{
		base:     cfg.URL,
		cfg:      cfg,
		hc:       hc,
		now:      time.Now,
		sleep:    sleepCtx,
		pageSize: cfg.PageSize,
		refs:     map[string]*refCache{},
		scrub: cfg.Scrub.Join(httpx.NewScrubber(cfg.Password.Reveal(), cfg.ClientSecret.Reveal()).
			WithBasic(cfg.ClientID.Reveal(), cfg.ClientSecret.Reveal())),
	}
	if cfg.Now != nil {
		c.now = cfg.Now
	}
	c.tokens = httpx.NewTokenCache(httpx.TokenCacheConfig{
		Op:      "threatq",
		Mint:    c.mint,
		Refused: ErrCredentials,
		Now:     func() time.Time { return c.now() },
	})
	return c, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PageSize returns the number of indicators asked per query page.
func (c *Client) PageSize() int { return c.pageSize }

// tokenResponse is the answer of POST /api/token.
type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

// mint requests a token with the configured grant for c.tokens.
func (c *Client) mint(ctx context.Context) (string, time.Time, error) {
	const op = "threatq: request token"
	var body []byte
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/token", nil)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%s: build request: %w", op, err)
	}
	if c.cfg.PasswordGrant() {
		body, err = json.Marshal(map[string]string{
			"grant_type": "password",
			"email":      c.cfg.Email,
			"password":   c.cfg.Password.Reveal(),
			"client_id":  c.cfg.ClientID.Reveal(),
		})
		if err != nil {
			return "", time.Time{}, fmt.Errorf("%s: encode request: %w", op, err)
		}
		req.Header.Set("Content-Type", "application/json")
	} else {
		body = []byte(url.Values{"grant_type": {"client_credentials"}}.Encode())
		req.SetBasicAuth(c.cfg.ClientID.Reveal(), c.cfg.ClientSecret.Reveal())
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Accept", "application/json")
	start := c.now()
	a, err := c.send(op, req, maxTokenBody)
	if err != nil {
		return "", time.Time{}, err
	}
	switch {
	case a.status >= 300 && a.status < 400:
		// Never follow: a redirect of a token request sends credentials
		// elsewhere. Location is not shown.
		return "", time.Time{}, permanent(ErrCredentials, &httpx.StatusError{Op: op, StatusCode: a.status, Detail: "redirect refused"})
	case a.status == http.StatusBadRequest, a.status == http.StatusUnauthorized, a.status == http.StatusForbidden:
		_, detail := c.parseErrors(a.body)
		return "", time.Time{}, permanent(ErrCredentials, &httpx.StatusError{Op: op, StatusCode: a.status, Detail: detail})
	case a.status < 200 || a.status >= 300:
		return "", time.Time{}, c.statusError(op, a)
	}
	var tr tokenResponse
	if err := json.Unmarshal(a.body, &tr); err != nil {
		return "", time.Time{}, &httpx.DecodeError{Op: op, Err: errors.New("token answer is not a JSON object")}
	}
	if tr.AccessToken == "" {
		return "", time.Time{}, &httpx.DecodeError{Op: op, Err: errors.New("token answer has no access_token")}
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return "", time.Time{}, &httpx.DecodeError{Op: op, Err: fmt.Errorf("token type %q is not Bearer", c.scrub.String(sanitize(tr.TokenType)))}
	}
	life := defaultTokenLife
	if secs, ok := expiresIn(tr.ExpiresIn); ok {
		life = httpx.ExpireEarly(time.Duration(secs) * time.Second)
	}
	return tr.AccessToken, start.Add(life), nil
}

// expiresIn reads expires_in as a number or a numeric string.
func expiresIn(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 1e9 {
		return 0, false
	}
	return int64(f), true
}

// answer is an HTTP answer read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// request describes one API call.
type request struct {
	op     string
	method string
	path   string
	query  url.Values
	body   []byte // JSON, or nil
	// idempotent calls are retried on transient failures.
	idempotent bool
}

// call makes r with a bearer token, re-authenticating and retrying once on
// a 401, and retrying idempotent calls on transient failures. It returns
// the answer of any status; see [Client.check].
func (c *Client) call(ctx context.Context, r request) (answer, error) {
	for attempt := 0; ; attempt++ {
		a, err := c.authorized(ctx, r)
		var transient error
		switch {
		case err != nil:
			if !httpx.IsTransient(err) {
				return answer{}, err
			}
			transient = err
		case transientStatus(a.status):
			transient = c.statusError(r.op, a)
		default:
			return a, nil
		}
		if !r.idempotent || attempt >= readRetries {
			if err != nil {
				return answer{}, err
			}
			return a, nil // check turns the status into its error.
		}
		wait := retryBase << attempt
		if ra := httpx.RetryAfterOf(transient); ra > 0 {
			wait = min(ra, retryMax)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return answer{}, fmt.Errorf("%w (retry abandoned: %w)", transient, err)
		}
	}
}

// transientStatus reports whether a status says the same call may succeed
// later.
func transientStatus(code int) bool {
	return (&httpx.StatusError{StatusCode: code}).Transient()
}

// authorized makes r with a bearer token, minting a new token and retrying
// once on a 401.
func (c *Client) authorized(ctx context.Context, r request) (answer, error) {
	return httpx.Authorized(ctx, c.tokens,
		func(tok string) (answer, error) { return c.do(ctx, r, tok) },
		func(a answer) bool { return a.status == http.StatusUnauthorized })
}

func (c *Client) do(ctx context.Context, r request, tok string) (answer, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return answer{}, fmt.Errorf("%s: build request: %w", r.op, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(r.op, req, maxBody)
}

// send does req and reads the answer: a 2xx one in full up to limit
// bytes, any other up to maxErrorBody (the rest is not read), with the
// secrets scrubbed out of it.
func (c *Client) send(op string, req *http.Request, limit int64) (answer, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return answer{}, fmt.Errorf("%s: %w", op, ctxErr)
		}
		return answer{}, &httpx.TransportError{Op: op, Err: c.scrub.Error(stripURL(err))}
	}
	defer func() { _ = resp.Body.Close() }()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if !ok {
		limit = min(limit, maxErrorBody)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return answer{}, &httpx.TransportError{Op: op, Err: c.scrub.Error(fmt.Errorf("read answer: %w", stripURL(err)))}
	}
	switch {
	case int64(len(body)) <= limit:
	case ok:
		return answer{}, &httpx.DecodeError{Op: op, Err: fmt.Errorf("answer larger than %d bytes", limit)}
	default:
		body = body[:limit] // the error messages come first
	}
	if !ok {
		body = c.scrub.Bytes(body)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// parseErrors is [parseErrors] of a body, with the secrets scrubbed out of
// what it returns (a body is scrubbed as read; a secret JSON-escaped in an
// unusual way is only visible once decoded).
func (c *Client) parseErrors(body []byte) (map[string][]string, string) {
	fields, detail := parseErrors(c.scrub.Bytes(body))
	for k, msgs := range fields {
		for i, m := range msgs {
			msgs[i] = c.scrub.String(m)
		}
		if sk := c.scrub.String(k); sk != k {
			delete(fields, k)
			fields[sk] = append(fields[sk], msgs...)
		}
	}
	return fields, c.scrub.String(detail)
}

// stripURL drops the URL from a *url.Error: it is the configured base plus
// a path, and the operation already says which call failed.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// statusError turns a non-2xx answer into an error: a [*ValidationError]
// for a 400 or 422 naming fields, else an [*httpx.StatusError] whose Detail
// holds the API's error messages (never the raw body).
func (c *Client) statusError(op string, a answer) error {
	fields, detail := c.parseErrors(a.body)
	se := &httpx.StatusError{Op: op, StatusCode: a.status, Detail: detail}
	if a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable {
		se.Retry = httpx.ParseRetryAfter(a.header.Get("Retry-After"), c.now())
	}
	if (a.status == http.StatusBadRequest || a.status == http.StatusUnprocessableEntity) && len(fields) > 0 {
		return &ValidationError{Op: op, Fields: fields, Status: se}
	}
	return se
}

// check returns the error of an answer: a non-2xx status, or a 2xx body
// with a top-level "errors" key.
func (c *Client) check(op string, a answer) error {
	if a.status < 200 || a.status >= 300 {
		return c.statusError(op, a)
	}
	if bytes.Contains(a.body, []byte(`"errors"`)) && hasErrorsKey(a.body) {
		fields, detail := c.parseErrors(a.body)
		return &ValidationError{Op: op, Fields: fields, Status: &httpx.StatusError{Op: op, StatusCode: a.status, Detail: detail}}
	}
	return nil
}

// json makes r and decodes a 2xx answer into out (when not nil).
func (c *Client) json(ctx context.Context, r request, out any) error {
	a, err := c.call(ctx, r)
	if err != nil {
		return err
	}
	if err := c.check(r.op, a); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(a.body, out); err != nil {
		return &httpx.DecodeError{Op: r.op, Err: err}
	}
	return nil
}

// encode marshals a request body.
func encode(op string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", op, err)
	}
	return b, nil
}
