package httpx_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/httpx"
)

var errRefused = errors.New("refused")

// tokens returns a cache whose tokens are "t1", "t2", … valid for life on
// the clock *now, and the count of mints.
func tokens(now *time.Time, life time.Duration, fail *error) (*httpx.TokenCache, *atomic.Int32) {
	var n atomic.Int32
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return *now }
	tc := httpx.NewTokenCache(httpx.TokenCacheConfig{
		Op: "test",
		Mint: func(context.Context) (string, time.Time, error) {
			i := n.Add(1)
			time.Sleep(10 * time.Millisecond) // The subject: a slow mint, so that callers pile up on it.
			if *fail != nil {
				return "", time.Time{}, *fail
			}
			return "t" + strconv.Itoa(int(i)), clock().Add(httpx.ExpireEarly(life)), nil
		},
		Refused: errRefused,
		Now:     clock,
	})
	return tc, &n
}

func TestTokenCache(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	var fail error
	tc, mints := tokens(&now, 10*time.Minute, &fail)
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tok, err := tc.Token(ctx, ""); err != nil || tok != "t1" {
				t.Errorf("Token = %q, %v; want t1", tok, err)
			}
		}()
	}
	wg.Wait()
	if n := mints.Load(); n != 1 {
		t.Fatalf("%d mints for 20 concurrent callers, want 1", n)
	}
	// A stale token is replaced once; a caller still holding the older one
	// gets the new one without another mint.
	if tok, _ := tc.Token(ctx, "t1"); tok != "t2" {
		t.Errorf("after t1 refused: %q, want t2", tok)
	}
	if tok, _ := tc.Token(ctx, "t1"); tok != "t2" || mints.Load() != 2 {
		t.Errorf("second caller with stale t1: %q after %d mints, want t2 after 2", tok, mints.Load())
	}
	// 10 min expires_in: replaced after 9 min.
	now = now.Add(9*time.Minute - time.Second)
	if tok, _ := tc.Token(ctx, ""); tok != "t2" {
		t.Errorf("before the margin: %q, want t2", tok)
	}
	now = now.Add(time.Second)
	if tok, _ := tc.Token(ctx, ""); tok != "t3" {
		t.Errorf("at the margin: %q, want t3", tok)
	}
	// A refusal is held for RefusalHold, and forgets the refused token.
	fail = errRefused
	if _, err := tc.Token(ctx, "t3"); !errors.Is(err, errRefused) {
		t.Fatalf("refused mint: %v", err)
	}
	if _, err := tc.Token(ctx, ""); !errors.Is(err, errRefused) || mints.Load() != 4 {
		t.Errorf("within the hold: %v after %d mints, want the refusal after 4", err, mints.Load())
	}
	fail = nil
	now = now.Add(httpx.RefusalHold)
	if tok, err := tc.Token(ctx, ""); tok != "t5" || err != nil {
		t.Errorf("after the hold: %q, %v; want t5", tok, err)
	}
}

func TestTokenCacheCallerLeaves(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	var fail error
	tc, _ := tokens(&now, time.Minute, &fail)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tc.Token(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v, want context.Canceled", err)
	}
	// The mint went on for the others; 1 min is used for 30 s.
	if tok, err := tc.Token(context.Background(), ""); tok != "t1" || err != nil {
		t.Errorf("next caller: %q, %v; want t1", tok, err)
	}
}

func TestExpireEarly(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want time.Duration }{
		{10 * time.Minute, 9 * time.Minute},
		{2 * time.Minute, time.Minute},
		{30 * time.Second, 15 * time.Second},
	} {
		if got := httpx.ExpireEarly(c.in); got != c.want {
			t.Errorf("ExpireEarly(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}
