package pipeline_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
)

// The repository's .env.example, copied to .env with its secrets filled
// in, is a valid configuration for every job, and every value is what it
// says: no comment read as part of a value.
func TestEnvExampleIsValid(t *testing.T) {
	t.Parallel()
	vars, err := config.ReadEnvFile("../../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range vars {
		if strings.Contains(v, "#") {
			t.Errorf(".env.example: %s=%q holds a comment", k, v)
		}
	}
	vars["JOBS"] = "ctr,misp,et"
	vars["THREATQ_PASSWORD"] = "a password"
	vars["THREATQ_CLIENT_ID"] = "a0b1c2d3e4f5"
	vars["CTR_CLIENT_PASSWORD"] = "a password"
	vars["MISP_KEY"] = strings.Repeat("k", 40)
	env := &app.Env{Resolved: &app.Resolved{Vars: vars, Instance: "default", Log: slog.New(slog.DiscardHandler)}}
	var pc pipeline.Config
	if err := pc.Parse(env); err != nil {
		t.Errorf(".env.example with its secrets filled in: %v", err)
	}
}
