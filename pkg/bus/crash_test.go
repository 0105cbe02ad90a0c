package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/testkit"
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

// A worker that dies on a message's last allowed delivery leaves it with
// no outcome, and the server never delivers it again: the runners still
// running dead-letter it from the server's max-deliveries advisory, so
// that it is neither lost nor stuck (issue 13).
func TestRunDeadLettersCrashOnLastDelivery(t *testing.T) {
	t.Parallel()
	srv := bustest.Server(t)
	pub := bustest.Connect(t, srv)
	publishN(t, pub, 1)
	s := spec("lastcrash")
	s.AckWait, s.MaxDeliver = time.Second, 1
	crashing := bustest.Connect(t, srv)
	started := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- crashing.Run(ctx, s, func(hctx context.Context, _ *bus.Message) error {
			started <- struct{}{}
			<-hctx.Done()
			return hctx.Err()
		}, bus.RunOptions{DrainTimeout: 200 * time.Millisecond})
	}()
	<-started
	// The survivor consumes too: it gets no delivery (there is none left),
	// only the advisory.
	survivor := bustest.Connect(t, srv)
	var handled, dead atomic.Int64
	var reason atomic.Value // string: the dead-lettered settlement's reason.
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	go func() {
		_ = survivor.Run(sctx, s, func(context.Context, *bus.Message) error {
			handled.Add(1)
			return nil
		}, bus.RunOptions{OnSettle: func(st bus.Settlement) {
			if st.Outcome == bus.DeadLettered {
				reason.Store(st.Reason)
				dead.Add(1)
			}
		}})
	}()
	// The survivor has subscribed once the server counts two listeners to
	// the advisory (the crashing runner's and its own).
	advisory := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + s.Stream + "." + s.Name
	testkit.Eventually(t, func() bool { return srv.Server().GlobalAccount().Interest(advisory) >= 2 }, 10*time.Second, "the survivor's advisory subscription")
	crashing.Conn().Close() // The crash, on delivery 1 of 1.
	cancel()
	<-errc
	testkit.Wait(func() bool { return dead.Load() > 0 }, 15*time.Second) // checked below
	dls := deadLetters(t, pub, "lastcrash")
	if len(dls) != 1 || dls[0].Reason != bus.ReasonMaxDeliver || string(dls[0].Data) != "0" || dls[0].Error != bus.ErrNoOutcome.Error() {
		t.Fatalf("dead letters = %+v, want message 0 as max_deliver with no outcome", dls)
	}
	if r, _ := reason.Load().(string); dead.Load() != 1 || r != bus.ReasonMaxDeliver {
		t.Errorf("the survivor settled %d dead letters with reason %q, want one, %s", dead.Load(), r, bus.ReasonMaxDeliver)
	}
	if handled.Load() != 0 {
		t.Errorf("the survivor handled %d messages, want 0 (no delivery was left)", handled.Load())
	}
}
