package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
)

// A worker whose connection dies (a crash, as far as the server can tell)
// must not hang its runner: Run returns once its context ends, and the
// messages it held are redelivered to a worker on another connection.
func TestRunSurvivesConnectionLoss(t *testing.T) {
	t.Parallel()
	srv := bustest.Server(t)
	pub := bustest.Connect(t, srv)
	publishN(t, pub, 20)
	crashing := bustest.Connect(t, srv)
	s := spec("crash")
	s.AckWait = time.Second
	started := make(chan struct{}, 20)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- crashing.Run(ctx, s, func(hctx context.Context, _ *bus.Message) error {
			started <- struct{}{}
			<-hctx.Done()
			return hctx.Err()
		}, bus.RunOptions{Concurrency: 4, DrainTimeout: 500 * time.Millisecond})
	}()
	<-started
	crashing.Conn().Close() // No drain: the server just loses the client.
	cancel()
	select {
	case <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its connection was lost")
	}
	var n atomic.Int64
	runUntil(t, bustest.Connect(t, srv), s, func(context.Context, *bus.Message) error {
		n.Add(1)
		return nil
	}, bus.RunOptions{}, func() bool { return n.Load() >= 20 })
}
