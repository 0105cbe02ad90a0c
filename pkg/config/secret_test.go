package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/config"
)

func TestSecretNeverShows(t *testing.T) {
	t.Parallel()
	const value = "hunter2-very-secret"
	s := config.Secret(value)
	type cfg struct {
		User     string
		Password config.Secret
	}
	c := cfg{"alice", s}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cfg", "password", s, "cfg", c)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v":   fmt.Sprintf("%v", c),
		"%+v":  fmt.Sprintf("%+v", c),
		"%#v":  fmt.Sprintf("%#v", c),
		"%s":   fmt.Sprintf("%s", s),
		"json": string(js),
		"slog": logged.String(),
	} {
		if strings.Contains(out, value) {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if !strings.Contains(out, "[REDACTED]") {
			t.Errorf("%s does not say the value is redacted: %s", name, out)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal = %q", s.Reveal())
	}
	if config.Secret("").String() != "" {
		t.Error("an empty secret must print empty, so that 'not set' shows")
	}
}

func TestSecretsOf(t *testing.T) {
	t.Parallel()
	type inner struct {
		Key  config.Secret
		Name string
	}
	cfg := struct {
		Password config.Secret
		Empty    config.Secret
		Nested   inner
		Ptr      *inner
		List     []config.Secret
		hidden   config.Secret
	}{Password: "pw-1", Nested: inner{Key: "key-2", Name: "not secret"}, Ptr: &inner{Key: "key-3"}, List: []config.Secret{"l-4"}, hidden: "x"}
	_ = cfg.hidden
	got := config.SecretsOf(&cfg)
	want := []string{"pw-1", "key-2", "key-3", "l-4"}
	if !slices.Equal(got, want) {
		t.Errorf("SecretsOf = %q, want %q", got, want)
	}
}

type warner struct{ W string }

func (w warner) Warn() string { return w.W }

func TestFind(t *testing.T) {
	t.Parallel()
	cfg := struct {
		A warner
		B struct{ C warner }
		D *warner
		E *warner
	}{A: warner{"a"}, D: &warner{"d"}}
	cfg.B.C = warner{"c"}
	var got []string
	for _, w := range config.Find[interface{ Warn() string }](&cfg) {
		got = append(got, w.Warn())
	}
	if !slices.Equal(got, []string{"a", "c", "d"}) {
		t.Errorf("Find = %q", got)
	}
}
