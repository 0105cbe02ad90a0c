package obs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/logging"
)

// Wiring feeds a process's metrics and readiness from its workers: it is
// the one wiring both shapes share, the separate services (through
// pkg/app's Serve and Service.Watch) and tqflow run (through its
// pipeline). Its methods are safe for concurrent use.
type Wiring struct {
	ctx      context.Context
	m        *Metrics
	srv      *Server
	b        *bus.Bus // the consumers are polled on it
	interval time.Duration
	kick     chan struct{}

	mu      sync.Mutex
	refs    []ConsumerRef
	watched map[ConsumerRef]bool
}

// Wire has every handler the runners on buses call from now on timed on
// m (tqflow_handler_duration_seconds, by consumer) and starts polling the
// consumers later given to [Wiring.Watch] every interval
// ([PollInterval] when <= 0), on the first bus, until ctx ends. A consumer
// is also polled as soon as a runner on one of buses starts consuming it,
// so that its lag shows before the first interval ends.
func Wire(ctx context.Context, m *Metrics, srv *Server, interval time.Duration, buses ...*bus.Bus) *Wiring {
	if interval <= 0 {
		interval = PollInterval
	}
	w := &Wiring{ctx: ctx, m: m, srv: srv, interval: interval, kick: make(chan struct{}, 1), watched: map[ConsumerRef]bool{}}
	seen := map[*bus.Bus]bool{}
	for _, b := range buses {
		if b == nil || seen[b] {
			continue // One connection shared by several services is timed once.
		}
		seen[b] = true
		if w.b == nil {
			w.b = b
		}
		b.Use(func(spec bus.ConsumerSpec, h bus.BatchHandler) bus.BatchHandler { return m.TimeBatch(spec.Name, h) })
		stop := b.NotifyConsuming(func(bus.ConsumerSpec) {
			select {
			case w.kick <- struct{}{}:
			default:
			}
		})
		context.AfterFunc(ctx, stop)
	}
	if w.b != nil {
		go w.poll()
	}
	return w
}

// Watch makes each consumer part of readiness (/readyz fails while it
// does not exist) and of the consumer gauges (pending, ack pending,
// redelivered), and gives its dead-letter counters their zero series, so
// that the dashboard shows a consumer that never dead-lettered as 0. A
// consumer already watched is skipped.
func (w *Wiring) Watch(specs ...bus.ConsumerSpec) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, spec := range specs {
		ref := ConsumerRef{Stream: spec.Stream, Consumer: spec.Name}
		if w.watched[ref] {
			continue
		}
		w.watched[ref] = true
		w.refs = append(w.refs, ref)
		if w.b != nil {
			w.srv.AddCheck("consumer "+spec.Name, ConsumerCheck(w.b.JetStream(), spec.Stream, spec.Name))
		}
		for _, reason := range []string{bus.ReasonPermanent, bus.ReasonMaxDeliver} {
			w.m.deadLetters.WithLabelValues(spec.Name, reason)
		}
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// AddCheck makes check part of readiness: /readyz fails, naming name and
// the check's error, while it fails.
func (w *Wiring) AddCheck(name string, check Check) { w.srv.AddCheck(name, check) }

// OnSuccess is the fetcher's success hook: it records a job instance's
// last successful run ([Metrics.RunDone]).
func (w *Wiring) OnSuccess(job, instance string, at time.Time) { w.m.RunDone(job, instance, at) }

// LoadRuns starts the last-success gauges from the fetcher's checkpoint
// bucket ([Metrics.LoadRuns]), so that a restarted process reports the
// runs before it started. Only the indicator jobs keep checkpoints there:
// the et job's gauge starts with its first run.
func (w *Wiring) LoadRuns(ctx context.Context) error {
	if w.b == nil {
		return errors.New("load last runs: no bus wired")
	}
	kv, err := w.b.KeyValue(ctx, bus.BucketCheckpoints)
	if err != nil {
		return fmt.Errorf("load last runs: %w", err)
	}
	return w.m.LoadRuns(ctx, kv)
}

// poll polls the watched consumers now, every interval and on every kick,
// until the context ends.
func (w *Wiring) poll() {
	log := logging.FromContext(w.ctx)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.mu.Lock()
		refs := append([]ConsumerRef(nil), w.refs...)
		w.mu.Unlock()
		for _, ref := range refs {
			if err := w.m.pollConsumer(w.ctx, w.b.JetStream(), ref); err != nil && w.ctx.Err() == nil {
				log.Debug("poll consumer", "stream", ref.Stream, "consumer", ref.Consumer, "err", err)
			}
		}
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
	}
}
