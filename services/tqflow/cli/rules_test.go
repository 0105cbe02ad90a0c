package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/sharedtest"
)

func TestRulesParse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "emerging-test.rules")
	content := "# a comment\n" +
		"alert tcp any any -> any any (msg:\"ET TEST one\\; two\"; classtype:trojan-activity; sid:2000001; rev:3;)\n" +
		"#alert udp any any -> any any (msg:\"ET TEST off\"; sid:2000002; rev:1;)\n" +
		"garbage (\n" +
		"alert tcp any any -> any any (msg:\"no sid\"; rev:1;)\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	tgz, err := os.ReadFile(sharedtest.Path(t, "et/suricata-2017/emerging.rules.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.tar.gz")
	if err := os.WriteFile(cut, tgz[:len(tgz)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantStatus int
		wantRules  int // JSON lines with a sid
		wantErrs   int // JSON lines with an error
		stderr     []string
	}{
		{name: "file", args: []string{"parse", file}, wantRules: 2, wantErrs: 2,
			stderr: []string{"files=1 rules=2 enabled=1 disabled=1 errors=2"}},
		{name: "directory", args: []string{"parse", dir}, wantRules: 2, wantErrs: 2},
		{name: "real tarball", args: []string{"parse", sharedtest.Path(t, "et/suricata-2017/emerging.rules.tar.gz")},
			wantRules: 23906, stderr: []string{"files=47 rules=23906 enabled=19556 disabled=4350"}},
		{name: "truncated tarball", args: []string{"parse", cut}, wantStatus: 1, wantRules: -1,
			stderr: []string{"truncated archive"}},
		{name: "missing path", args: []string{"parse", filepath.Join(dir, "nope")}, wantStatus: 1,
			stderr: []string{"no such file"}},
		{name: "no subcommand", args: []string{}, wantStatus: app.ExitUsage, stderr: []string{"usage: tqflow rules parse PATH"}},
		{name: "help", args: []string{"-h"}, stderr: []string{"PATH is a rules file, a directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			status := execRules(tt.args, &stdout, &stderr)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d; stderr:\n%s", status, tt.wantStatus, stderr.String())
			}
			nRules, nErrs := 0, 0
			for line := range strings.Lines(stdout.String()) {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("not JSON: %q", line)
				}
				if _, ok := m["error"]; ok {
					nErrs++
					continue
				}
				for _, k := range []string{"file", "line", "gid", "sid", "rev", "enabled", "action", "proto", "msg", "classtype"} {
					if _, ok := m[k]; !ok {
						t.Fatalf("rule line without %s: %s", k, line)
					}
				}
				if len(m) != 10 {
					t.Fatalf("rule line with extra keys: %s", line)
				}
				nRules++
			}
			switch {
			case tt.wantRules < 0:
				if nRules == 0 {
					t.Error("truncated tarball: nothing printed before the error")
				}
			case nRules != tt.wantRules || nErrs != tt.wantErrs:
				t.Errorf("%d rules and %d errors printed, want %d and %d", nRules, nErrs, tt.wantRules, tt.wantErrs)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr does not say %q:\n%s", s, stderr.String())
				}
			}
		})
	}
}

func TestRulesParseOutput(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "x.rules")
	if err := os.WriteFile(file, []byte("alert tcp any any -> any any (msg:\"ET A\\; B\"; classtype:misc; sid:7; rev:2;)\nbad (\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if status := execRules([]string{"parse", file}, &stdout, &stderr); status != 0 {
		t.Fatalf("status %d: %s", status, stderr.String())
	}
	want := `{"file":"x.rules","line":1,"gid":1,"sid":7,"rev":2,"enabled":true,"action":"alert","proto":"tcp","msg":"ET A; B","classtype":"misc"}` + "\n" +
		`{"file":"x.rules","line":2,"error":"malformed rule`
	if !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("output:\n%s\nwant prefix:\n%s", stdout.String(), want)
	}
}

// execRules runs tqflow rules with args, as the tqflow command would, in
// an empty environment, and returns its exit status.
func execRules(args []string, stdout, stderr *bytes.Buffer) int {
	return app.Execute(rulesCommand(stdout, stderr), args, []string{}, stdout, stderr)
}
