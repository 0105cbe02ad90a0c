// Package sharedtest finds the real-world artefacts in shared/data, which
// sit beside the project on developer machines and in CI but not in a
// user's clone.
package sharedtest

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns the path of rel inside shared/data. Where the folder is
// absent the test is skipped with a message that says why, except in CI
// (the CI environment variable set), where it fails: CI must never skip.
// TQFLOW_SHARED_DATA overrides where shared/data is.
func Path(t testing.TB, rel string) string {
	t.Helper()
	base := os.Getenv("TQFLOW_SHARED_DATA")
	if base == "" {
		base = findShared()
	}
	p := filepath.Join(base, filepath.FromSlash(rel))
	if base != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "shared data " + rel + " not found (../shared/data beside the project root, or TQFLOW_SHARED_DATA): " +
		"it is on developer machines and in CI, not in a user's clone"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("skipping: " + msg)
	return ""
}

// Lookup returns the path of rel inside shared/data and whether it is
// there, without skipping: for a test that has other work to do without
// it (a fuzz target with its own seeds).
func Lookup(rel string) (string, bool) {
	base := os.Getenv("TQFLOW_SHARED_DATA")
	if base == "" {
		base = findShared()
	}
	if base == "" {
		return "", false
	}
	p := filepath.Join(base, filepath.FromSlash(rel))
	_, err := os.Stat(p)
	return p, err == nil
}

// findShared walks up from the working directory to the project root (the
// folder holding go.work) and returns ../shared/data from there.
func findShared() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared", "data")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
