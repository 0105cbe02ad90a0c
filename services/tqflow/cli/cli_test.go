package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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

// TestConfigErrorsNameFullVariablesOnce: two jobs reading the ThreatQ
// settings report their problems once, and CTR's settings by their full
// names; a job not enabled reports nothing.
func TestConfigErrorsNameFullVariablesOnce(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := cli.MainEnv([]string{"run", "--once"}, []string{"JOBS=ctr,misp", "DATA_DIR=" + t.TempDir()}, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	msg := stderr.String()
	if n := strings.Count(msg, "THREATQ_URL is required"); n != 1 {
		t.Errorf("THREATQ_URL reported %d times:\n%s", n, msg)
	}
	for _, want := range []string{"CTR_CLIENT_ID is not set", "CTR_CLIENT_PASSWORD is not set", "MISP_URL is not set", "MISP_KEY is not set"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	stderr.Reset()
	_ = cli.MainEnv([]string{"run", "--once"}, []string{"JOBS=misp", "DATA_DIR=" + t.TempDir()}, &stdout, &stderr)
	if strings.Contains(stderr.String(), "CTR_") {
		t.Errorf("the misp job reports CTR settings:\n%s", stderr.String())
	}
}

// TestHelpPerCommand: a command's help lists its own flags and the
// variables it reads, and not another command's.
func TestHelpPerCommand(t *testing.T) {
	t.Parallel()
	help := func(args ...string) string {
		var out, errb bytes.Buffer
		if code := cli.MainEnv(args, []string{}, &out, &errb); code != 0 {
			t.Fatalf("%q: exit %d", args, code)
		}
		return errb.String()
	}
	st := help("status", "-h")
	for _, not := range []string{"-once", "-historical", "-name", "THREATQ_URL"} {
		if strings.Contains(st, not) {
			t.Errorf("status -h lists %q:\n%s", not, st)
		}
	}
	if !strings.Contains(st, "NATS_URL") {
		t.Errorf("status -h does not say it reads NATS_URL:\n%s", st)
	}
	run := help("run", "-h")
	for _, want := range []string{"-once", "-historical", "-ds", "THREATQ_URL", "CTR_CLIENT_ID", "MISP_KEY", "ET_OINKCODE", "DATA_DIR"} {
		if !strings.Contains(run, want) {
			t.Errorf("run -h lacks %q", want)
		}
	}
	if !regexp.MustCompile(`\n  METRICS_ADDR +127\.0\.0\.1:9090\n`).MatchString(run) {
		t.Errorf("run -h does not show metrics on the loopback by default")
	}
	if en := help("enricher", "-h"); strings.Contains(en, "MISP_KEY") || !regexp.MustCompile(`\n  ENRICHER_CONCURRENCY +8\n`).MatchString(en) {
		t.Errorf("enricher -h:\n%s", en)
	}
	sl := help("signature-loader", "-h")
	for _, want := range []string{`THREATQ_URL +-`, `LOADER_CONCURRENCY +2`, `LOADER_MAX_DELIVER +5`, `LOADER_DRAIN_TIMEOUT +20s`, `LOADER_MAX_ACK_PENDING +64`} {
		if !regexp.MustCompile(`\n  ` + want + `\n`).MatchString(sl) {
			t.Errorf("signature-loader -h does not show %s:\n%s", want, sl)
		}
	}
	if strings.Contains(sl, "WRITER_") {
		t.Errorf("signature-loader -h lists the writer's variables:\n%s", sl)
	}
}

// TestServiceConfigCheckedOnceBeforeStarting: a service's configuration
// is validated where it is parsed, before it connects to NATS, each
// problem reported once.
func TestServiceConfigCheckedOnceBeforeStarting(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := cli.MainEnv([]string{"signature-loader"}, []string{"NATS_URL=nats://127.0.0.1:1", "LOADER_CONCURRENCY=17"}, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", code, stderr.String())
	}
	msg := stderr.String()
	for _, want := range []string{"LOADER_CONCURRENCY 17: want 1 to 16", "THREATQ_URL is required"} {
		if n := strings.Count(msg, want); n != 1 {
			t.Errorf("%q reported %d times, want once:\n%s", want, n, msg)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("refused after %s: it waited for NATS before checking its configuration", d)
	}
}
