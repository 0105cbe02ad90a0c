package httpx_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/httpx"
)

// pkg/bus's runner holds a message back for as long as its error's
// RetryAfter asks; these are the errors pkg/httpx's clients return. It is
// asserted here, in a test, so that pkg/httpx itself does not import the
// messaging layer.
var (
	_ bus.RetryAfterer = (*httpx.StatusError)(nil)
	_ bus.RetryAfterer = (*httpx.ScrubbedError)(nil)
)

func TestStatusErrorTransient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code int
		want bool
	}{
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusForbidden, false},
		{http.StatusNotFound, false},
		{http.StatusRequestTimeout, true},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusNotImplemented, false},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.code), func(t *testing.T) {
			t.Parallel()
			err := fmt.Errorf("wrapped: %w", &httpx.StatusError{Op: "op", StatusCode: tt.code})
			if got := httpx.IsTransient(err); got != tt.want {
				t.Errorf("IsTransient(%d) = %v, want %v", tt.code, got, tt.want)
			}
		})
	}
}

func TestDecodeAndTransportErrors(t *testing.T) {
	t.Parallel()
	if httpx.IsTransient(&httpx.DecodeError{Op: "op", Err: errors.New("bad")}) {
		t.Error("a decode error must be permanent")
	}
	if !httpx.IsTransient(&httpx.TransportError{Op: "op", Err: errors.New("reset")}) {
		t.Error("a transport error must be transient")
	}
	if httpx.IsTransient(errors.New("plain")) {
		t.Error("a plain error says nothing and must not count as transient")
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Duration
	}{
		{"empty", "", 0},
		{"seconds", "3557", 3557 * time.Second},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"garbage", "soon", 0},
		{"date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"past date", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"huge", "99999999999999999", time.Duration(int64(1<<62)/int64(time.Second)) * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := httpx.ParseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRetryAfterOf(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("ctx: %w", &httpx.StatusError{Op: "op", StatusCode: 429, Retry: 7 * time.Second})
	if got := httpx.RetryAfterOf(err); got != 7*time.Second {
		t.Errorf("RetryAfterOf = %v, want 7s", got)
	}
	if got := httpx.RetryAfterOf(errors.New("x")); got != 0 {
		t.Errorf("RetryAfterOf(plain) = %v, want 0", got)
	}
}
