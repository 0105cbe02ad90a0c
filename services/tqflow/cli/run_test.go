package cli_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/services/tqflow/cli"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sandboxEnv starts a small sandbox and returns the variables that point
// tqflow run at it.
func sandboxEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Seed: 1, Indicators: 20, ContextShare: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	var environ []string
	for k, v := range sb.Env() {
		environ = append(environ, k+"="+v)
	}
	return append(environ, extra...)
}

// running is a tqflow run command started in the background by startRun.
type running struct {
	t         *testing.T
	out, errb syncBuffer
	done      chan int
	code      int // the exit code once exited has seen it, else -1
	stopped   bool
}

// startRun starts tqflow with args and environ on a goroutine. Unless stop
// was called, cleanup stops it with SIGINT and waits for it: a test that
// starts it cannot be parallel.
func startRun(t *testing.T, args, environ []string) *running {
	t.Helper()
	r := &running{t: t, done: make(chan int, 1), code: -1}
	go func() { r.done <- cli.MainEnv(args, environ, &r.out, &r.errb) }()
	t.Cleanup(func() {
		if !r.stopped {
			_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
			r.wait()
		}
	})
	return r
}

// exited reports whether the command has exited, without waiting.
func (r *running) exited() bool {
	if r.code >= 0 {
		return true
	}
	select {
	case r.code = <-r.done:
		return true
	default:
		return false
	}
}

func (r *running) wait() {
	if r.code < 0 {
		r.code = <-r.done
	}
}

// stop sends SIGINT and fails the test unless the command exits 0 within
// 40 seconds.
func (r *running) stop() {
	r.t.Helper()
	r.stopped = true
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		r.t.Fatal(err)
	}
	if !testkit.Wait(r.exited, 40*time.Second) {
		r.t.Fatal("tqflow run did not stop within 40s of SIGINT")
	}
	if r.code != 0 {
		r.t.Errorf("tqflow run after SIGINT: exit %d\n%s", r.code, r.errb.String())
	}
}

// TestOneHost is issue 14's "tqflow run in one shell, tqflow status and
// tqflow dlq list in another, with no variable set": the operator
// commands find the running pipeline from the default DATA_DIR alone; a
// client without the recorded credentials is refused (issue 13's
// unauthenticated publish); with nothing running they say so plainly.
// Not parallel: it changes directory and stops tqflow run with SIGINT.
func TestOneHost(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	runEnv := sandboxEnv(t, "JOBS=ctr", "CTR_STATUS=Review", "METRICS_ADDR=127.0.0.1:0")
	run := startRun(t, []string{"run", "-v", "1"}, runEnv)
	record := filepath.Join(dir, ".data", "nats", "context.json")
	testkit.Eventually(t, func() bool {
		_, err := os.Stat(record)
		return err == nil || run.exited()
	}, 30*time.Second, record+" to be written")
	if run.exited() {
		t.Fatalf("tqflow run exited %d before recording its server:\n%s", run.code, run.errb.String())
	}
	fi, err := os.Stat(record)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600: it holds the credentials", record, fi.Mode().Perm())
	}

	for _, args := range [][]string{{"status"}, {"dlq", "list"}} {
		var out, errb bytes.Buffer
		if code := cli.MainEnv(args, []string{}, &out, &errb); code != 0 {
			t.Errorf("tqflow %s with no variable set: exit %d\n%s", strings.Join(args, " "), code, errb.String())
		}
		if args[0] == "status" && !strings.Contains(out.String(), "INDICATORS") {
			t.Errorf("tqflow status shows no INDICATORS stream:\n%s", out.String())
		}
	}

	// A stranger on the same port: refused, publish and all.
	data, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	url := between(string(data), `"url": "`, `"`)
	if nc, err := nats.Connect(url, nats.Timeout(2*time.Second)); err == nil {
		_ = nc.Publish("tq.writes.indicator", []byte(`{}`))
		nc.Close()
		t.Errorf("an unauthenticated client connected to %s", url)
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("unauthenticated client: %v, want an authorization violation", err)
	}

	run.stop()
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Errorf("%s still there after tqflow run stopped (%v)", record, err)
	}
	var out, errb bytes.Buffer
	code := cli.MainEnv([]string{"status"}, []string{}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "no tqflow run is running here") {
		t.Errorf("tqflow status with nothing running: exit %d, stderr:\n%s", code, errb.String())
	}
}

// TestRunOnceWrongMISPKey: a MISP key MISP refuses makes tqflow run --once
// exit non-zero within seconds, saying why, and nothing is fetched.
func TestRunOnceWrongMISPKey(t *testing.T) {
	t.Parallel()
	env := sandboxEnv(t, "JOBS=misp", "MISP_KEY=WRONGwrongWRONGwrongWRONGwrongWRONGwrong",
		"METRICS_ADDR=127.0.0.1:0", "DATA_DIR="+t.TempDir())
	var out, errb syncBuffer
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- cli.MainEnv([]string{"run", "--once", "-log-format", "text"}, env, &out, &errb) }()
	select {
	case code := <-done:
		if code == 0 {
			t.Errorf("exit 0 with a wrong MISP key")
		}
		t.Logf("exit %d after %s", code, time.Since(start).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("tqflow run --once with a wrong MISP key still running after 30s")
	}
	logs := errb.String() + out.String()
	if !strings.Contains(logs, "exporter") || !strings.Contains(strings.ToLower(logs), "misp") {
		t.Errorf("the output does not say the exporter's MISP check failed:\n%s", logs)
	}
	if strings.Contains(logs, "WRONGwrongWRONG") {
		t.Errorf("the output shows the key:\n%s", logs)
	}
}

// TestRunMetricsPortInUse: a METRICS_ADDR taken by another process is
// fatal before anything starts.
func TestRunMetricsPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	env := sandboxEnv(t, "JOBS=ctr", "CTR_STATUS=Review", "METRICS_ADDR="+ln.Addr().String(), "DATA_DIR="+t.TempDir())
	var out, errb syncBuffer
	code := cli.MainEnv([]string{"run", "--once", "-log-format", "text"}, env, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "METRICS_ADDR") {
		t.Errorf("metrics port in use: exit %d, stderr:\n%s", code, errb.String())
	}
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}

// TestRunStopsWhenAWorkerStops: in continuous mode too, a worker that
// cannot start (a MISP key MISP refuses) stops tqflow run as a whole,
// within seconds and with a non-zero exit, instead of running on without
// it.
func TestRunStopsWhenAWorkerStops(t *testing.T) {
	t.Parallel()
	env := sandboxEnv(t, "JOBS=misp", "MISP_KEY=WRONGwrongWRONGwrongWRONGwrongWRONGwrong",
		"METRICS_ADDR=127.0.0.1:0", "DATA_DIR="+t.TempDir())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- cli.MainEnv([]string{"run", "-log-format", "text"}, env, &out, &errb) }()
	select {
	case code := <-done:
		if code == 0 {
			t.Errorf("exit 0 after the exporter stopped")
		}
		if !strings.Contains(errb.String(), "worker stopped") {
			t.Errorf("the log does not say a worker stopped:\n%s", errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tqflow run still running 30s after its exporter could not start")
	}
}

// TestRunRefusesAnOpenListen: an embedded server listening beyond this
// host without credentials is refused before anything starts; with them,
// or on loopback, it is not.
func TestRunRefusesAnOpenListen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		vars   []string
		refuse bool
	}{
		{"all interfaces, no credentials", []string{"NATS_LISTEN=0.0.0.0:4222"}, true},
		{"a LAN address, no credentials", []string{"NATS_LISTEN=192.0.2.10:4222"}, true},
		{"a creds file the embedded server cannot use", []string{"NATS_LISTEN=0.0.0.0:4222", "NATS_CREDS_FILE=/x.creds"}, true},
		{"all interfaces, user and password", []string{"NATS_LISTEN=0.0.0.0:4222", "NATS_USER=tqflow", "NATS_PASSWORD=pw-x"}, false},
		{"loopback", []string{"NATS_LISTEN=127.0.0.1:4222"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// JOBS is bad on purpose: nothing starts either way, and the
			// message says whether NATS_LISTEN was refused too.
			env := append([]string{"DATA_DIR=" + t.TempDir(), "JOBS=nothing"}, tc.vars...)
			var out, errb bytes.Buffer
			code := cli.MainEnv([]string{"run", "--once"}, env, &out, &errb)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (bad JOBS):\n%s", code, errb.String())
			}
			if refused := strings.Contains(errb.String(), "NATS_LISTEN") || strings.Contains(errb.String(), "NATS_CREDS_FILE"); refused != tc.refuse {
				t.Errorf("NATS_LISTEN refused: %v, want %v:\n%s", refused, tc.refuse, errb.String())
			}
		})
	}
}
