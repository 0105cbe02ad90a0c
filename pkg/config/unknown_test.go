package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/config"
)

type mispCfg struct {
	URL            string        `env:"URL"`
	Key            config.Secret `env:"KEY"`
	ScoreThreshold int           `env:"SCORE_THRESHOLD"`
}

type svcCfg struct {
	MISP mispCfg `envPrefix:"MISP_"`
	Jobs string  `env:"JOBS"`
}

func TestKnownCheck(t *testing.T) {
	t.Parallel()
	k, err := config.NewKnown([]string{"MISP_", "NATS_"}, []string{"NATS_URL"}, &svcCfg{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		vars  map[string]string
		wants []string // substrings, one per problem; none: no error
	}{
		{"all known", map[string]string{"MISP_URL": "x", "MISP_SCORE_THRESHOLD": "8", "JOBS": "misp", "NATS_URL": ""}, nil},
		{"not ours", map[string]string{"PATH": "/bin", "HOME": "/root", "MISPLACED": "x", "KUBERNETES_PORT": "1"}, nil},
		{"secret file", map[string]string{"MISP_KEY_FILE": "/run/secrets/k"}, nil},
		{"the issue's typo", map[string]string{"MISP_SCORE_TRESHOLD": "8"}, []string{"MISP_SCORE_TRESHOLD: unknown variable; did you mean MISP_SCORE_THRESHOLD?"}},
		{"transposition", map[string]string{"MISP_KYE": "x"}, []string{"did you mean MISP_KEY?"}},
		{"nothing near", map[string]string{"NATS_SOMETHING_ELSE_ENTIRELY": "x"}, []string{"NATS_SOMETHING_ELSE_ENTIRELY: unknown variable to tqflow"}},
		{"several at once, sorted", map[string]string{"MISP_UR": "x", "MISP_KEYS": "y"}, []string{"MISP_KEYS: unknown variable; did you mean MISP_KEY?", "MISP_UR: unknown variable; did you mean MISP_URL?"}},
		{"unknown file of an unknown name", map[string]string{"MISP_KY_FILE": "/x"}, []string{"MISP_KY_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := k.Check(tt.vars)
			if len(tt.wants) == 0 {
				if err != nil {
					t.Errorf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, config.ErrUnknownVariable) {
				t.Fatalf("Check = %v, want ErrUnknownVariable", err)
			}
			msg := err.Error()
			for _, w := range tt.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("Check = %q, want %q in it", msg, w)
				}
			}
			if got := strings.Count(msg, "\n") + 1; got != len(tt.wants) {
				t.Errorf("%d problems reported, want %d: %q", got, len(tt.wants), msg)
			}
		})
	}
}
