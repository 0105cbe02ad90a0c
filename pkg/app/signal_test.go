package app_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/testkit"
)

// lockedBuffer is a bytes.Buffer the child's stderr copier writes while
// the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMain lets the test binary play a tqflow command whose shutdown
// never ends, for TestSecondSignalExits.
func TestMain(m *testing.M) {
	if os.Getenv("TQFLOW_APP_SIGNAL_CHILD") == "1" {
		os.Exit(app.Execute(app.Command{
			Name: "stuck",
			Run: func(ctx context.Context, _ *app.Env) error {
				_, _ = os.Stdout.WriteString("ready\n")
				<-ctx.Done()
				_, _ = os.Stdout.WriteString("draining\n")
				time.Sleep(time.Hour) // The subject: a drain that never ends.
				return nil
			},
		}, nil, []string{}, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestSecondSignalExits(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "TQFLOW_APP_SIGNAL_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := bufio.NewScanner(out)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("child said %q, want %q (stderr %s)", lines.Text(), want, stderr.String())
		}
	}
	expect("ready")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	expect("draining")
	// The goroutine that hands signals back logs once it has: wait for
	// that line, then send the second.
	testkit.Eventually(t, func() bool { return strings.Contains(stderr.String(), "a second signal ends") }, 5*time.Second,
		"the child to hand signals back")
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ProcessState.Success() {
			t.Fatalf("child ended with %v, want killed by the signal", err)
		}
		t.Logf("second SIGTERM obeyed in %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("a second SIGTERM did not end a process stuck in its drain")
	}
	if !strings.Contains(stderr.String(), "second signal") {
		t.Errorf("no word of the second signal in the log: %s", stderr.String())
	}
}

func TestParseFeedsTheScrubber(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	const key = "the-misp-key-0123456789"
	code := app.Execute(app.Command{
		Name: "echo",
		Run: func(_ context.Context, env *app.Env) error {
			var cfg struct {
				Key config.Secret `env:"MISP_KEY"`
			}
			if err := env.Parse(&cfg); err != nil {
				return err
			}
			if !env.Scrubber().Leaks("echo " + key) {
				t.Error("the parsed secret is not in the scrubber")
			}
			env.Log.Warn("server answered", "body", "Authorization: "+key)
			return errors.New("misp said: bad key " + key)
		},
	}, []string{"--log-format", "json"}, []string{"MISP_KEY=" + key}, &logs, &logs)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if strings.Contains(logs.String(), key) || !strings.Contains(logs.String(), "bad key [REDACTED]") {
		t.Errorf("logs leak the key or lost the record:\n%s", logs.String())
	}
}
