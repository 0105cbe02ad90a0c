package e2e_test

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/httpx/httpxtest"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
	"github.com/tqflow/tqflow/services/tqflow/cli"
)

// echoProxy stands in front of a simulator like a debugging proxy that
// dumps the session into its error answers: requests that fail(r) answer
// status with every error field holding the request and the last token
// request it relayed (headers and body); the others go through.
func echoProxy(t *testing.T, target string, status int, fail func(*http.Request) bool) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	var mu sync.Mutex
	lastToken := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "token") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			d := httpxtest.Dump(r)
			mu.Lock()
			lastToken = d
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if !fail(r) {
			rp.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		tok := lastToken
		mu.Unlock()
		dump := "session: " + tok + " | " + httpxtest.Dump(r)
		r.Body = io.NopCloser(strings.NewReader(dump))
		httpxtest.Echo(status)(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestEchoedSecretsNeverStored runs tqflow run --once, as the binary does,
// against ThreatQ, CTR and MISP behind proxies that echo the requests
// (credentials included) into their errors: a ThreatQ write refused with
// 400, the MISP event refused with 400, then, as another instance, the CTR
// token refused with 401. The write and export failures are dead-lettered,
// the CTR refusal stops its run with the reason; no configured secret, in
// any form, is in the logs, in tqflow dlq show or anywhere in the
// JetStream store on disk.
func TestEchoedSecretsNeverStored(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.Start(sandbox.Options{Seed: 13, Indicators: 60, ContextShare: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	store := t.TempDir()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: store, ServerName: "hostile", Port: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)

	secrets := []string{tqsim.DefaultUser.Password, tqsim.DefaultUser.ClientID, ctrsim.DefaultClientPassword, sandbox.MISPKey}
	forms := httpxtest.Forms(secrets, [2]string{ctrsim.DefaultClientID, ctrsim.DefaultClientPassword})

	tq := echoProxy(t, sb.ThreatQURL, http.StatusBadRequest, func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/consume")
	})
	misp := echoProxy(t, sb.MISPURL, http.StatusBadRequest, func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/events/add")
	})
	ctrRefuses := echoProxy(t, sb.CTRURL, http.StatusUnauthorized, func(r *http.Request) bool {
		return strings.Contains(r.URL.Path, "token")
	})

	environ := func(extra ...string) []string {
		env := []string{"NATS_URL=" + srv.ClientURL(), "NATS_STREAM_MAX_AGE=1h", "NATS_DUPLICATE_WINDOW=2m",
			"ENRICHER_MAX_DELIVER=2", "WRITER_MAX_DELIVER=2", "EXPORTER_MAX_DELIVER=2"}
		for k, v := range sb.Env() {
			switch k {
			case "THREATQ_URL":
				v = tq.URL
			case "MISP_URL":
				v = misp.URL
			}
			env = append(env, k+"="+v)
		}
		return append(env, extra...)
	}
	var logs strings.Builder
	run := func(args []string, env []string) (int, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := cli.MainEnv(args, env, &out, &errOut)
		logs.WriteString(errOut.String())
		logs.WriteString(out.String())
		return code, out.String()
	}

	// The writer and the exporter meet echoing errors.
	code, out := run([]string{"run", "--once", "--log-format", "json"}, environ("JOBS=ctr,misp", "CTR_STATUS=Review"))
	t.Logf("run --once: exit %d\n%s", code, out)
	// The enricher meets an echoing token endpoint (another instance: its
	// own checkpoint, so it fetches the indicators again).
	// Refused credentials are not a property of one observable: nothing
	// is dead-lettered, the run stops with the reason (and records it in
	// KV for tqflow status), so the echo must be redacted there.
	before := logs.Len()
	code, out = run([]string{"run", "--once", "--log-format", "json", "-n", "second"},
		environ("JOBS=ctr", "CTR_BASE_URL="+ctrRefuses.URL, "ENRICHER_CACHE=false"))
	t.Logf("run --once -n second: exit %d\n%s", code, out)
	if second := logs.String()[before:]; code == 0 || !strings.Contains(second, "[REDACTED]") {
		t.Errorf("run against a CTR refusing the credentials: exit %d; want non-zero with the echoed refusal redacted:\n%s", code, second)
	}

	dlEnv := []string{"NATS_URL=" + srv.ClientURL(), "NATS_STREAM_MAX_AGE=1h", "NATS_DUPLICATE_WINDOW=2m"}
	_, list := run([]string{"dlq", "list"}, dlEnv)
	rows := dlqRows(list)
	redacted := map[string]int{} // by consumer: dead letters whose echo shows redacted
	for _, f := range rows {
		_, show := run([]string{"dlq", "show", f[0]}, dlEnv)
		httpxtest.NoLeak(t, "dlq show "+f[0], show, forms)
		if strings.Contains(show, "[REDACTED]") {
			redacted[f[3]]++
		}
	}
	t.Logf("%d dead letters; with a redacted echo, by consumer: %v", len(rows), redacted)
	for _, want := range []string{"WRITES/writer", "INDICATORS/exporter-misp-default"} {
		if redacted[want] == 0 {
			t.Errorf("no dead letter of %s shows the echo redacted: the test would prove nothing; dead letters:\n%s", want, list)
		}
	}
	httpxtest.NoLeak(t, "logs", logs.String(), forms)
	if !regexp.MustCompile(`\[REDACTED\]`).MatchString(logs.String()) {
		t.Log("no redacted text in the logs (errors are logged at the bus edge only when they are)")
	}

	// Every byte JetStream wrote to disk.
	srv.Shutdown()
	files := 0
	err = filepath.WalkDir(store, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, f := range forms {
			if bytes.Contains(data, []byte(f)) {
				t.Errorf("%s holds a secret form %q", p, f)
			}
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walk the store: %v (%d files)", err, files)
	}
}
