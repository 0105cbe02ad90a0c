package cli_test

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/services/tqflow/cli"
)

// TestRunMetricsAfterOnePass is issue 15's "curl /metrics on tqflow run
// after one pass": the tqflow run command itself, every job enabled,
// shows consumer lag and ack-pending for every consumer, handler timing
// for every worker and the last success of every job on its /metrics,
// and /readyz is ready only with every consumer there.
// Not parallel: it stops tqflow run with SIGINT.
func TestRunMetricsAfterOnePass(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Seed: 5, Indicators: 20, ContextShare: 0.5, Rules: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	environ := []string{"JOBS=ctr,misp,et", "CTR_STATUS=Review", "METRICS_ADDR=127.0.0.1:0", "DATA_DIR=" + t.TempDir()}
	for k, v := range sb.Env() {
		environ = append(environ, k+"="+v)
	}
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- cli.MainEnv([]string{"run", "-log-format", "text"}, environ, &out, &errb) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
			<-done
		}
	})
	addrRe := regexp.MustCompile(`serving metrics and health.*addr=(\S+)`)
	want := []string{
		`tqflow_last_success_timestamp_seconds{instance="default",job="ctr"`,
		`tqflow_last_success_timestamp_seconds{instance="default",job="misp"`,
		`tqflow_last_success_timestamp_seconds{instance="default",job="et"`,
		// What MISP made of the attributes, merged values apart (issue 11).
		`tqflow_misp_attributes_total{outcome="saved"}`,
		`tqflow_misp_attributes_total{outcome="merged"}`,
	}
	for _, c := range []string{"enricher-ctr-default", "exporter-misp-default", "signature-loader-default", "writer"} {
		want = append(want,
			`tqflow_consumer_pending_messages{consumer="`+c+`"`,
			`tqflow_consumer_ack_pending_messages{consumer="`+c+`"`,
			`tqflow_handler_duration_seconds_count{consumer="`+c+`"`)
	}
	var base, page, missing string
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case code := <-done:
			stopped = true
			t.Fatalf("tqflow run exited %d:\n%s", code, errb.String())
		default:
		}
		if base == "" {
			if m := addrRe.FindStringSubmatch(errb.String()); m != nil {
				base = "http://" + m[1]
			}
		}
		if base != "" {
			page = fetch(t, base+"/metrics")
			missing = ""
			for _, w := range want {
				if !strings.Contains(page, w) {
					missing = w
					break
				}
			}
			if missing == "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s, tqflow run's /metrics (at %q) still has no %s:\n%s", base, missing, page)
		}
		time.Sleep(100 * time.Millisecond) // A scrape interval, not a wait for an event.
	}
	if body := fetch(t, base+"/readyz"); body != "ok\n" {
		t.Errorf("/readyz after one pass: %q", body)
	}
	stopped = true
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("tqflow run after SIGINT: exit %d\n%s", code, errb.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("tqflow run did not stop within 40s of SIGINT")
	}
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
