package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFindLocalContext: the operator commands take the first directory
// holding a tqflow run's record, so that with DATA_DIR unset ./.data comes
// first and the packaged unit's /var/lib/tqflow next; with none, the
// error names every place looked at.
func TestFindLocalContext(t *testing.T) {
	t.Parallel()
	empty, used := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(used, "nats"), 0o700); err != nil {
		t.Fatal(err)
	}
	want := localContext{URL: "nats://127.0.0.1:4222", User: "u", Password: "p"}
	if err := writeLocalContext(filepath.Join(used, "nats", localContextName), want); err != nil {
		t.Fatal(err)
	}

	path, got, err := findLocalContext([]string{empty, used})
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(used, "nats", localContextName) || got != want {
		t.Errorf("found %s %+v, want the record under %s", path, got, used)
	}

	_, _, err = findLocalContext([]string{empty, filepath.Join(empty, "other")})
	if !errors.Is(err, ErrNothingRunning) {
		t.Fatalf("with no record: %v, want ErrNothingRunning", err)
	}
	for _, dir := range []string{empty, filepath.Join(empty, "other")} {
		if !strings.Contains(err.Error(), filepath.Join(dir, "nats", localContextName)) {
			t.Errorf("the error does not name %s: %v", dir, err)
		}
	}
}
