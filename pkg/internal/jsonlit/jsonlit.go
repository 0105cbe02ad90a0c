// Package jsonlit reads JSON literals cheaply, for the lenient decoders'
// UnmarshalJSON methods: calling json.Unmarshal for every leaf value
// re-validates and re-scans it, which made leaf decoding the larger part of
// decoding a ThreatQ page or a CTR answer.
package jsonlit

import (
	"encoding/json"
	"unicode/utf8"
)

// String returns the string the JSON value b holds, and false when b is not
// a JSON string. A literal without escapes is read directly, exactly as
// encoding/json would read it; any other goes through encoding/json.
func String(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' {
		return "", false
	}
	if s, ok := plain(b); ok {
		return s, true
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return "", false
	}
	return s, true
}

// plain returns the contents of a string literal that has no escapes, no
// control characters and valid UTF-8; false for any other.
func plain(b []byte) (string, bool) {
	if b[len(b)-1] != '"' {
		return "", false
	}
	c := b[1 : len(b)-1]
	ascii := true
	for _, x := range c {
		switch {
		case x == '\\' || x == '"' || x < 0x20:
			return "", false
		case x >= utf8.RuneSelf:
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(c) {
		return "", false // encoding/json replaces invalid bytes with U+FFFD.
	}
	return string(c), true
}
