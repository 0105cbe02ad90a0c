package ctr_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/testkit"
)

// TestRetryAfterForms: the org limit's 429 holds for Retry-After in whole
// seconds or in the "3172s" form, and for RetryAfterDefault when the
// header is missing, never for a second's backoff.
func TestRetryAfterForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		style ctrsim.RetryAfterStyle
		want  time.Duration
	}{
		{ctrsim.RetryAfterSeconds, 3600 * time.Second},
		{ctrsim.RetryAfterSuffixed, 3600 * time.Second},
		{ctrsim.RetryAfterMissing, 7 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(string(tt.style), func(t *testing.T) {
			t.Parallel()
			clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			s := ctrsim.New(ctrsim.Options{Now: clk.Now, RateLimit: 1, RateWindow: time.Hour, RetryAfter: tt.style})
			srv := httptest.NewServer(s.Handler())
			t.Cleanup(srv.Close)
			c, err := ctr.New(ctr.Config{ClientID: ctrsim.DefaultClientID, ClientPassword: ctrsim.DefaultClientPassword,
				BaseURL: srv.URL, RetryAfterDefault: 7 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			obs := []ctr.Observable{{Type: "ip", Value: "192.0.2.1"}}
			if _, err := c.Observe(context.Background(), obs); err != nil {
				t.Fatal(err)
			}
			_, err = c.Observe(context.Background(), obs)
			if got := httpx.RetryAfterOf(err); got != tt.want || !httpx.IsTransient(err) || ctr.Fatal(err) {
				t.Errorf("429: retry after %v (transient %v), want %v: %v", got, httpx.IsTransient(err), tt.want, err)
			}
		})
	}
}

// TestFatalRefusals: a missing scope and a revoked client are Fatal,
// name what to fix, and cost one call (plus one token request) each.
func TestFatalRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		refusal  ctrsim.Refusal
		sentinel error
		text     string
	}{
		{ctrsim.RefuseMissingScope, ctr.ErrMissingScope, "enrich:read"},
		{ctrsim.RefuseRevoked, ctr.ErrCredentials, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(string(tt.refusal), func(t *testing.T) {
			t.Parallel()
			s := ctrsim.New(ctrsim.Options{})
			s.SetRefusal(tt.refusal)
			srv := httptest.NewServer(s.Handler())
			t.Cleanup(srv.Close)
			var paced atomic.Int64
			c, err := ctr.New(ctr.Config{ClientID: ctrsim.DefaultClientID, ClientPassword: ctrsim.DefaultClientPassword,
				BaseURL: srv.URL, Pace: func(context.Context) error { paced.Add(1); return nil }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Observe(context.Background(), []ctr.Observable{{Type: "ip", Value: "192.0.2.1"}})
			if !ctr.Fatal(err) || !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %v, want Fatal, %v, naming %q", err, tt.sentinel, tt.text)
			}
			if calls := s.Stats.Count(ctrsim.RouteObserve) + s.Stats.Count(ctrsim.RouteToken); calls > 2 {
				t.Errorf("%d calls for one refusal", calls)
			}
			if tt.refusal == ctrsim.RefuseMissingScope && paced.Load() != 1 {
				t.Errorf("Pace called %d times for one enrich call", paced.Load())
			}
		})
	}
	if ctr.Fatal(errors.New("other")) || ctr.Fatal(nil) {
		t.Error("Fatal of an unrelated error")
	}
}

// TestPaceRefuses: an error from Pace is returned without a call.
func TestPaceRefuses(t *testing.T) {
	t.Parallel()
	s := ctrsim.New(ctrsim.Options{})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	stop := errors.New("budget closed")
	c, err := ctr.New(ctr.Config{ClientID: ctrsim.DefaultClientID, ClientPassword: ctrsim.DefaultClientPassword,
		BaseURL: srv.URL, Pace: func(context.Context) error { return stop }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Observe(context.Background(), []ctr.Observable{{Type: "ip", Value: "192.0.2.1"}}); !errors.Is(err, stop) {
		t.Errorf("err = %v, want the Pace error", err)
	}
	if n := s.Stats.Count(ctrsim.RouteObserve); n != 0 {
		t.Errorf("%d observe calls past a closed budget", n)
	}
}
