package config

import "log/slog"

// Secret is a configuration value that must never be shown: a password, an
// API key, a client secret, an oinkcode. Printing it with fmt, logging it
// with slog or encoding it as JSON gives "[REDACTED]"; [Secret.Reveal] gives
// the value to the one place that sends it.
type Secret string

const redacted = "[REDACTED]"

// String returns "[REDACTED]", or "" for an empty secret so that "not set"
// stays visible.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is what %#v prints.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler, so JSON and text encoders
// redact it too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }
