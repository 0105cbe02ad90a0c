package httpx

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Redacted is what a [Scrubber] shows in place of a secret unless told
// otherwise.
const Redacted = "[REDACTED]"

// minSecret is the shortest value scrubbed: a shorter one (a one-letter
// test password) would blank ordinary words out of every message.
const minSecret = 4

// Scrubber replaces configured secrets, in every form a server may echo
// them (as sent, URL-escaped, JSON-escaped, base64, and inside an HTTP
// Basic credential), in text that came from outside: API error messages,
// transport errors, log records. A nil *Scrubber scrubs nothing. A
// Scrubber is immutable once built and safe for concurrent use.
type Scrubber struct {
	// forms are the texts to replace, longest first so that a secret
	// inside a longer form (its Basic credential) is replaced whole.
	forms []form
}

type form struct{ text, shown string }

// NewScrubber returns a scrubber of secrets, each shown as [Redacted].
// Empty and very short values are ignored.
func NewScrubber(secrets ...string) *Scrubber {
	var s *Scrubber
	for _, sec := range secrets {
		s = s.With(sec, Redacted)
	}
	return s
}

// With returns a scrubber that also replaces secret, in all its forms, by
// shown.
func (s *Scrubber) With(secret, shown string) *Scrubber {
	if len(secret) < minSecret {
		return s
	}
	forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret), strings.ToLower(url.QueryEscape(secret))}
	forms = append(forms, jsonForms(secret)...)
	forms = append(forms, b64(secret)...)
	return s.add(shown, forms...)
}

// WithBasic returns a scrubber that also replaces the HTTP Basic
// credential of user and password (base64 of "user:password") and both
// halves on their own.
func (s *Scrubber) WithBasic(user, password string) *Scrubber {
	if user == "" && password == "" {
		return s
	}
	s = s.add(Redacted, b64(user+":"+password)...)
	return s.With(user, Redacted).With(password, Redacted)
}

// Join returns a scrubber that replaces the secrets of s and of others.
func (s *Scrubber) Join(others ...*Scrubber) *Scrubber {
	out := s
	for _, o := range others {
		if o == nil {
			continue
		}
		for _, f := range o.forms {
			out = out.add(f.shown, f.text)
		}
	}
	return out
}

// jsonForms returns secret as it appears inside a JSON string, with and
// without HTML escaping.
func jsonForms(secret string) []string {
	var out []string
	if q, err := json.Marshal(secret); err == nil {
		out = append(out, string(q[1:len(q)-1]))
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(secret) == nil {
		q := strings.TrimSpace(b.String())
		out = append(out, q[1:len(q)-1])
	}
	return out
}

// b64 returns the four base64 encodings of v.
func b64(v string) []string {
	b := []byte(v)
	return []string{
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
	}
}

// add returns a copy of s with the texts added.
func (s *Scrubber) add(shown string, texts ...string) *Scrubber {
	out := &Scrubber{}
	if s != nil {
		out.forms = slices.Clone(s.forms)
	}
	for _, t := range texts {
		if len(t) < minSecret || slices.ContainsFunc(out.forms, func(f form) bool { return f.text == t }) {
			continue
		}
		out.forms = append(out.forms, form{text: t, shown: shown})
	}
	slices.SortStableFunc(out.forms, func(a, b form) int { return len(b.text) - len(a.text) })
	return out
}

// Empty reports whether s scrubs nothing.
func (s *Scrubber) Empty() bool { return s == nil || len(s.forms) == 0 }

// String returns text with every secret replaced.
func (s *Scrubber) String(text string) string {
	if s == nil {
		return text
	}
	for _, f := range s.forms {
		if strings.Contains(text, f.text) {
			text = strings.ReplaceAll(text, f.text, f.shown)
		}
	}
	return text
}

// Bytes returns b with every secret replaced; b itself when it holds none.
func (s *Scrubber) Bytes(b []byte) []byte {
	if s == nil {
		return b
	}
	for _, f := range s.forms {
		if bytes.Contains(b, []byte(f.text)) {
			b = bytes.ReplaceAll(b, []byte(f.text), []byte(f.shown))
		}
	}
	return b
}

// Leaks reports whether text holds a secret in any of its forms.
func (s *Scrubber) Leaks(text string) bool {
	if s == nil {
		return false
	}
	for _, f := range s.forms {
		if strings.Contains(text, f.text) {
			return true
		}
	}
	return false
}

// Error returns err itself when its text holds no secret; otherwise an
// error with the scrubbed text that keeps what callers test for (context
// cancellation and deadline, Timeout, Transient, RetryAfter) and drops
// the chain, so that nothing can reach the secret through Unwrap.
func (s *Scrubber) Error(err error) error {
	if err == nil || s == nil {
		return err
	}
	if !s.Leaks(err.Error()) {
		return err
	}
	return s.Rebuild(err)
}

// Rebuild is [Scrubber.Error] whether or not the text of err holds a
// secret: for an error whose chain holds something a caller must not
// reach (a *url.Error whose URL carries a credential).
func (s *Scrubber) Rebuild(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var te interface{ Timeout() bool }
	return &ScrubbedError{
		msg:       s.String(msg),
		canceled:  errors.Is(err, context.Canceled),
		deadline:  errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded),
		timeout:   errors.As(err, &te) && te.Timeout(),
		transient: IsTransient(err),
		retry:     RetryAfterOf(err),
	}
}

// ScrubbedError is an error whose text held a secret, rebuilt by
// [Scrubber.Error] with the secret replaced.
type ScrubbedError struct {
	msg       string
	canceled  bool
	deadline  bool
	timeout   bool
	transient bool
	retry     time.Duration
}

// Error implements error.
func (e *ScrubbedError) Error() string { return e.msg }

// Timeout reports whether the original error was a timeout.
func (e *ScrubbedError) Timeout() bool { return e.timeout }

// Transient reports whether the original error was transient.
func (e *ScrubbedError) Transient() bool { return e.transient }

// RetryAfter returns the delay the original error asked for.
func (e *ScrubbedError) RetryAfter() time.Duration { return e.retry }

// Is matches the context errors the original matched.
func (e *ScrubbedError) Is(target error) bool {
	switch target { //nolint:errorlint // Is compares targets by identity.
	case context.Canceled:
		return e.canceled
	case context.DeadlineExceeded, os.ErrDeadlineExceeded:
		return e.deadline
	}
	return false
}
