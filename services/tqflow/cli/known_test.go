package cli

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestShippedVariablesAreKnown: every variable the shipped env files and
// compose files set for tqflow, commented-out examples included, is one
// tqflow reads, so none of them is refused as unknown.
func TestShippedVariablesAreKnown(t *testing.T) {
	t.Parallel()
	k, err := knownVars()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join("..", "..", "..")
	envLine := regexp.MustCompile(`^#?\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=`)
	composeLine := regexp.MustCompile(`^\s+([A-Z][A-Z0-9_]*):`)
	files := map[string]*regexp.Regexp{
		".env.example":               envLine,
		"deploy/compose/sandbox.env": envLine,
		"docker-compose.yml":         composeLine,
		"deploy/compose/cluster.yml": composeLine,
	}
	vars := map[string]string{}
	for f, re := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				vars[m[1]] = f
			}
		}
	}
	if len(vars) < 40 {
		t.Fatalf("found only %d variables: the patterns no longer match the files", len(vars))
	}
	if err := k.Check(vars); err != nil {
		t.Errorf("shipped files set variables tqflow does not read:\n%v", err)
	}
}

// TestMisspeltVariableRefused: the MISP_SCORE_TRESHOLD=8 stops
// tqflow run before anything starts, naming the right spelling.
func TestMisspeltVariableRefused(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := MainEnv([]string{"run", "--once"}, []string{"JOBS=misp", "MISP_SCORE_TRESHOLD=8", "FETCHER_INTERVAL=1h"}, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("exit %d, want 2 (usage)\n%s", code, stderr.String())
	}
	for _, want := range []string{"MISP_SCORE_TRESHOLD: unknown variable; did you mean MISP_SCORE_THRESHOLD?", "FETCHER_INTERVAL: unknown variable; did you mean FETCH_INTERVAL?"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}
