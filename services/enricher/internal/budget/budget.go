// Package budget paces CTR calls against the organisation's hourly quota,
// shared by every enricher replica through a JetStream KV entry.
//
// CTR allows an organisation 8,000 requests per rolling hour, shared by
// every API client of the organisation, and Cisco asks integrations to
// throttle themselves rather than only react to 429 (ctr.md, corrections
// 2). The budget is a token bucket whose state (tokens left, when they
// were counted, and a hold after a 429) lives in one KV entry updated by
// compare-and-set, so that every replica draws from the same bucket and a
// restart starts from where the bucket was. Its capacity C and refill rate
// r are chosen so that C + r·Window ≤ Max − 1: no window of that length,
// however placed, holds more than Max − 1 grants, one kept as a margin for
// requests that travel at different speeds.
//
// It paces enrich calls (the org's quota is counted per API call; whether
// a call costs one request or one per module is undocumented, ctr.md
// §4.7); token requests, one per process every nine minutes or so, are
// not paced.
package budget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Budget is a request budget shared through a KV entry. It is safe for
// concurrent use, and any number of Budgets on the same key share it.
type Budget struct {
	kv     jetstream.KeyValue
	key    string
	cap    float64
	rate   float64 // tokens per second
	window time.Duration
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
}

// Config configures a [Budget].
type Config struct {
	// KV is the bucket the state lives in; Key its entry (one per CTR
	// organisation and host).
	KV  jetstream.KeyValue
	Key string
	// Max is the most requests allowed in any Window.
	Max int
	// Window is the rolling window, an hour in production.
	Window time.Duration
	// Now and Sleep are the clock, for tests; the real one when nil.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// state is the KV entry.
type state struct {
	Tokens float64 `json:"tokens"`
	// At is when Tokens was counted (unix nanoseconds).
	At int64 `json:"at"`
	// HoldUntil (unix nanoseconds) holds every grant after a 429.
	HoldUntil int64 `json:"hold_until,omitempty"`
}

// New returns the budget of c. Max must be at least 2.
func New(c Config) (*Budget, error) {
	if c.Max < 2 || c.Window <= 0 || c.KV == nil || c.Key == "" {
		return nil, fmt.Errorf("ctr budget: want a bucket, a key, at least 2 requests and a positive window (got %d per %s)", c.Max, c.Window)
	}
	usable := float64(c.Max - 1)
	capacity := math.Max(1, math.Floor(usable/10))
	b := &Budget{kv: c.KV, key: c.Key, cap: capacity, rate: (usable - capacity) / c.Window.Seconds(),
		window: c.Window, now: c.Now, sleep: c.Sleep}
	if b.now == nil {
		b.now = time.Now
	}
	if b.sleep == nil {
		b.sleep = sleepCtx
	}
	return b, nil
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

// maxWait bounds one sleep, so that a hold shortened or a bucket reset by
// an operator is seen within it.
const maxWait = 30 * time.Second

// Wait takes one request from the budget, waiting until one is free (or
// a hold has passed). It returns ctx's error if ctx ends first, and an
// error if the bucket cannot be read or written.
func (b *Budget) Wait(ctx context.Context) error {
	for {
		wait, err := b.take(ctx)
		if err != nil {
			return err
		}
		if wait == 0 {
			return nil
		}
		if err := b.sleep(ctx, min(wait, maxWait)); err != nil {
			return err
		}
	}
}

// take takes a token if one is free, else says how long to wait.
func (b *Budget) take(ctx context.Context) (time.Duration, error) {
	for {
		st, rev, err := b.load(ctx)
		if err != nil {
			return 0, err
		}
		now := b.now()
		if hold := time.Unix(0, st.HoldUntil).Sub(now); hold > 0 {
			return hold, nil
		}
		st = b.refill(st, now)
		if st.Tokens < 1 {
			return time.Duration((1 - st.Tokens) / b.rate * float64(time.Second)), nil
		}
		st.Tokens--
		ok, err := b.store(ctx, st, rev)
		if err != nil {
			return 0, err
		}
		if ok {
			return 0, nil
		}
		// Another replica took one meanwhile: read again.
	}
}

// Hold stops every grant, of every replica, for d from now (a 429's
// Retry-After); a longer hold already in place stays.
func (b *Budget) Hold(ctx context.Context, d time.Duration) error {
	for {
		st, rev, err := b.load(ctx)
		if err != nil {
			return err
		}
		until := b.now().Add(d).UnixNano()
		if st.HoldUntil >= until {
			return nil
		}
		st.HoldUntil = until
		ok, err := b.store(ctx, st, rev)
		if err != nil || ok {
			return err
		}
	}
}

// HeldFor returns how long grants are held from now; zero when they are
// not.
func (b *Budget) HeldFor(ctx context.Context) (time.Duration, error) {
	st, _, err := b.load(ctx)
	if err != nil {
		return 0, err
	}
	return max(0, time.Unix(0, st.HoldUntil).Sub(b.now())), nil
}

func (b *Budget) refill(st state, now time.Time) state {
	elapsed := time.Duration(now.UnixNano() - st.At).Seconds()
	if elapsed > 0 {
		st.Tokens = math.Min(b.cap, st.Tokens+elapsed*b.rate)
		st.At = now.UnixNano()
	}
	return st
}

// load reads the state and its revision; a missing entry is a full
// bucket at revision 0.
func (b *Budget) load(ctx context.Context) (state, uint64, error) {
	e, err := b.kv.Get(ctx, b.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return state{Tokens: b.cap, At: b.now().UnixNano()}, 0, nil
	}
	if err != nil {
		return state{}, 0, fmt.Errorf("read ctr budget %s: %w", b.key, err)
	}
	var st state
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		// A corrupt entry is replaced by a full bucket: the quota is the
		// org's, and erring on the side of asking is what CTR's 429 is for.
		return state{Tokens: b.cap, At: b.now().UnixNano()}, e.Revision(), nil
	}
	return st, e.Revision(), nil
}

// store writes st if the entry is still at rev; false when another writer
// came first.
func (b *Budget) store(ctx context.Context, st state, rev uint64) (bool, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return false, fmt.Errorf("encode ctr budget: %w", err)
	}
	if rev == 0 {
		_, err = b.kv.Create(ctx, b.key, data)
	} else {
		_, err = b.kv.Update(ctx, b.key, data, rev)
	}
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists), errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
		return false, nil
	default:
		return false, fmt.Errorf("write ctr budget %s: %w", b.key, err)
	}
}
