package export_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/services/exporter/internal/export"
)

// TestPublishWaitsForQuiet: an event is published only once it has had no
// new attributes for the quiet time, once, and again only after it got
// more (each later attribute unpublishes it in MISP).
func TestPublishWaitsForQuiet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim := mispsim.New(mispsim.Options{Seed: 3, Keys: []string{testKey}})
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(hs.Close)
	client, err := misp.New(misp.Config{URL: hs.URL, Key: config.Secret(testKey), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := bustest.New(t).KeyValue(ctx, bus.BucketMISPDays)
	if err != nil {
		t.Fatal(err)
	}
	stats := &export.Stats{}
	clock := testkit.NewClock(time.Now())
	ex, err := export.New(client, kv, export.Settings{Instance: "t", Now: clock.Now}, stats, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	publishes := func() int64 { return sim.Stats.Count("POST /events/publish/{id}") }
	ex.Handle(ctx, []*bus.Message{message(t, 1, "192.0.2.1")})
	if err := ex.Publish(ctx, time.Hour); err != nil || publishes() != 0 {
		t.Fatalf("published before the quiet time: %d, %v", publishes(), err)
	}
	clock.Advance(30 * time.Millisecond)
	if err := ex.Publish(ctx, 20*time.Millisecond); err != nil || publishes() != 1 || !sim.Events()[0].Published {
		t.Fatalf("after the quiet time: %d publishes, %v", publishes(), err)
	}
	if err := ex.Publish(ctx, 0); err != nil || publishes() != 1 {
		t.Fatalf("published again with nothing new: %d, %v", publishes(), err)
	}
	ex.Handle(ctx, []*bus.Message{message(t, 2, "192.0.2.2")})
	if sim.Events()[0].Published {
		t.Fatal("adding an attribute left the event published")
	}
	if err := ex.Publish(ctx, 0); err != nil || publishes() != 2 || stats.Published.Load() != 2 {
		t.Fatalf("after more attributes: %d publishes, %v", publishes(), err)
	}
}
