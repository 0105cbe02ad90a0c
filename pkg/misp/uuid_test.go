package misp_test

import (
	"testing"

	"github.com/tqflow/tqflow/pkg/misp"
)

func TestUUIDs(t *testing.T) {
	t.Parallel()
	// Expected values computed independently with Python's uuid.uuid5.
	tests := []struct {
		name, got, want string
	}{
		{"event", misp.EventUUID("https://misp.example.org", "2025-01-15", 1), "8dadee5c-7c6d-50fc-83c6-3ca451b5c257"},
		{"event trailing slash", misp.EventUUID("https://misp.example.org/", "2025-01-15", 1), "8dadee5c-7c6d-50fc-83c6-3ca451b5c257"},
		{"attribute", misp.AttributeUUID("8dadee5c-7c6d-50fc-83c6-3ca451b5c257", "ip-dst", "198.51.100.7"), "d91604fa-a8fa-5f75-b09e-dee6758bef13"},
		{"attribute upper event uuid", misp.AttributeUUID("8DADEE5C-7C6D-50FC-83C6-3CA451B5C257", "ip-dst", "198.51.100.7"), "d91604fa-a8fa-5f75-b09e-dee6758bef13"},
		{"dns namespace vector", misp.AttributeUUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "ip-dst", "1.2.3.4"), "f1a4cf18-e250-5054-9846-3d4b54c3c212"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
	if misp.EventUUID("x", "2025-01-15", 1) == misp.EventUUID("x", "2025-01-15", 2) {
		t.Error("chunks must get different UUIDs")
	}
	bad := misp.AttributeUUID("not-a-uuid", "md5", "x")
	if !misp.ValidUUID(bad) || bad != misp.AttributeUUID("not-a-uuid", "md5", "x") {
		t.Errorf("fallback UUID %q is not a stable UUID", bad)
	}
	if bad[14] != '5' {
		t.Errorf("version nibble of %s is not 5", bad)
	}
}
