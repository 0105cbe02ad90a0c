package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/config"
)

// TestSeedCommandLines: every form of the seed guides' flags parses to the
// same settings, and a flag a command does not take is refused.
func TestSeedCommandLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name     string
		optional app.CommonFlag
		args     []string
		want     app.Common
		wantExit int
	}{
		{name: "ctr guide", optional: app.FlagInstance | app.FlagHistorical,
			args: []string{"-v", "3", "-ll", "stdout", "-c", dir, "--historical", "2020-01-01"},
			want: app.Common{Verbosity: 3, LogTo: "stdout", ConfigDir: dir, Historical: "2020-01-01"}},
		{name: "ctr -hist and -n", optional: app.FlagInstance | app.FlagHistorical,
			args: []string{"-v", "1", "-hist", "2020-01-01", "-n", "second"},
			want: app.Common{Verbosity: 1, LogTo: "stdout", Historical: "2020-01-01", Instance: "second"}},
		{name: "et guide -v3", optional: app.FlagInstance,
			args: []string{"-c", dir, "-ll", "stdout", "-v3"},
			want: app.Common{Verbosity: 3, LogTo: "stdout", ConfigDir: dir}},
		{name: "misp guide -ds", optional: app.FlagDisableSSL,
			args: []string{"-v", "3", "-ll", "stdout", "-ds"},
			want: app.Common{Verbosity: 3, LogTo: "stdout", DisableSSL: true}},
		{name: "misp long forms", optional: app.FlagInstance | app.FlagDisableSSL,
			args: []string{"--verbosity", "1", "--loglocation", "stdout", "--config", dir, "--name", "x", "--disable-ssl"},
			want: app.Common{Verbosity: 1, LogTo: "stdout", ConfigDir: dir, Instance: "x", DisableSSL: true}},
		{name: "--once refused where not taken", args: []string{"--once"}, wantExit: app.ExitUsage},
		{name: "-n refused where not taken", args: []string{"-n", "x"}, wantExit: app.ExitUsage},
		{name: "-ds refused where not taken", optional: app.FlagInstance, args: []string{"-ds"}, wantExit: app.ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got app.Common
			var vars map[string]string
			cmd := app.Command{Name: "x", Optional: tt.optional, Run: func(_ context.Context, e *app.Env) error {
				got, vars = e.Common, e.Vars
				return nil
			}}
			var out, errb bytes.Buffer
			code := app.Execute(cmd, tt.args, []string{}, &out, &errb)
			if code != tt.wantExit {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantExit, errb.String())
			}
			if tt.wantExit != 0 {
				return
			}
			tt.want.EnvFile = got.EnvFile
			if got != tt.want {
				t.Errorf("flags = %+v, want %+v", got, tt.want)
			}
			if tt.want.DisableSSL != (vars["MISP_DISABLE_SSL"] == "true") {
				t.Errorf("MISP_DISABLE_SSL = %q with -ds %v", vars["MISP_DISABLE_SSL"], tt.want.DisableSSL)
			}
		})
	}
}

func TestSeedArgs(t *testing.T) {
	t.Parallel()
	got := app.SeedArgs([]string{"-v3", "-vx", "-v", "2", "-v12", "--", "-v3"})
	want := []string{"-v=3", "-vx", "-v", "2", "-v=12", "--", "-v3"}
	if !slices.Equal(got, want) {
		t.Errorf("SeedArgs = %q, want %q", got, want)
	}
}

type inner struct {
	URL      string        `env:"URL"`
	Password config.Secret `env:"PASSWORD"`
	Timeout  string        `env:"TIMEOUT" envDefault:"60s"`
	Skip     string        `env:"-"`
}

type outer struct {
	A     inner    `envPrefix:"A_" envDefaults:"TIMEOUT=90s"`
	B     inner    `envPrefix:"B_"`
	Jobs  []string `env:"JOBS" envDefault:"ctr"`
	Batch int      `env:"BATCH"`
	Embedded
}

type Embedded struct {
	Level string `env:"LEVEL"`
}

// TestVarsMatchTheParser: the help's variables are exactly those the
// parser (caarlos0/env) reads, with the defaults of the tags and only
// those: a value set in code is no default.
func TestVarsMatchTheParser(t *testing.T) {
	t.Parallel()
	cfg := outer{Batch: 7}
	vars := app.Vars(&cfg, &outer{})
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
	}
	params, err := env.GetFieldParams(&outer{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range params {
		want = append(want, p.Key)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("Vars names = %q, the parser reads %q", names, want)
	}
	byName := map[string]app.Var{}
	for _, v := range vars {
		byName[v.Name] = v
	}
	if byName["BATCH"].Default != "" || byName["A_TIMEOUT"].Default != "90s" || byName["B_TIMEOUT"].Default != "60s" || byName["JOBS"].Default != "ctr" {
		t.Errorf("defaults: %+v", vars)
	}
	var parsed outer
	if err := config.Parse(&parsed, nil); err != nil {
		t.Fatal(err)
	}
	if parsed.A.Timeout != byName["A_TIMEOUT"].Default || parsed.B.Timeout != byName["B_TIMEOUT"].Default {
		t.Errorf("help says A_TIMEOUT %s and B_TIMEOUT %s, the parser gives %s and %s",
			byName["A_TIMEOUT"].Default, byName["B_TIMEOUT"].Default, parsed.A.Timeout, parsed.B.Timeout)
	}
	if !byName["B_PASSWORD"].Secret || byName["B_URL"].Secret {
		t.Errorf("secrets: %+v", vars)
	}
	var b bytes.Buffer
	app.PrintVars(&b, vars)
	if !strings.Contains(b.String(), "A_PASSWORD") || !strings.Contains(b.String(), "(secret)") {
		t.Errorf("PrintVars:\n%s", b.String())
	}
}

// TestHelpShowsOnlyTheCommandsFlagsAndVariables.
func TestHelpShowsOnlyTheCommandsFlagsAndVariables(t *testing.T) {
	t.Parallel()
	cmd := app.Command{Name: "x", Summary: "does x", Usage: "x", Config: func() []any { return []any{&outer{}} },
		Run: func(context.Context, *app.Env) error { return nil }}
	var out, errb bytes.Buffer
	if code := app.Execute(cmd, []string{"-h"}, []string{}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	h := errb.String()
	for _, want := range []string{"-verbosity", "-loglocation", "-config", "A_URL", "B_TIMEOUT", "JOBS", "LEVEL"} {
		if !strings.Contains(h, want) {
			t.Errorf("help lacks %q:\n%s", want, h)
		}
	}
	for _, not := range []string{"-once", "-historical", "-hist", "-name", "-ds"} {
		if strings.Contains(h, not+" ") || strings.Contains(h, not+"\n") {
			t.Errorf("help lists %q, which x does not take:\n%s", not, h)
		}
	}
}

// TestConfigErrorsOnceEach: the same problem found by two configurations
// (two jobs reading THREATQ_) is reported once.
func TestConfigErrorsOnceEach(t *testing.T) {
	t.Parallel()
	a := errors.Join(errors.New("threatq: THREATQ_URL is required"), errors.New("ctr: CTR_CLIENT_ID is not set"))
	b := errors.Join(errors.New("threatq: THREATQ_URL is required"))
	err := app.JoinUsage(app.UsageError{Err: a}, app.UsageError{Err: b})
	if n := strings.Count(err.Error(), "THREATQ_URL"); n != 1 {
		t.Errorf("THREATQ_URL reported %d times:\n%s", n, err)
	}
	if !strings.Contains(err.Error(), "CTR_CLIENT_ID") {
		t.Errorf("lost a problem:\n%s", err)
	}
}

// TestRunErrorsExitStatus: bad input a command's Run finds, a UsageError
// or a *config.Error a service returned (wrapped or not), exits with the
// usage status and its problems one a line, without the wrapping; any
// other error exits 1.
func TestRunErrorsExitStatus(t *testing.T) {
	t.Parallel()
	problems := errors.Join(errors.New(`ET_RETIRED_STATUS "Retired": not a status`), errors.New("ThreatQ has no Snort signature type"))
	tests := []struct {
		name     string
		err      error
		wantExit int
		wantOut  string
	}{
		{name: "usage error", err: app.UsageError{Err: problems}, wantExit: app.ExitUsage,
			wantOut: "tqflow x: configuration:\n  - ET_RETIRED_STATUS \"Retired\": not a status\n  - ThreatQ has no Snort signature type\n"},
		{name: "config error, wrapped", err: fmt.Errorf("signature-loader: %w", &config.Error{Err: problems}), wantExit: app.ExitUsage,
			wantOut: "tqflow x: configuration:\n  - ET_RETIRED_STATUS \"Retired\": not a status\n  - ThreatQ has no Snort signature type\n"},
		{name: "other error", err: fmt.Errorf("signature-loader: %w", problems), wantExit: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := app.Command{Name: "x", Run: func(context.Context, *app.Env) error { return tt.err }}
			var out, errb bytes.Buffer
			if code := app.Execute(cmd, []string{"-ll", t.TempDir()}, []string{}, &out, &errb); code != tt.wantExit {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantExit, errb.String())
			}
			if tt.wantOut != "" && errb.String() != tt.wantOut {
				t.Errorf("stderr:\n%s\nwant:\n%s", errb.String(), tt.wantOut)
			}
		})
	}
}
