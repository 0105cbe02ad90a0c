package bus_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
)

// workerService is a service configuration as the workers declare theirs.
type workerService struct {
	Other            string `env:"OTHER" envDefault:"x"`
	bus.WorkerConfig `envPrefix:"SVC_" envDefaults:"CONCURRENCY=2,BATCH_SIZE=250,MAX_ACK_PENDING=2000,MAX_DELIVER=10,DRAIN_TIMEOUT=20s"`
}

func (c workerService) Validate() error { return c.WorkerConfig.Validate("SVC_", 500) }

func defaultWorker() bus.WorkerConfig {
	return bus.WorkerConfig{Concurrency: 2, BatchSize: 250, MaxAckPending: 2000, MaxDeliver: 10, DrainTimeout: 20 * time.Second}
}

func TestWorkerConfigParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		vars     map[string]string
		want     bus.WorkerConfig
		wantErrs []string
	}{
		{name: "unset keeps the service's defaults", want: defaultWorker()},
		{
			name: "empty keeps the service's defaults",
			vars: map[string]string{"SVC_CONCURRENCY": "", "SVC_DRAIN_TIMEOUT": ""},
			want: defaultWorker(),
		},
		{
			name: "variables under the prefix",
			vars: map[string]string{
				"SVC_CONCURRENCY": "3", "SVC_BATCH_SIZE": "40", "SVC_MAX_ACK_PENDING": "50",
				"SVC_MAX_DELIVER": "6", "SVC_DRAIN_TIMEOUT": "7s", "CONCURRENCY": "9",
			},
			want: bus.WorkerConfig{Concurrency: 3, BatchSize: 40, MaxAckPending: 50, MaxDeliver: 6, DrainTimeout: 7 * time.Second},
		},
		{
			name: "every problem named with the prefix",
			vars: map[string]string{"SVC_CONCURRENCY": "65", "SVC_BATCH_SIZE": "501", "SVC_MAX_ACK_PENDING": "500", "SVC_MAX_DELIVER": "0"},
			wantErrs: []string{
				"SVC_CONCURRENCY 65: want 1 to 64", "SVC_BATCH_SIZE 501: want 1 to 500",
				"SVC_MAX_ACK_PENDING 500: want at least SVC_BATCH_SIZE", "SVC_MAX_DELIVER 0: want at least 1",
			},
		},
		{
			name:     "zero concurrency and batch size",
			vars:     map[string]string{"SVC_CONCURRENCY": "0", "SVC_BATCH_SIZE": "0"},
			wantErrs: []string{"SVC_CONCURRENCY 0: want 1 to 64", "SVC_BATCH_SIZE 0: want 1 to 500"},
		},
		{
			name:     "not a number",
			vars:     map[string]string{"SVC_MAX_DELIVER": "ten"},
			wantErrs: []string{`SVC_MAX_DELIVER="ten": not a valid int`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c workerService
			err := config.Parse(&c, tt.vars)
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if c.WorkerConfig != tt.want || c.Other != "x" {
					t.Fatalf("got %+v, want %+v", c, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErrs)
			}
			for _, w := range tt.wantErrs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestWorkerConfigSpecAndOptions(t *testing.T) {
	t.Parallel()
	w := bus.WorkerConfig{Concurrency: 3, BatchSize: 40, MaxAckPending: 50, MaxDeliver: 6, DrainTimeout: 7 * time.Second}
	spec := w.Spec(bus.ConsumerSpec{Stream: bus.StreamWrites, Name: "w", AckWait: time.Minute})
	if spec.Stream != bus.StreamWrites || spec.Name != "w" || spec.AckWait != time.Minute || spec.MaxDeliver != 6 || spec.MaxAckPending != 50 {
		t.Errorf("spec %+v", spec)
	}
	o := w.Options(bus.RunOptions{BatchWait: time.Second, DoubleAck: true})
	if o.Concurrency != 3 || o.BatchSize != 40 || o.DrainTimeout != 7*time.Second || o.BatchWait != time.Second || !o.DoubleAck {
		t.Errorf("options %+v", o)
	}
}
