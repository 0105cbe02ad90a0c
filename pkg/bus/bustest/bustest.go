// Package bustest starts embedded JetStream servers for tests: no docker,
// no network, a fresh store per test.
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
)

// Server starts an embedded server with its store in a test temporary
// directory, reachable in-process only, and shuts it down at cleanup.
func Server(t testing.TB) *bus.Embedded {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(), ServerName: "test"}, nil)
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// Connect returns a Bus on srv with tqflow's topology in place (duplicate
// window 2 minutes, age 1 hour), closed at cleanup.
func Connect(t testing.TB, srv *bus.Embedded) *bus.Bus {
	t.Helper()
	nc, err := srv.Connect(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.New(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo := bus.NewTopology(bus.Config{Replicas: 1, MaxAge: time.Hour, Duplicates: 2 * time.Minute, MaxBytes: -1})
	if err := topo.Ensure(ctx, b.JetStream()); err != nil {
		t.Fatal(err)
	}
	return b
}

// New is Server then Connect.
func New(t testing.TB) *bus.Bus {
	t.Helper()
	return Connect(t, Server(t))
}

// Stored returns the messages stream holds on subject, in stream order,
// read with an ordered consumer: as many as the stream counts on subject
// when called. It fails the test if they cannot all be read.
func Stored(t testing.TB, b *bus.Bus, stream, subject string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := b.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatalf("read stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatalf("read stream %s: %v", stream, err)
	}
	n := 0
	for _, k := range info.State.Subjects {
		n += int(k)
	}
	if n == 0 {
		return nil
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatalf("read %s from %s: %v", subject, stream, err)
	}
	out := make([]jetstream.Msg, 0, n)
	for len(out) < n {
		batch, err := c.Fetch(min(n-len(out), 5000), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("read %s from %s: %v", subject, stream, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			out = append(out, m)
		}
		if got == 0 {
			t.Fatalf("read %s from %s: %d of %d messages (%v)", subject, stream, len(out), n, batch.Error())
		}
	}
	return out
}
