package service_test

import (
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/services/writer/service"
)

// TestWorkerDefaults: the consumer settings' defaults, from the tags
// alone, are the documented ones.
func TestWorkerDefaults(t *testing.T) {
	t.Parallel()
	var c service.Config
	if err := config.Parse(&c, map[string]string{"THREATQ_URL": "https://threatq.example", "THREATQ_CLIENT_ID": "id", "THREATQ_CLIENT_SECRET": "secret"}); err != nil {
		t.Fatal(err)
	}
	want := bus.WorkerConfig{Concurrency: 2, BatchSize: 250, MaxAckPending: 2000, MaxDeliver: 10, DrainTimeout: 20 * time.Second}
	if c.WorkerConfig != want {
		t.Errorf("worker settings %+v, want %+v", c.WorkerConfig, want)
	}
}
