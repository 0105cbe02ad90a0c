package jsonlit

import (
	"encoding/json"
	"testing"
)

// String must read every value exactly as encoding/json does.
func TestStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`""`, `"a"`, `"10.0.0.1"`, `"caf\u00e9"`, `"café"`, `"a\"b"`, `"a\\b"`, `"tab\there"`,
		"\"bad \xff byte\"", `"😀"`, `"\ud83d\ude00"`, `"line\nbreak"`,
		`null`, `1`, `true`, `{}`, `[]`, `"unterminated`, `"`, ``, "\"raw\x01control\"",
	} {
		var want string
		wantOK := json.Unmarshal([]byte(in), &want) == nil && len(in) > 0 && in[0] == '"'
		got, ok := String([]byte(in))
		if ok != wantOK || got != want {
			t.Errorf("String(%q) = %q, %v; encoding/json gives %q, %v", in, got, ok, want, wantOK)
		}
	}
}

func FuzzString(f *testing.F) {
	f.Add([]byte(`"abc"`))
	f.Add([]byte(`"a\u0041"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var want string
		wantOK := len(b) > 0 && b[0] == '"' && json.Unmarshal(b, &want) == nil
		got, ok := String(b)
		if ok != wantOK || got != want {
			t.Fatalf("String(%q) = %q, %v; encoding/json gives %q, %v", b, got, ok, want, wantOK)
		}
	})
}
