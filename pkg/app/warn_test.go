package app_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/et"
	"github.com/tqflow/tqflow/pkg/threatq"
)

// runParse runs a command whose Run is run with environ and JSON logs,
// and returns what it wrote; it fails the test unless the command exits
// 0.
func runParse(t *testing.T, environ []string, run func(*app.Env) error) string {
	t.Helper()
	var logs bytes.Buffer
	code := app.Execute(app.Command{
		Name: "parse",
		Run:  func(_ context.Context, env *app.Env) error { return run(env) },
	}, []string{"--log-format", "json"}, environ, &logs, &logs)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, logs.String())
	}
	return logs.String()
}

// TestTransportWarnings: every INSECURE switch and every allowed plain
// http URL is warned about at start-up, naming the system and the
// setting, once.
func TestTransportWarnings(t *testing.T) {
	t.Parallel()
	out := runParse(t, []string{
		"THREATQ_URL=https://tq.example", "THREATQ_CLIENT_ID=id-1234", "THREATQ_CLIENT_SECRET=secret-1234", "THREATQ_INSECURE=true",
		"CTR_CLIENT_ID=client-1", "CTR_CLIENT_PASSWORD=pw-123456", "CTR_BASE_URL=http://sandbox:18081", "CTR_ALLOW_HTTP=true",
		"ET_INSECURE=true",
	}, func(env *app.Env) error {
		var cfg struct {
			ThreatQ threatq.Config `envPrefix:"THREATQ_"`
			CTR     ctr.Config     `envPrefix:"CTR_"`
			ET      et.Config      `envPrefix:"ET_"`
		}
		if err := env.Parse(&cfg); err != nil {
			return err
		}
		return env.Parse(&cfg) // twice: warned once
	})
	for _, want := range []string{`"system":"threatq","setting":"THREATQ_INSECURE"`, `"system":"ctr","setting":"CTR_ALLOW_HTTP"`, `"system":"et","setting":"ET_INSECURE"`} {
		if strings.Count(out, want) != 1 {
			t.Errorf("want one warning with %s:\n%s", want, out)
		}
	}
}
