package cli_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/services/tqflow/cli"
)

func startSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Seed: 5, Indicators: 40, ContextShare: 0.5, Rules: 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	return sb
}

// runOnce runs tqflow run --once on the env file, as an operator would
// next, and fails the test unless it succeeds.
func runOnce(t *testing.T, envFile string) string {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.MainEnv([]string{"run", "--once", "--env-file", envFile},
		[]string{"DATA_DIR=" + t.TempDir(), "METRICS_ADDR=127.0.0.1:0"}, &out, &errb)
	if code != 0 {
		t.Fatalf("tqflow run --once on the file init wrote: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	return out.String()
}

// TestInitNonInteractive: init from flags alone checks every answer live,
// writes a 0600 file (secrets as _FILE paths when asked) that tqflow run
// --once accepts, and refuses a wrong password or saved search, saying
// why, without writing anything.
func TestInitNonInteractive(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t)
	base := func(over map[string]string) []string {
		v := map[string]string{
			"jobs": "ctr,misp,et", "threatq-url": sb.ThreatQURL, "threatq-email": tqsim.DefaultUser.Email,
			"threatq-password": tqsim.DefaultUser.Password, "threatq-client-id": tqsim.DefaultUser.ClientID,
			"ctr-client-id": ctrsim.DefaultClientID, "ctr-client-password": ctrsim.DefaultClientPassword,
			"ctr-saved-search": sandbox.SavedSearch, "misp-url": sb.MISPURL, "misp-key": sandbox.MISPKey,
		}
		for k, x := range over {
			v[k] = x
		}
		args := []string{"init", "--non-interactive", "--set", "CTR_BASE_URL=" + sb.CTRURL,
			"--set", "ET_OPEN_URL=" + sb.ETURL, "--set", "ET_FLAVOR=" + sandbox.Flavor}
		for k, x := range v {
			args = append(args, "--"+k, x)
		}
		return args
	}
	tests := []struct {
		name    string
		over    map[string]string
		secrets bool
		want    []string // in the output; nil: success
	}{
		{name: "all jobs", secrets: false},
		{name: "secrets as files", secrets: true},
		{name: "wrong password", over: map[string]string{"threatq-password": "not-it"}, want: []string{"ThreatQ", "credentials were incorrect", "check the e-mail address, password"}},
		{name: "unknown saved search", over: map[string]string{"ctr-saved-search": "No such search"}, want: []string{"CTR_SAVED_SEARCH", "No such search", "not found", sandbox.SavedSearch}},
		{name: "wrong CTR password", over: map[string]string{"ctr-client-password": "nope"}, want: []string{"CTR enrichment", "Client authentication failed", "check the CTR client ID and password"}},
		{name: "wrong MISP key", over: map[string]string{"misp-key": strings.Repeat("a", 40)}, want: []string{"MISP export", "Authentication failed", "check the MISP authorization key"}},
		{name: "unknown ET status", over: map[string]string{"et-standard-status": "Shiny"}, want: []string{"ET_STANDARD_STATUS", "Shiny"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			file := filepath.Join(dir, "tqflow.env")
			args := append(base(tt.over), "--out", file)
			if tt.secrets {
				args = append(args, "--secrets-dir", filepath.Join(dir, "secrets"))
			}
			var out, errb bytes.Buffer
			code := cli.MainEnv(args, []string{}, &out, &errb)
			msg := out.String() + errb.String()
			if tt.want != nil {
				if code == 0 {
					t.Fatalf("init accepted it:\n%s", msg)
				}
				for _, w := range tt.want {
					if !strings.Contains(msg, w) {
						t.Errorf("the reason does not mention %q:\n%s", w, msg)
					}
				}
				if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("init wrote the file anyway (%v)", err)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, msg)
			}
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			vars, err := config.ReadEnvFile(file)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(file)
			if tt.secrets {
				if strings.Contains(string(data), tqsim.DefaultUser.Password) || vars["THREATQ_PASSWORD_FILE"] == "" {
					t.Errorf("secrets not moved to files:\n%s", data)
				}
				if fi, err := os.Stat(vars["THREATQ_PASSWORD_FILE"]); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("secret file: %v %v", fi, err)
				}
			} else if vars["THREATQ_PASSWORD"] != tqsim.DefaultUser.Password {
				t.Errorf("THREATQ_PASSWORD not written:\n%s", data)
			}
			out2 := runOnce(t, file)
			if !strings.Contains(out2, "indicators read") {
				t.Errorf("run --once summary:\n%s", out2)
			}
		})
	}
}

// term is the test's side of a pseudo-terminal.
type term struct {
	t    *testing.T
	f    *os.File
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func (tm *term) read() {
	defer close(tm.done)
	b := make([]byte, 4096)
	for {
		n, err := tm.f.Read(b)
		tm.mu.Lock()
		tm.buf.Write(b[:n])
		// Answer the terminal queries a TUI makes (background colour,
		// cursor position) as a terminal would.
		if bytes.Contains(b[:n], []byte("\x1b]11;?")) {
			_, _ = tm.f.WriteString("\x1b]11;rgb:0000/0000/0000\x1b\\")
		}
		if bytes.Contains(b[:n], []byte("\x1b[6n")) {
			_, _ = tm.f.WriteString("\x1b[1;1R")
		}
		tm.mu.Unlock()
		if err != nil {
			return
		}
	}
}

var ansi = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z])`)

// waitFor waits until the terminal's text (escape sequences removed)
// since mark holds s, returning the new mark.
func (tm *term) waitFor(mark int, s string) int {
	tm.t.Helper()
	var shown string
	found := -1
	if testkit.Wait(func() bool {
		tm.mu.Lock()
		shown = ansi.ReplaceAllString(tm.buf.String(), "")
		tm.mu.Unlock()
		if mark <= len(shown) {
			if i := strings.Index(shown[mark:], s); i >= 0 {
				found = mark + i + len(s)
				return true
			}
		}
		return false
	}, 60*time.Second) {
		return found
	}
	if d := os.Getenv("TQFLOW_PTY_LOG"); d != "" {
		tm.mu.Lock()
		_ = os.WriteFile(d, tm.buf.Bytes(), 0o600)
		tm.mu.Unlock()
	}
	tail := shown[min(mark, len(shown)):]
	tm.t.Fatalf("no %q on the terminal; its last text:\n%s", s, tail[max(0, len(tail)-3000):])
	return 0
}

// answer waits until the field titled title has the focus (huh marks it
// with a bar), then types keys: typed earlier, they would go to the field
// before.
func (tm *term) answer(mark int, title string, keys ...string) int {
	tm.t.Helper()
	m := tm.waitFor(mark, "┃ "+title)
	tm.send(keys...)
	return m
}

// send types keys, a little at a time, as a person (or a paste) would.
func (tm *term) send(keys ...string) {
	tm.t.Helper()
	for _, k := range keys {
		if _, err := io.WriteString(tm.f, k); err != nil {
			tm.t.Fatal(err)
		}
		// The subject: keys paced as a person types them; sent in one burst,
		// a terminal program reads them before the field that wants them
		// has the focus.
		time.Sleep(30 * time.Millisecond)
	}
}

const (
	enter   = "\r"
	clearLn = "\x15" // ctrl+u: delete to the start of the field
)

// TestInitThroughATerminal: tqflow init, driven through a pseudo-terminal
// as a person would answer it, catches a wrong ThreatQ password and an
// unknown saved search while asking, with the reason, asks again, and
// writes a file tqflow run --once accepts.
func TestInitThroughATerminal(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "tqflow.env")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "init", "--out", file, "--set", "CTR_BASE_URL="+sb.CTRURL)
	cmd.Env = []string{"TQFLOW_TEST_AS_TQFLOW=1", "TERM=xterm-256color", "HOME=" + dir, "PATH=/usr/bin:/bin"}
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	tm := &term{t: t, f: f, done: make(chan struct{})}
	go tm.read()

	m := tm.answer(0, "Jobs", enter) // ctr, the default
	m = tm.answer(m, "ThreatQ host", sb.ThreatQURL, enter)
	m = tm.answer(m, "E-mail address", tqsim.DefaultUser.Email, enter)
	m = tm.answer(m, "Password", "wrong-password", enter)
	m = tm.answer(m, "Client ID", tqsim.DefaultUser.ClientID, enter)
	m = tm.waitFor(m, "credentials were incorrect")
	// Asked again, with the answers given offered: only the password
	// changes.
	m = tm.answer(m, "ThreatQ host", enter)
	m = tm.answer(m, "E-mail address", enter)
	m = tm.answer(m, "Password", clearLn, tqsim.DefaultUser.Password, enter)
	m = tm.answer(m, "Client ID", enter)
	m = tm.waitFor(m, "✓ ThreatQ")
	m = tm.answer(m, "CTR region", enter)
	m = tm.answer(m, "CTR client ID", ctrsim.DefaultClientID, enter)
	m = tm.answer(m, "CTR client password", ctrsim.DefaultClientPassword, enter)
	m = tm.answer(m, "Saved search name", "Watch lst", enter)
	m = tm.answer(m, "Status", enter)
	m = tm.waitFor(m, "not found")
	m = tm.answer(m, "CTR region", enter)
	m = tm.answer(m, "CTR client ID", enter)
	m = tm.answer(m, "CTR client password", enter)
	m = tm.answer(m, "Saved search name", clearLn, sandbox.SavedSearch, enter)
	m = tm.answer(m, "Status", enter)
	m = tm.waitFor(m, "✓ CTR enrichment")
	tm.waitFor(m, "wrote "+file)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("init: %v", err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	tm.mu.Lock()
	shown := tm.buf.String()
	tm.mu.Unlock()
	if strings.Contains(shown, tqsim.DefaultUser.Password) || strings.Contains(shown, ctrsim.DefaultClientPassword) {
		t.Errorf("a password was echoed on the terminal")
	}
	if out := runOnce(t, file); !strings.Contains(out, "indicators read") {
		t.Errorf("run --once summary:\n%s", out)
	}
}
