package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/services/tqflow/cli"
)

// TestRunRejectsBadInput: a configuration missing credentials, a bad
// region and a malformed --historical date give one message naming every
// problem, a non-zero exit, and nothing started (no NATS store created).
func TestRunRejectsBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	var stdout, stderr bytes.Buffer
	code := cli.MainEnv([]string{"run", "--once", "--historical", "2024-13-45"}, []string{
		"DATA_DIR=" + data,
		"JOBS=ctr",
		"THREATQ_URL=https://threatq.example.com",
		"CTR_SAVED_SEARCH=Watch list",
		"CTR_REGION=mars",
		"CTR_CLIENT_ID=client-x",
		"CTR_CLIENT_PASSWORD=secret-ctr-password",
	}, &stdout, &stderr)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	msg := stderr.String()
	for _, want := range []string{"--historical", "2024-13-45", "mars", "THREATQ_"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message does not mention %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "secret-ctr-password") {
		t.Errorf("message shows a secret:\n%s", msg)
	}
	if strings.Count(msg, "\n  - ") < 3 {
		t.Errorf("want every problem on its own line, got:\n%s", msg)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("DATA_DIR was created (%v): something started before the configuration was checked", err)
	}
}

func TestUnknownCommandAndHelp(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := cli.MainEnv([]string{"frobnicate"}, []string{}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := cli.MainEnv([]string{"help"}, []string{}, &out, &errb); code != 0 {
		t.Errorf("help: exit %d", code)
	}
	for _, want := range []string{"run", "sandbox", "demo", "enricher", "writer", "fetcher", "rules"} {
		if !strings.Contains(out.String(), "  "+want) {
			t.Errorf("help does not list %q", want)
		}
	}
	out.Reset()
	errb.Reset()
	if code := cli.MainEnv([]string{"run", "-h"}, []string{}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-historical") {
		t.Errorf("run -h: exit %d, output %q", code, errb.String())
	}
}
