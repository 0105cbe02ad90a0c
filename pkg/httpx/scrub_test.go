package httpx_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/httpx"
)

func TestScrubberForms(t *testing.T) {
	t.Parallel()
	const id, secret, key = "client-id-4711", "s3cr3t/with+odd&chars\"", "0123456789abcdefABCDEF0123456789abcdefAB"
	s := httpx.NewScrubber(key).WithBasic(id, secret)
	tests := []struct {
		name, text string
	}{
		{"raw", "echo: " + key},
		{"basic header", "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))},
		{"basic raw url", base64.RawURLEncoding.EncodeToString([]byte(id + ":" + secret))},
		{"query escaped", "client_secret=" + url.QueryEscape(secret)},
		{"lower-case escapes", "p=" + strings.ToLower(url.QueryEscape(secret))},
		{"path escaped", "/x/" + url.PathEscape(secret)},
		{"json escaped", `{"password":"s3cr3t/with+odd&chars\""}`},
		{"base64 of the key", base64.StdEncoding.EncodeToString([]byte(key))},
		{"client id alone", "unknown client " + id},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !s.Leaks(tt.text) {
				t.Fatalf("Leaks(%q) = false", tt.text)
			}
			got := s.String(tt.text)
			for _, form := range []string{key, secret, id, url.QueryEscape(secret), base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))} {
				if strings.Contains(got, form) {
					t.Errorf("String(%q) = %q still holds %q", tt.text, got, form)
				}
			}
			if !strings.Contains(got, httpx.Redacted) {
				t.Errorf("String(%q) = %q shows no %s", tt.text, got, httpx.Redacted)
			}
			if b := s.Bytes([]byte(tt.text)); string(b) != got {
				t.Errorf("Bytes = %q, String = %q", b, got)
			}
		})
	}
	if s.Leaks("nothing to see here") {
		t.Error("a clean text leaks")
	}
	var nilScrub *httpx.Scrubber
	if nilScrub.String(key) != key || nilScrub.Leaks(key) || !nilScrub.Empty() {
		t.Error("a nil scrubber must scrub nothing")
	}
	if !httpx.NewScrubber("abc").Empty() {
		t.Error("a three-letter secret would blank ordinary words")
	}
}

func TestScrubberJoinAndShown(t *testing.T) {
	t.Parallel()
	s := httpx.NewScrubber("alpha-secret").Join(nil, (*httpx.Scrubber)(nil).With("oink-1234", "<oinkcode>"))
	if got := s.String("alpha-secret /oink-1234/"); got != "[REDACTED] /<oinkcode>/" {
		t.Errorf("joined String = %q", got)
	}
}

func TestScrubberError(t *testing.T) {
	t.Parallel()
	s := httpx.NewScrubber("hunter2-key")
	clean := errors.New("nothing here")
	if s.Error(clean) != clean { //nolint:errorlint // Identity is the point.
		t.Error("a clean error must come back as it is")
	}
	inner := &httpx.StatusError{Op: "misp: add", StatusCode: 429, Retry: 3 * time.Second, Detail: "key hunter2-key over quota"}
	err := s.Error(fmt.Errorf("ctx %w: %w", context.DeadlineExceeded, inner))
	if strings.Contains(err.Error(), "hunter2-key") || !strings.Contains(err.Error(), "over quota") {
		t.Errorf("scrubbed = %q", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Error("context facts lost")
	}
	if !httpx.IsTransient(err) || httpx.RetryAfterOf(err) != 3*time.Second {
		t.Errorf("transient %v, retry %v: delivery facts lost", httpx.IsTransient(err), httpx.RetryAfterOf(err))
	}
	var se *httpx.StatusError
	if errors.As(err, &se) {
		t.Error("the original chain, which holds the secret, must not be reachable")
	}
}
