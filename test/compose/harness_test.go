package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/testkit"
)

// indicators is the size of every test's dataset: enough for a run to have
// a middle to kill things in, small enough for 2 cores.
const indicators = 3000

// requireCompose skips the test unless TQFLOW_COMPOSE=1, and fails it when
// that is set but docker-compose or the daemon is missing.
func requireCompose(t *testing.T) {
	t.Helper()
	if os.Getenv("TQFLOW_COMPOSE") != "1" {
		t.Skip("container tests: set TQFLOW_COMPOSE=1 (make test-compose builds the images and does), with a Docker daemon and docker-compose")
	}
	if testing.Short() {
		t.Skip("container tests take minutes; not with -short")
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("TQFLOW_COMPOSE=1 but docker-compose is not on PATH")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("TQFLOW_COMPOSE=1 but the Docker daemon does not answer: %v\n%s", err, out)
	}
}

// repoRoot is the directory of docker-compose.yml: two up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "docker-compose.yml")); err != nil {
		t.Fatalf("no docker-compose.yml at %s: %v", root, err)
	}
	return root
}

// project is one docker-compose project: its own network, containers and
// volumes, removed when the test ends.
type project struct {
	t     *testing.T
	root  string
	name  string
	files []string
}

func newProject(t *testing.T, cluster bool) *project {
	requireCompose(t)
	root := repoRoot(t)
	name := fmt.Sprintf("tqct%s%d", strings.ToLower(strings.TrimPrefix(t.Name(), "Test")), os.Getpid()%100000)
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, name)
	files := []string{filepath.Join(root, "docker-compose.yml")}
	if cluster {
		files = append(files, filepath.Join(root, "deploy", "compose", "cluster.yml"))
	}
	files = append(files, filepath.Join(root, "test", "compose", "testdata", "test.yml"))
	p := &project{t: t, root: root, name: name, files: files}
	// A project left over from an interrupted run would skew the ledger.
	_, _ = p.run(2*time.Minute, "down", "-v", "--remove-orphans", "-t", "5")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := p.run(time.Minute, "logs", "--no-color", "--tail", "40")
			t.Logf("logs of %s:\n%s", p.name, out)
		}
		if out, err := p.run(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "10"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	})
	return p
}

// run runs docker-compose with the project's files and name and returns
// its standard output, and its standard error too when it fails.
func (p *project) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := []string{"--ansi", "never", "-p", p.name}
	for _, f := range p.files {
		full = append(full, "-f", f)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, "docker-compose", full...)
	cmd.Dir = p.root
	cmd.Env = append(os.Environ(),
		"SANDBOX_PUBLISH=127.0.0.1:0",
		fmt.Sprintf("SANDBOX_INDICATORS=%d", indicators),
		"COMPOSE_HTTP_TIMEOUT=300",
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

// must runs docker-compose and fails the test on error.
func (p *project) must(timeout time.Duration, args ...string) string {
	p.t.Helper()
	start := time.Now()
	out, err := p.run(timeout, args...)
	if err != nil {
		p.t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	p.t.Logf("docker-compose %s (%s)", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
	return out
}

// url returns http://host:port of a service's published container port.
// Ports are looked up every time: a restarted container gets new ones.
func (p *project) url(service string, port int) (string, error) {
	out, err := p.run(time.Minute, "port", service, fmt.Sprint(port))
	if err != nil {
		return "", fmt.Errorf("docker-compose port %s %d: %w: %s", service, port, err, out)
	}
	hp := strings.TrimSpace(out)
	if hp == "" || strings.HasSuffix(hp, ":0") {
		return "", fmt.Errorf("%s:%d is not published (yet)", service, port)
	}
	return "http://" + hp, nil
}

// containers returns the IDs of a service's containers, in index order.
func (p *project) containers(service string) []string {
	p.t.Helper()
	out, err := p.run(time.Minute, "ps", "-q", service)
	if err != nil {
		p.t.Fatalf("docker-compose ps -q %s: %v\n%s", service, err, out)
	}
	return strings.Fields(out)
}

var client = &http.Client{Timeout: 10 * time.Second}

func getJSON(url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func putJSON(url string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s: %s", url, resp.Status)
	}
	return nil
}

// waitSandbox waits until the sandbox's ThreatQ answers on the host.
func (p *project) waitSandbox() string {
	p.t.Helper()
	var u string
	var err error
	if !testkit.Wait(func() bool {
		if u, err = p.url("sandbox", 18080); err != nil {
			return false
		}
		var stats any
		err = getJSON(u+"/_sim/stats", &stats)
		return err == nil
	}, 2*time.Minute) {
		p.t.Fatalf("sandbox not answering after 2m: %v", err)
	}
	return u
}

// waitNATS waits until NATS's /healthz (node 1's, on the cluster) answers
// 200: JetStream is up and, on a cluster, has a meta leader. A JetStream
// API request sent before that is never answered.
func (p *project) waitNATS() {
	p.t.Helper()
	start := time.Now()
	var err error
	if !testkit.Wait(func() bool {
		var u string
		if u, err = p.url("nats", 8222); err != nil {
			return false
		}
		var h any
		err = getJSON(u+"/healthz", &h)
		return err == nil
	}, 2*time.Minute) {
		p.t.Fatalf("NATS not healthy after 2m: %v", err)
	}
	p.t.Logf("NATS healthy after %s", time.Since(start).Round(100*time.Millisecond))
}

// setCTRLatency makes the sandbox's CTR answer every call after d, so that
// a run lasts long enough to be interrupted.
func (p *project) setCTRLatency(d time.Duration) {
	p.t.Helper()
	u, err := p.url("sandbox", 18081)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := putJSON(u+"/_sim/faults", map[string]any{"latency": d}); err != nil {
		p.t.Fatal(err)
	}
}

// fetchOnce runs the fetcher once, in a container of its own, and returns
// when everything it read is stored in the INDICATORS stream.
func (p *project) fetchOnce() {
	p.t.Helper()
	p.must(5*time.Minute, "run", "--rm", "--no-deps", "-T", "fetcher", "fetcher", "--once")
}

// entry is a ledger entry as the sandbox serves it.
type entry struct {
	Op     string `json:"op"`
	Object string `json:"object"`
	Name   string `json:"name"`
	Value  string `json:"value"`
}

func (e entry) String() string { return e.Op + " " + e.Object + " " + e.Name + "=" + e.Value }

func (p *project) ledger(sandboxURL string) ([]entry, error) {
	var l []entry
	err := getJSON(sandboxURL+"/_sim/ledger", &l)
	return l, err
}

// consumer is a JetStream consumer's state as NATS's monitoring endpoint
// serves it.
type consumer struct {
	Stream      string
	Name        string `json:"name"`
	NumPending  int    `json:"num_pending"`
	AckPending  int    `json:"num_ack_pending"`
	Redelivered int    `json:"num_redelivered"`
}

// consumers returns every consumer's state, from NATS's /jsz.
func (p *project) consumers() ([]consumer, error) {
	u, err := p.url("nats", 8222)
	if err != nil {
		return nil, err
	}
	var jsz struct {
		Accounts []struct {
			Streams []struct {
				Name      string     `json:"name"`
				Consumers []consumer `json:"consumer_detail"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := getJSON(u+"/jsz?accounts=true&streams=true&consumers=true", &jsz); err != nil {
		return nil, err
	}
	var cs []consumer
	for _, a := range jsz.Accounts {
		for _, s := range a.Streams {
			for _, c := range s.Consumers {
				c.Stream = s.Name
				cs = append(cs, c)
			}
		}
	}
	return cs, nil
}

// pending returns the messages the enricher's and the writer's consumers
// still have to process (pending plus unacknowledged), from NATS's
// monitoring endpoint.
func (p *project) pending() (int, error) {
	cs, err := p.consumers()
	if err != nil {
		return 0, err
	}
	n, seen := 0, 0
	for _, c := range cs {
		if strings.HasPrefix(c.Name, "enricher") || strings.HasPrefix(c.Name, "writer") {
			n += c.NumPending + c.AckPending
			seen++
		}
	}
	if seen < 2 {
		return 0, fmt.Errorf("the enricher's and writer's consumers are not both there yet (%d seen)", seen)
	}
	return n, nil
}

// waitDone waits until the enricher and writer have nothing left and the
// ledger has not changed for a while, and returns the ledger.
func (p *project) waitDone(sandboxURL string, timeout time.Duration) []entry {
	p.t.Helper()
	const quiet = 5 * time.Second
	start := time.Now()
	last, lastChange := -1, time.Now()
	var lastErr error
	var done []entry
	if !testkit.Wait(func() bool {
		l, err := p.ledger(sandboxURL)
		if err != nil {
			lastErr = err
			return false
		}
		if len(l) != last {
			last, lastChange = len(l), time.Now()
		}
		n, perr := p.pending()
		lastErr = perr
		if perr == nil && n == 0 && last > 0 && time.Since(lastChange) >= quiet {
			done = l
			return true
		}
		if perr == nil {
			lastErr = fmt.Errorf("%d messages still pending, ledger at %d", n, last)
		}
		return false
	}, timeout) {
		p.t.Fatalf("run not done after %s: %v", timeout, lastErr)
	}
	p.t.Logf("done: %d ledger entries, %s after the fetch", len(done), time.Since(start).Round(100*time.Millisecond))
	return done
}

// waitLedger waits until the ledger has at least n entries.
func (p *project) waitLedger(sandboxURL string, n int, timeout time.Duration) {
	p.t.Helper()
	var err error
	if !testkit.Wait(func() bool {
		var l []entry
		l, err = p.ledger(sandboxURL)
		return err == nil && len(l) >= n
	}, timeout) {
		p.t.Fatalf("ledger below %d entries after %s (err %v)", n, timeout, err)
	}
}

// counts counts each entry (op, object, name, value).
func counts(l []entry) map[entry]int {
	m := make(map[entry]int, len(l))
	for _, e := range l {
		m[e]++
	}
	return m
}

// requireExact fails unless got holds exactly want's entries, each once.
func requireExact(t *testing.T, got, want []entry) {
	t.Helper()
	g, w := counts(got), counts(want)
	var problems []string
	for e, n := range g {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("written %d times: %s", n, e))
		} else if w[e] == 0 {
			problems = append(problems, "not expected: "+e.String())
		}
	}
	for e := range w {
		if g[e] == 0 {
			problems = append(problems, "missing: "+e.String())
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Fatalf("ledger of %d entries is not the expected %d (%d problems):\n%s",
			len(got), len(want), len(problems), strings.Join(problems[:min(len(problems), 20)], "\n"))
	}
}

var (
	baselineOnce sync.Once
	baselineL    []entry
	baselineErr  string
)

// baseline is the ledger of a plain run with one enricher and one writer,
// computed once per test binary.
func baseline(t *testing.T) []entry {
	t.Helper()
	baselineOnce.Do(func() {
		ok := t.Run("baseline-1x1", func(t *testing.T) {
			baselineL = plainRun(t, 1, 1)
		})
		if !ok {
			baselineErr = "the baseline run (1 enricher, 1 writer) failed"
		}
	})
	if baselineErr != "" {
		t.Fatal(baselineErr)
	}
	return baselineL
}

// plainRun brings up NATS, the sandbox and enrichers and writers, runs the
// fetcher once and returns the ledger when the run is done.
func plainRun(t *testing.T, enrichers, writers int) []entry {
	start := time.Now()
	p := newProject(t, false)
	p.must(5*time.Minute, "up", "-d", "nats", "sandbox")
	p.waitNATS()
	p.must(5*time.Minute, "up", "-d", "--scale", fmt.Sprint("enricher=", enrichers), "--scale", fmt.Sprint("writer=", writers),
		"nats", "sandbox", "enricher", "writer")
	sb := p.waitSandbox()
	p.fetchOnce()
	l := p.waitDone(sb, 5*time.Minute)
	requireNoDuplicates(t, l)
	p.checkNATSAuth()
	t.Logf("%d enrichers, %d writers: %d ledger entries in %s", enrichers, writers, len(l), time.Since(start).Round(100*time.Millisecond))
	return l
}

func requireNoDuplicates(t *testing.T, l []entry) {
	t.Helper()
	for e, n := range counts(l) {
		if n > 1 {
			t.Fatalf("written %d times: %s", n, e)
		}
	}
}

func runDocker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return string(out), err
}

// waitHealthy waits until every container of a service is healthy by its
// compose healthcheck (tqflow healthcheck on /readyz).
func (p *project) waitHealthy(service string, timeout time.Duration) {
	p.t.Helper()
	start := time.Now()
	var ids []string
	healthy := 0
	if !testkit.Wait(func() bool {
		ids = p.containers(service)
		healthy = 0
		for _, id := range ids {
			out, err := runDocker("inspect", "-f", "{{.State.Health.Status}}", id)
			if err == nil && strings.TrimSpace(out) == "healthy" {
				healthy++
			}
		}
		return len(ids) > 0 && healthy == len(ids)
	}, timeout) {
		p.t.Fatalf("%s: %d of %d containers healthy after %s", service, healthy, len(ids), timeout)
	}
	p.t.Logf("%s healthy after %s", service, time.Since(start).Round(100*time.Millisecond))
}

// checkNATSAuth is issue 13's attack on compose's NATS: a client without
// credentials is refused, and a service's own user cannot publish what
// another service publishes (tq.writes.indicator is the enricher's), while
// the operator's user runs tqflow status.
func (p *project) checkNATSAuth() {
	p.t.Helper()
	u, err := p.url("nats", 4222)
	if err != nil {
		p.t.Fatal(err)
	}
	addr := "nats://" + strings.TrimPrefix(u, "http://")
	if nc, err := nats.Connect(addr, nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		p.t.Errorf("an unauthenticated client connected to compose's NATS at %s", addr)
	} else if !errors.Is(err, nats.ErrAuthorization) {
		p.t.Errorf("unauthenticated client: %v, want an authorization violation", err)
	}
	for _, user := range []string{"writer", "fetcher", "exporter"} {
		vars, err := readEnvFile(filepath.Join(p.root, "deploy", "nats", "secrets", user+".env"))
		if err != nil {
			p.t.Fatal(err)
		}
		nc, err := nats.Connect(addr, nats.UserInfo(vars["NATS_USER"], vars["NATS_PASSWORD"]),
			nats.CustomInboxPrefix(vars["NATS_INBOX_PREFIX"]), nats.Timeout(5*time.Second))
		if err != nil {
			p.t.Fatalf("connect as %s: %v", user, err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			p.t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = js.Publish(ctx, "tq.writes.indicator", []byte(`{"indicator_id":1,"status":"Whitelisted"}`))
		cancel()
		nc.Close()
		if err == nil {
			p.t.Errorf("%s published to tq.writes.indicator on compose's NATS", user)
		}
	}
	if out, err := p.run(2*time.Minute, "run", "--rm", "--no-deps", "-T", "ops", "status"); err != nil {
		p.t.Errorf("tqflow status as ops: %v\n%s", err, out)
	}
	out, err := p.run(2*time.Minute, "run", "--rm", "--no-deps", "-T", "-e", "NATS_PASSWORD=not-the-password", "ops", "status")
	if err == nil || !strings.Contains(out, "refused the credentials") {
		p.t.Errorf("tqflow status with a wrong password: %v\n%s", err, out)
	}
}

// readEnvFile reads the KEY=VALUE lines of a credentials file.
func readEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out, nil
}
