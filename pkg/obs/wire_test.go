package obs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/obs"
)

// TestWire: a worker started on a wired bus has its handler timed and its
// consumer's gauges set as soon as it consumes (the poll interval here is
// an hour, so only the start-up poll can set them); a watched consumer is
// part of readiness, and has zero dead-letter series; a worker on a bus
// the wiring was not given is not timed; one bus given twice times once.
func TestWire(t *testing.T) {
	t.Parallel()
	srvNATS := bustest.Server(t)
	b, other := bustest.Connect(t, srvNATS), bustest.Connect(t, srvNATS)
	m := obs.New("test")
	srv, err := obs.NewServer(obs.Config{}, m, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := obs.Wire(ctx, m, srv, time.Hour, b, b)
	spec := bus.ConsumerSpec{Stream: bus.StreamWrites, Name: "writer", Subjects: []string{"tq.writes.>"}}
	w.Watch(spec, spec)
	if err := srv.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "consumer writer") {
		t.Errorf("ready before the consumer exists: %v, want the writer's consumer named", err)
	}
	eventually(t, m, `tqflow_dead_letters_total{consumer="writer",reason="permanent",service="test"} 0`,
		`tqflow_dead_letters_total{consumer="writer",reason="max_deliver",service="test"} 0`)

	handled := make(chan struct{}, 2)
	run := func(b *bus.Bus, spec bus.ConsumerSpec) {
		go func() {
			_ = b.Run(ctx, spec, func(context.Context, *bus.Message) error {
				handled <- struct{}{}
				return nil
			}, bus.RunOptions{})
		}()
	}
	run(b, spec)
	eventually(t, m, `tqflow_consumer_pending_messages{consumer="writer",service="test",stream="WRITES"} 0`)
	if err := srv.Ready(t.Context()); err != nil {
		t.Errorf("not ready with the consumer consuming: %v", err)
	}
	// Another worker on a connection the wiring does not know.
	unwired := bus.ConsumerSpec{Stream: bus.StreamWrites, Name: "unwired", Subjects: []string{"tq.writes.>"}}
	run(other, unwired)
	if err := b.Publish(t.Context(), bus.Outgoing{Subject: "tq.writes.indicator", ID: "w1", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-handled:
		case <-time.After(10 * time.Second):
			t.Fatal("message not handled within 10s")
		}
	}
	eventually(t, m, `tqflow_handler_duration_seconds_count{consumer="writer",service="test"} 1`)
	if page := scrape(t, m); strings.Contains(page, `consumer="unwired"`) {
		t.Errorf("a worker on a bus not wired was timed:\n%s", grep(page, "handler_duration"))
	}
}
