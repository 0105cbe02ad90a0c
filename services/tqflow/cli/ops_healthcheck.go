package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/app"
)

// healthcheckTimeout bounds the whole check.
const healthcheckTimeout = 3 * time.Second

// healthcheckCommand GETs a service's /readyz, for container health checks
// in images without curl: exit 0 when it answers 200, 1 otherwise.
func healthcheckCommand(stdout io.Writer) app.Command {
	var url string
	return app.Command{
		Name:    "healthcheck",
		Summary: "exit 0 when a service's /readyz answers 200 (for container health checks)",
		Usage:   "tqflow healthcheck [--url http://127.0.0.1:9090/readyz]",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&url, "url", "", "readiness URL (default: /readyz on METRICS_ADDR's port on 127.0.0.1, else port 9090)")
		},
		Run: func(ctx context.Context, env *app.Env) error {
			u := url
			if u == "" {
				var err error
				if u, err = readyzURL(env.Vars["METRICS_ADDR"]); err != nil {
					return app.UsageError{Err: err}
				}
			}
			body, err := checkReady(ctx, u)
			if err != nil {
				return err
			}
			fmt.Fprint(stdout, body)
			return nil
		},
	}
}

// readyzURL returns the local /readyz URL of a server listening on addr
// (":9090" when empty).
func readyzURL(addr string) (string, error) {
	if addr == "" {
		addr = ":9090"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("METRICS_ADDR %q: want host:port: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// errNotReady is checkReady's error for an answer other than 200.
var errNotReady = errors.New("not ready")

// checkReady GETs u and returns its body when it answers 200.
func checkReady(ctx context.Context, u string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", app.UsageError{Err: fmt.Errorf("--url %q: %w", u, err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("check readiness: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("check readiness: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("check readiness: %s answered %s: %w: %s", u, resp.Status, errNotReady, strings.Join(strings.Fields(string(body)), " "))
	}
	return string(body), nil
}
