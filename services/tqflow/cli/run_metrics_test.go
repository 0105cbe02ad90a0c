package cli_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/testkit"
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
	run := startRun(t, []string{"run", "-log-format", "text"}, environ)
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
	var scrapeErr error
	up := testkit.Wait(func() bool {
		if run.exited() {
			return true
		}
		if base == "" {
			m := addrRe.FindStringSubmatch(run.errb.String())
			if m == nil {
				return false
			}
			base = "http://" + m[1]
		}
		if page, scrapeErr = testkit.Scrape(t.Context(), base+"/metrics"); scrapeErr != nil {
			return false
		}
		missing = ""
		for _, w := range want {
			if !strings.Contains(page, w) {
				missing = w
				return false
			}
		}
		return true
	}, 60*time.Second)
	if run.exited() {
		t.Fatalf("tqflow run exited %d:\n%s", run.code, run.errb.String())
	}
	if !up {
		t.Fatalf("after 60s, tqflow run's /metrics (at %q) still has no %s (%v):\n%s", base, missing, scrapeErr, page)
	}
	if code, body := testkit.Get(t, base+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz after one pass: %d %q", code, body)
	}
	run.stop()
}
