package httpx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// TokenMargin is how long before its expiry a cached token is replaced
// (see [ExpireEarly]).
const TokenMargin = 60 * time.Second

// RefusalHold is how long a [TokenCache] remembers a refused token
// request, so that a wrong password does not send one token request per
// call.
const RefusalHold = 30 * time.Second

// ExpireEarly shortens a token's lifetime ttl so that it is replaced
// before the server expires it: by TokenMargin, or by half when ttl is not
// more than twice the margin.
func ExpireEarly(ttl time.Duration) time.Duration {
	if ttl > 2*TokenMargin {
		return ttl - TokenMargin
	}
	return ttl / 2
}

// TokenCacheConfig says how a [TokenCache] gets its tokens.
type TokenCacheConfig struct {
	// Op names the client in errors, e.g. "ctr: wait for token: …".
	Op string
	// Mint requests a new token and says until when it may be used. Its
	// context is not cancelled with the caller's: other callers may wait
	// for the same request, so Mint must be bounded by its own timeout.
	Mint func(ctx context.Context) (token string, expires time.Time, err error)
	// Refused is the error (as [errors.Is] matches it) Mint returns when the
	// server refused the credentials; such an answer is returned for
	// RefusalHold without asking again.
	Refused error
	// Now returns the current time.
	Now func() time.Time
}

// TokenCache holds an API client's bearer token: it mints one when there
// is none, when it expires and when a call was refused with it, and lets
// concurrent callers share one token request. It is safe for concurrent
// use.
type TokenCache struct {
	cfg TokenCacheConfig

	mu        sync.Mutex
	token     string
	expires   time.Time
	inflight  *tokenFlight
	refusal   error
	refusedAt time.Time
}

// tokenFlight is one token request that concurrent callers wait for.
type tokenFlight struct {
	done  chan struct{}
	token string
	err   error
}

// NewTokenCache returns an empty cache: the first [TokenCache.Token] mints.
func NewTokenCache(cfg TokenCacheConfig) *TokenCache {
	return &TokenCache{cfg: cfg}
}

// Token returns a valid token. stale, when not empty, is a token an API
// call was just refused with (401): a different cached token is returned
// as is (another caller already replaced it), else a new one is minted. A
// refused token request is returned again for RefusalHold. A caller whose
// ctx ends stops waiting; the token request goes on for the others.
func (c *TokenCache) Token(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	now := c.cfg.Now()
	if c.token != "" && c.token != stale && now.Before(c.expires) {
		t := c.token
		c.mu.Unlock()
		return t, nil
	}
	if c.refusal != nil && now.Sub(c.refusedAt) < RefusalHold {
		err := c.refusal
		c.mu.Unlock()
		return "", err
	}
	f := c.inflight
	if f == nil {
		f = &tokenFlight{done: make(chan struct{})}
		c.inflight = f
		go c.mint(context.WithoutCancel(ctx), f)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("%s: wait for token: %w", c.cfg.Op, ctx.Err())
	}
}

// mint requests a token for f and caches it.
func (c *TokenCache) mint(ctx context.Context, f *tokenFlight) {
	tok, expires, err := c.cfg.Mint(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight = nil
	f.token, f.err = tok, err
	switch {
	case err == nil:
		c.token, c.expires, c.refusal = tok, expires, nil
	case c.cfg.Refused != nil && errors.Is(err, c.cfg.Refused):
		c.token, c.refusal, c.refusedAt = "", err, c.cfg.Now()
	}
	close(f.done)
}

// Authorized runs call with a token from tc and, when unauthorized says
// its answer refused the token, once more with a new one.
func Authorized[A any](ctx context.Context, tc *TokenCache, call func(tok string) (A, error), unauthorized func(A) bool) (A, error) {
	var zero A
	tok, err := tc.Token(ctx, "")
	if err != nil {
		return zero, err
	}
	a, err := call(tok)
	if err != nil || !unauthorized(a) {
		return a, err
	}
	if tok, err = tc.Token(ctx, tok); err != nil {
		return zero, err
	}
	return call(tok)
}
