package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
)

// TestUseWrapsEveryRunner: middleware given to Use wraps the handler of a
// runner started afterwards, outermost last, sees the runner's consumer,
// and what it returns decides the outcome (an error from the middleware
// is the handler's error).
func TestUseWrapsEveryRunner(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 5)
	var order []string
	var calls, settled, retried atomic.Int64
	mw := func(name string) bus.Middleware {
		return func(spec bus.ConsumerSpec, h bus.BatchHandler) bus.BatchHandler {
			order = append(order, name+":"+spec.Name)
			return func(ctx context.Context, ms []*bus.Message) []error {
				calls.Add(1)
				errs := h(ctx, ms)
				if name == "outer" && errs == nil {
					errs = make([]error, len(ms))
				}
				if name == "outer" {
					for i, m := range ms {
						if string(m.Data) == "2" && m.Delivered == 1 {
							errs[i] = errors.New("middleware says again")
						}
					}
				}
				return errs
			}
		}
	}
	b.Use(mw("inner"))
	b.Use(mw("outer"))
	runUntil(t, b, spec("mw"), func(context.Context, *bus.Message) error { return nil },
		bus.RunOptions{Backoff: func(uint64) time.Duration { return time.Millisecond }, OnSettle: func(st bus.Settlement) {
			if st.Outcome == bus.Retried {
				retried.Add(1)
			} else {
				settled.Add(1)
			}
		}}, func() bool { return settled.Load() == 5 })
	if len(order) != 2 || order[0] != "inner:mw" || order[1] != "outer:mw" {
		t.Errorf("middleware applied as %v, want [inner:mw outer:mw]", order)
	}
	if retried.Load() != 1 {
		t.Errorf("%d retries, want 1: the middleware's error decides the outcome", retried.Load())
	}
	if calls.Load() < 12 {
		t.Errorf("middleware called %d times, want both around each of 6 deliveries", calls.Load())
	}
}
