package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/config"
)

type testCfg struct {
	URL      string        `env:"THREATQ_URL"`
	Password config.Secret `env:"THREATQ_PASSWORD"`
	Batch    int           `env:"BATCH" envDefault:"10"`
}

func (c testCfg) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("THREATQ_URL is required"))
	}
	if c.Password == "" {
		errs = append(errs, errors.New("THREATQ_PASSWORD is required"))
	}
	return errors.Join(errs...)
}

func TestLookupPrecedenceAndSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "pw")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(dir, "tqflow.env")
	content := "# comment\nexport THREATQ_URL=https://file.example\nBATCH=\"20\"\nOTHER='x y'\n\n"
	if err := os.WriteFile(envFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	vars, err := config.Source{
		Environ: []string{"BATCH=30", "THREATQ_PASSWORD_FILE=" + secret},
		EnvFile: envFile,
	}.Lookup()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"THREATQ_URL": "https://file.example", "BATCH": "30", "OTHER": "x y"}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s = %q, want %q", k, vars[k], v)
		}
	}
	var cfg testCfg
	if err := config.Parse(&cfg, vars); err != nil {
		t.Fatal(err)
	}
	if cfg.Batch != 30 || cfg.Password.Reveal() != "s3cret" {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	var cfg testCfg
	err := config.Parse(&cfg, map[string]string{"BATCH": "many"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"BATCH", "THREATQ_URL is required", "THREATQ_PASSWORD is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestEnvFileErrorsNameTheLine(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "bad.env")
	if err := os.WriteFile(p, []byte("GOOD=1\nno equals sign\nQ=\"unterminated\\\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.ReadEnvFile(p)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s:2", p)) {
		t.Errorf("err = %v, want it to name line 2", err)
	}
	// A declared secret whose file is missing is an error naming it; an
	// undeclared *_FILE variable (TF_CLI_CONFIG_FILE, say) is not ours.
	err = config.Parse(&testCfg{}, map[string]string{
		"THREATQ_URL": "https://x", "THREATQ_PASSWORD_FILE": "/nonexistent/secret", "TF_CLI_CONFIG_FILE": "/nonexistent/tf",
	})
	if err == nil || !strings.Contains(err.Error(), "THREATQ_PASSWORD_FILE") || strings.Contains(err.Error(), "TF_CLI") {
		t.Errorf("err = %v, want only THREATQ_PASSWORD_FILE named", err)
	}
}
