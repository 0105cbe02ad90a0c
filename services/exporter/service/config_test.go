package service_test

import (
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/services/exporter/service"
)

// TestWorkerDefaults: the consumer settings' defaults, from the tags
// alone, are the documented ones.
func TestWorkerDefaults(t *testing.T) {
	t.Parallel()
	var c service.Config
	if err := config.Parse(&c, map[string]string{"MISP_URL": "https://misp.example", "MISP_KEY": "0123456789abcdef0123456789abcdef01234567"}); err != nil {
		t.Fatal(err)
	}
	want := bus.WorkerConfig{Concurrency: 4, BatchSize: 1000, MaxAckPending: 10_000, MaxDeliver: 20, DrainTimeout: 20 * time.Second}
	if c.WorkerConfig != want {
		t.Errorf("worker settings %+v, want %+v", c.WorkerConfig, want)
	}
}
