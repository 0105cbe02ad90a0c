// Package bustest starts embedded JetStream servers for tests: no docker,
// no network, a fresh store per test.
package bustest

import (
	"context"
	"testing"
	"time"

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
