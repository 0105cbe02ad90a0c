package config

import (
	"log/slog"
	"reflect"
)

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

// SecretsOf returns the revealed values of every non-empty [Secret] in v, a
// configuration struct or a pointer to one, nested structs included: what
// a scrubber must keep out of logs and errors.
func SecretsOf(v any) []string {
	var out []string
	collectSecrets(reflect.ValueOf(v), &out, 0)
	return out
}

func collectSecrets(v reflect.Value, out *[]string, depth int) {
	if depth > 8 || !v.IsValid() {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			collectSecrets(v.Elem(), out, depth+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				collectSecrets(v.Field(i), out, depth+1)
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem() == secretType || v.Type().Elem().Kind() == reflect.Struct {
			for i := range v.Len() {
				collectSecrets(v.Index(i), out, depth+1)
			}
		}
	case reflect.String:
		if v.Type() == secretType && v.String() != "" {
			*out = append(*out, v.String())
		}
	}
}

var secretType = reflect.TypeFor[Secret]()

// Find returns every value in v (a configuration struct or a pointer to
// one, nested structs included) whose type implements T, outermost
// first: e.g. every sub-configuration with a warnings method.
func Find[T any](v any) []T {
	var out []T
	findIn(reflect.ValueOf(v), &out, 0)
	return out
}

func findIn[T any](v reflect.Value, out *[]T, depth int) {
	if depth > 8 || !v.IsValid() {
		return
	}
	if v.CanInterface() {
		if t, ok := v.Interface().(T); ok && !(v.Kind() == reflect.Pointer && v.IsNil()) {
			*out = append(*out, t)
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			findIn(v.Elem(), out, depth+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				findIn(v.Field(i), out, depth+1)
			}
		}
	}
}
