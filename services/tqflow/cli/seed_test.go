package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/services/tqflow/cli"
)

// TestMain lets the test binary stand in for tqflow: started under a seed
// connector's name (a link to it), it runs as the installed binary would,
// through argv[0].
func TestMain(m *testing.M) {
	if prog := filepath.Base(os.Args[0]); slices.Contains(cli.SeedNames(), prog) {
		os.Exit(cli.MainAs(prog, os.Args[1:], os.Stdout, os.Stderr))
	}
	if os.Getenv("TQFLOW_TEST_AS_TQFLOW") == "1" {
		os.Exit(cli.MainAs("tqflow", os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// seedLinks makes a directory of links, named as the seed executables, to
// the test binary.
func seedLinks(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, n := range cli.SeedNames() {
		if err := os.Symlink(self, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeEnv writes a tqflow.env of vars into dir.
func writeEnv(t *testing.T, dir string, vars map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for k, v := range vars {
		fmt.Fprintf(&b, "%s=%q\n", k, v)
	}
	if err := os.WriteFile(filepath.Join(dir, "tqflow.env"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSeedGuideCommandLines: each command line of the three seed guides,
// copied verbatim with only the paths moved under a temporary root, runs
// its job's one pass against the sandbox, through a link named as the
// seed's executable, as a crontab line would after the swap.
func TestSeedGuideCommandLines(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.Start(sandbox.Options{Seed: 3, Indicators: 60, ContextShare: 0.5, Rules: 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	bin := seedLinks(t)
	root := t.TempDir()
	p := func(s string) string { return filepath.Join(root, filepath.FromSlash(s)) + "/" }
	count := func(op string) int {
		n := 0
		for _, e := range sb.ThreatQ.Ledger.Entries() {
			if e.Op == op {
				n++
			}
		}
		return n
	}
	env := func(data string) map[string]string {
		vars := sb.Env()
		vars["DATA_DIR"] = filepath.Join(root, data)
		vars["METRICS_ADDR"] = "127.0.0.1:0"
		return vars
	}
	// The runs share the sandbox, so they go in turn.
	tests := []struct {
		name string
		// line is the guide's, with $ROOT/ where its absolute paths began.
		line   string
		cwd    string
		envDir string
		data   string
		check  func(t *testing.T, out string)
	}{
		{name: "ctr first run", line: "tq-conn-ctr-enrichment -v 3 -ll $ROOT/var/log/tq_labs/ -c $ROOT/etc/tq_labs/",
			envDir: "etc/tq_labs", data: "ctr", check: func(t *testing.T, out string) {
				if count("attribute.add") == 0 {
					t.Errorf("no CTR attributes written to ThreatQ:\n%s", out)
				}
				if _, err := os.Stat(p("var/log/tq_labs") + "tqflow.log"); err != nil {
					t.Errorf("-ll: %v", err)
				}
			}},
		{name: "ctr historical", line: "tq-conn-ctr-enrichment -v 3 -ll $ROOT/var/log/tq_labs/ -c $ROOT/etc/tq_labs/ --historical 2020-01-01",
			data: "ctr", check: func(t *testing.T, out string) {
				if !strings.Contains(out, "indicators read") {
					t.Errorf("no ctr summary:\n%s", out)
				}
			}},
		{name: "ctr -hist and -n", line: "tq-conn-ctr-enrichment -v 3 -ll $ROOT/var/log/tq_labs/ -c $ROOT/etc/tq_labs/ -hist 2020-01-01 -n second",
			data: "ctr", check: func(t *testing.T, out string) {
				if !strings.Contains(out, "indicators read") {
					t.Errorf("no ctr summary:\n%s", out)
				}
			}},
		{name: "misp first run", line: "tq-misp-export -v 3 -ll stdout", cwd: "opt/tq-integrations/misp", envDir: "opt/tq-integrations/misp", data: "misp",
			check: func(t *testing.T, out string) {
				if len(sb.MISP.Events()) == 0 {
					t.Errorf("no MISP event:\n%s", out)
				}
			}},
		{name: "misp cron -ds", line: "tq-misp-export -v 3 -ll stdout -ds", cwd: "opt/tq-integrations/misp", data: "misp",
			check: func(t *testing.T, out string) {
				if !strings.Contains(out, "disabled") {
					t.Errorf("-ds did not turn MISP certificate checks off:\n%s", out)
				}
			}},
		{name: "misp long forms", line: "tq-misp-export --verbosity 3 --loglocation stdout --config $ROOT/opt/tq-integrations/misp/", data: "misp",
			check: func(t *testing.T, out string) {
				if strings.Contains(out, "indicators read") {
					t.Errorf("the misp seed ran the ctr job:\n%s", out)
				}
			}},
		{name: "et initialise", line: "tq-conn-emerging-threats -c $ROOT/opt/tq-integrations/EmTS/config/ -ll $ROOT/opt/tq-integrations/EmTS/logs/ -v3",
			envDir: "opt/tq-integrations/EmTS/config", data: "et", check: func(t *testing.T, _ string) {
				if count("signature.create") == 0 {
					t.Errorf("no signature created in ThreatQ")
				}
			}},
		{name: "et cron", line: "tq-emergingthreats -c $ROOT/opt/tq-integrations/EmTS/config/ -ll $ROOT/opt/tqintegrations/EmTS/logs/ -v3", data: "et",
			check: func(t *testing.T, _ string) {
				if _, err := os.Stat(p("opt/tqintegrations/EmTS/logs") + "tqflow.log"); err != nil {
					t.Errorf("-ll: %v", err)
				}
			}},
	}
	for _, tt := range tests {
		if tt.envDir != "" {
			writeEnv(t, filepath.Join(root, tt.envDir), env(tt.data))
		}
		args := strings.Fields(strings.ReplaceAll(tt.line, "$ROOT/", root+"/"))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, filepath.Join(bin, args[0]), args[1:]...)
		cmd.Env = []string{"HOME=" + root, "PATH=/usr/bin:/bin"}
		cmd.Dir = root
		if tt.cwd != "" {
			cmd.Dir = filepath.Join(root, tt.cwd)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Errorf("%s: %s: %v\n%s", tt.name, tt.line, err, out.String())
			continue
		}
		t.Run(tt.name, func(t *testing.T) { tt.check(t, out.String()) })
	}
}
