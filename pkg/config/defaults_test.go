package config_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
)

// shared is a configuration several services nest, with no defaults of
// its own but one.
type shared struct {
	Workers int           `env:"WORKERS"`
	Drain   time.Duration `env:"DRAIN"`
	Mode    string        `env:"MODE" envDefault:"fast"`
}

type wrapped struct {
	Shared shared `envPrefix:"IN_" envDefaults:"WORKERS=3"`
}

type service struct {
	Name string  `env:"NAME" envDefault:"svc"`
	A    shared  `envPrefix:"A_" envDefaults:"WORKERS=8,DRAIN=20s"`
	B    shared  `envPrefix:"B_" envDefaults:"WORKERS=2, MODE=slow"`
	W    wrapped `envPrefix:"W_" envDefaults:"IN_WORKERS=5"`
}

func TestDefaultsTag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		vars map[string]string
		want service
	}{
		{
			name: "unset: each nesting's defaults, the outermost winning",
			want: service{Name: "svc",
				A: shared{Workers: 8, Drain: 20 * time.Second, Mode: "fast"},
				B: shared{Workers: 2, Mode: "slow"},
				W: wrapped{Shared: shared{Workers: 5, Mode: "fast"}}},
		},
		{
			name: "set, or set empty",
			vars: map[string]string{"A_WORKERS": "4", "B_MODE": "", "W_IN_WORKERS": "6", "WORKERS": "9"},
			want: service{Name: "svc",
				A: shared{Workers: 4, Drain: 20 * time.Second, Mode: "fast"},
				B: shared{Workers: 2, Mode: "slow"},
				W: wrapped{Shared: shared{Workers: 6, Mode: "fast"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got service
			if err := config.Parse(&got, tt.vars); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parsed %+v\nwant   %+v", got, tt.want)
			}
		})
	}
	d, err := config.Defaults(&service{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A_WORKERS": "8", "A_DRAIN": "20s", "B_WORKERS": "2", "B_MODE": "slow", "W_IN_WORKERS": "5"}
	if !maps.Equal(d, want) {
		t.Errorf("Defaults = %v, want %v", d, want)
	}
}

func TestDefaultsTagMistakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  any
		want string
	}{
		{"unknown key", &struct {
			S shared `envPrefix:"S_" envDefaults:"WORKER=2"`
		}{}, "WORKER is not one of its variables"},
		{"no value", &struct {
			S shared `envPrefix:"S_" envDefaults:"WORKERS"`
		}{}, `entry "WORKERS": want KEY=VALUE`},
		{"not a struct", &struct {
			N int `env:"N" envDefaults:"X=1"`
		}{}, "not a struct"},
		{"skipped field", &struct {
			S shared `env:"-" envDefaults:"WORKERS=1"`
		}{}, "a field the parser skips"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Defaults(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Defaults: %v, want an error saying %q", err, tt.want)
			}
			if err := config.Parse(tt.cfg, nil); err == nil {
				t.Error("Parse took a configuration whose defaults are wrong")
			}
		})
	}
}
