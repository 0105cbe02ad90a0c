package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/logging"
)

// Handler processes one message. See the package documentation for what
// its error decides.
type Handler func(ctx context.Context, m *Message) error

// BatchHandler processes messages together (one API call for many). It
// returns one error per message, in order: a nil slice means all
// succeeded; a shorter slice is a bug and fails the missing ones.
type BatchHandler func(ctx context.Context, ms []*Message) []error

// Run consumes spec's messages with h until ctx ends, then drains. It
// creates or updates the consumer first. It returns nil after a clean
// shutdown.
func (b *Bus) Run(ctx context.Context, spec ConsumerSpec, h Handler, o RunOptions) error {
	o.BatchSize = 1
	return b.RunBatch(ctx, spec, func(ctx context.Context, ms []*Message) []error {
		errs := make([]error, len(ms))
		for i, m := range ms {
			errs[i] = h(ctx, m)
		}
		return errs
	}, o)
}

// RunBatch is [Bus.Run] for a handler that takes messages in batches.
func (b *Bus) RunBatch(ctx context.Context, spec ConsumerSpec, h BatchHandler, o RunOptions) error {
	spec = spec.withDefaults()
	o = o.withDefaults(spec)
	if o.Logger == nil {
		o.Logger = logging.FromContext(ctx)
	}
	log := o.Logger.With("stream", spec.Stream, "consumer", spec.Name)
	cons, err := b.js.CreateOrUpdateConsumer(ctx, spec.Stream, spec.Config())
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", spec.Name, spec.Stream, err)
	}
	r := &runner{bus: b, spec: spec, opts: o, log: log, handler: b.wrap(spec, h), msgs: make(chan jetstream.Msg, o.Concurrency*o.BatchSize), stopped: make(chan struct{})}
	// Handlers get a context that outlives ctx by the drain timeout, so that
	// shutting down lets in-flight API calls finish.
	hctx, hcancel := context.WithCancel(logging.WithLogger(context.WithoutCancel(ctx), log))
	defer hcancel()
	unwatch, err := r.watchMaxDeliveries(hctx)
	if err != nil {
		return err
	}
	defer unwatch()
	stopped := make(chan struct{})
	var stopOnce sync.Once
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case r.msgs <- m:
		case <-r.stopped:
			// A message delivered after the consumer closed (the client
			// can still hand one over when its connection died): left
			// unacknowledged, it is redelivered.
		}
	},
		jetstream.PullMaxMessages(o.PullMaxMessages),
		jetstream.PullExpiry(10*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			switch {
			case errors.Is(err, jetstream.ErrNoHeartbeat):
				log.Debug("pull heartbeat missed; pulling again", "err", err)
			case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
				log.Error("consumer gone", "err", err)
				stopOnce.Do(func() { close(stopped) })
			default:
				log.Warn("consume error", "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", spec.Name, err)
	}
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() { r.work(hctx) })
	}
	b.notifyConsuming(spec)
	log.Debug("consuming", "concurrency", o.Concurrency, "batch_size", o.BatchSize)
	var runErr error
	select {
	case <-ctx.Done():
	case <-stopped:
		runErr = fmt.Errorf("consume %s: %w", spec.Name, ErrStopped)
	}
	// Stop pulling; what the client buffered still reaches the callback.
	cc.Drain()
	deadline := time.AfterFunc(o.DrainTimeout, func() {
		log.Warn("drain timeout: abandoning in-flight messages to redelivery", "timeout", o.DrainTimeout)
		r.aborting.Store(true)
		hcancel()
	})
	defer deadline.Stop()
	<-cc.Closed()
	// The channel is never closed: the client may still call back after
	// Closed when its connection died, and a send on a closed channel
	// panics. Workers drain what the channel holds, then stop.
	close(r.stopped)
	wg.Wait()
	return runErr
}

type runner struct {
	bus      *Bus
	spec     ConsumerSpec
	opts     RunOptions
	log      *slog.Logger
	handler  BatchHandler
	msgs     chan jetstream.Msg
	stopped  chan struct{} // closed when no more messages are to be handled
	aborting atomic.Bool
	// holdUntil (unix nanoseconds) holds every worker back after a
	// Retry-After, so that a rate limit is not hammered.
	holdUntil atomic.Int64
}

// work collects batches from the shared channel and handles them until
// the runner stops and the channel is empty.
func (r *runner) work(ctx context.Context) {
	batch := make([]*Message, 0, r.opts.BatchSize)
	for {
		first, ok := r.next()
		if !ok {
			return
		}
		batch = append(batch[:0], r.wrap(first))
		timer := time.NewTimer(r.opts.BatchWait)
	fill:
		for len(batch) < r.opts.BatchSize {
			select {
			case m := <-r.msgs:
				batch = append(batch, r.wrap(m))
			case <-timer.C:
				break fill
			case <-r.stopped:
				break fill
			}
		}
		timer.Stop()
		r.handle(ctx, batch)
	}
}

// next returns the next message; false once the runner has stopped and
// nothing is left in the channel.
func (r *runner) next() (jetstream.Msg, bool) {
	select {
	case m := <-r.msgs:
		return m, true
	case <-r.stopped:
		select {
		case m := <-r.msgs:
			return m, true
		default:
			return nil, false
		}
	}
}

func (r *runner) wrap(jm jetstream.Msg) *Message {
	m := &Message{Subject: jm.Subject(), Data: jm.Data(), Header: jm.Headers(), msg: jm}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	if md, err := jm.Metadata(); err == nil {
		m.Stream, m.Sequence, m.Delivered, m.Published = md.Stream, md.Sequence.Stream, md.NumDelivered, md.Timestamp
	}
	return m
}

func (r *runner) handle(ctx context.Context, batch []*Message) {
	if r.aborting.Load() {
		for _, m := range batch {
			r.settle(ctx, m, context.Canceled)
		}
		return
	}
	for len(batch) > 0 {
		batch = r.attempt(ctx, batch)
	}
}

// attempt runs the handler on batch once and settles each message, except
// those a rate limit refused (an error with a Retry-After): it returns
// them to be tried again in process once the limit has passed. A rate
// limit is not the message's fault, and handing the message back would
// spend a delivery of its MaxDeliver budget on it, until enough 429s in a
// row dead-lettered a message that never failed.
func (r *runner) attempt(ctx context.Context, batch []*Message) (again []*Message) {
	stop := r.keepAlive(batch)
	// Held back by a rate limit: wait it out holding the batch (kept alive
	// by InProgress) rather than hand it back, for the same reason.
	for hold := time.Until(time.Unix(0, r.holdUntil.Load())); hold > 0; hold = time.Until(time.Unix(0, r.holdUntil.Load())) {
		t := time.NewTimer(hold)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			stop()
			for _, m := range batch {
				r.settle(ctx, m, ctx.Err())
			}
			return nil
		case <-r.stopped: // Shutting down: hand the batch back now, not after the hold.
			t.Stop()
			stop()
			for _, m := range batch {
				r.settle(ctx, m, context.Canceled)
			}
			return nil
		}
	}
	errs := r.call(ctx, batch)
	stop()
	for i, m := range batch {
		var err error
		if i < len(errs) {
			err = errs[i]
		} else {
			err = Permanent(fmt.Errorf("handler returned %d results for %d messages", len(errs), len(batch)))
		}
		if ra := RetryAfterOf(err); ra > 0 && !IsPermanent(err) && !r.aborting.Load() && ctx.Err() == nil && m.limited < r.opts.MaxRateLimited {
			m.limited++
			delay := min(ra, r.opts.MaxRetryDelay)
			r.hold(delay)
			level := slog.LevelWarn
			if IsPause(err) { // Logged once by the handler; see Pause.
				level = slog.LevelDebug
			}
			r.log.Log(ctx, level, "rate limited; will try again in process", "subject", m.Subject, "stream_seq", m.Sequence, "delay", delay, "err", err)
			if r.opts.OnSettle != nil {
				r.opts.OnSettle(Settlement{Spec: r.spec, Message: m, Outcome: Retried, Err: err})
			}
			again = append(again, m)
			continue
		}
		r.settle(ctx, m, err)
	}
	return again
}

// call runs the handler, turning a panic into a permanent error for the
// whole batch: input that crashes a handler will crash it again.
func (r *runner) call(ctx context.Context, batch []*Message) (errs []error) {
	defer func() {
		if p := recover(); p != nil {
			stack := debug.Stack()
			if hp, ok := p.(*HelperPanic); ok {
				stack = hp.Stack
			}
			r.log.Error("handler panic", "panic", p, "stack", string(stack))
			err := Permanent(fmt.Errorf("handler panic: %v", p))
			errs = make([]error, len(batch))
			for i := range errs {
				errs[i] = err
			}
		}
	}()
	errs = r.handler(ctx, batch)
	if errs == nil {
		errs = make([]error, len(batch))
	}
	return errs
}

// keepAlive sends InProgress for every message of batch at a third of
// AckWait until stop is called, so long work is not redelivered elsewhere.
func (r *runner) keepAlive(batch []*Message) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.spec.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range batch {
					_ = m.msg.InProgress()
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (r *runner) settle(ctx context.Context, m *Message, err error) {
	log := r.log.With("subject", m.Subject, "stream_seq", m.Sequence, "msg_id", m.ID(), "delivered", m.Delivered)
	outcome, reason := Acked, ""
	switch {
	case err == nil:
		var ackErr error
		if r.opts.DoubleAck {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ackErr = m.msg.DoubleAck(actx)
			cancel()
		} else {
			ackErr = m.msg.Ack()
		}
		if ackErr != nil {
			// The work is done but the ack may be lost: the message comes
			// back, and idempotent handlers make that harmless.
			log.Warn("ack", "err", ackErr)
		}
	case r.aborting.Load() && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		outcome = Retried
		_ = m.msg.Nak()
	case IsPermanent(err) || m.Delivered >= uint64(r.spec.MaxDeliver):
		outcome, reason = DeadLettered, ReasonPermanent
		if !IsPermanent(err) {
			reason = ReasonMaxDeliver
		}
		if dlErr := r.deadLetter(ctx, m, reason, err); dlErr != nil {
			outcome, reason = Retried, ""
			log.Error("dead-letter message; retrying it later", "err", err, "dlq_err", dlErr)
			_ = m.msg.NakWithDelay(r.opts.Backoff(m.Delivered))
			break
		}
		log.Error("message dead-lettered", "reason", reason, "err", err)
	default:
		outcome = Retried
		delay := r.opts.Backoff(m.Delivered)
		if ra := RetryAfterOf(err); ra > 0 {
			delay = min(ra, r.opts.MaxRetryDelay)
			r.hold(delay)
		}
		level := slog.LevelWarn
		if IsPause(err) || errors.Is(err, context.Canceled) { // Expected: logged once elsewhere, or shutting down.
			level = slog.LevelDebug
		}
		log.Log(ctx, level, "message will be retried", "delay", delay, "err", err)
		if nakErr := m.msg.NakWithDelay(delay); nakErr != nil {
			log.Warn("nak", "err", nakErr)
		}
	}
	if r.opts.OnSettle != nil {
		r.opts.OnSettle(Settlement{Spec: r.spec, Message: m, Outcome: outcome, Reason: reason, Err: err})
	}
}

func (r *runner) hold(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := r.holdUntil.Load()
		if cur >= until || r.holdUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

func (r *runner) deadLetter(ctx context.Context, m *Message, reason string, cause error) error {
	dl := r.newDeadLetter(m, reason, cause)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.bus.publishDeadLetter(pctx, dl); err != nil {
		return err
	}
	reasonText := cause.Error()
	if len(reasonText) > 200 {
		reasonText = reasonText[:200]
	}
	if err := m.msg.TermWithReason(reason + ": " + reasonText); err != nil {
		r.log.Warn("terminate dead-lettered message", "stream_seq", m.Sequence, "err", err)
	}
	return nil
}

func (r *runner) newDeadLetter(m *Message, reason string, cause error) DeadLetter {
	return DeadLetter{
		Schema:     "deadletter.v1",
		Stream:     r.spec.Stream,
		Consumer:   r.spec.Name,
		Subject:    m.Subject,
		Sequence:   m.Sequence,
		MsgID:      m.ID(),
		Deliveries: m.Delivered,
		Reason:     reason,
		Error:      cause.Error(),
		FailedAt:   time.Now().UTC(),
		Header:     m.Header,
		Data:       m.Data,
	}
}
