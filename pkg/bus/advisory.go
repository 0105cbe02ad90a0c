package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// A message whose last allowed delivery ends without an outcome (the
// worker crashed, or its connection died, before it acked, naked or
// dead-lettered) is never delivered again: the server only announces it,
// with a max-deliveries advisory. The runners listen for those of their
// consumer and dead-letter the message, so that it is neither lost nor
// stuck. One replica handles each advisory (a queue group), and the dead
// letter's ID makes a second one a no-op.

// maxDeliveriesSubject is where the server announces that a consumer's
// message ran out of deliveries.
func maxDeliveriesSubject(spec ConsumerSpec) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + spec.Stream + "." + spec.Name
}

// maxDeliveriesAdvisory is the part of the server's
// io.nats.jetstream.advisory.v1.max_deliver event the runner reads.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// ErrNoOutcome is the error a dead letter records for a message whose last
// allowed delivery ended without an outcome.
var ErrNoOutcome = fmt.Errorf("no outcome on the last allowed delivery (the worker stopped or lost its connection before settling it)")

// watchMaxDeliveries subscribes to spec's max-deliveries advisories until
// the returned stop is called.
func (r *runner) watchMaxDeliveries(ctx context.Context) (stop func(), err error) {
	sub, err := r.bus.nc.QueueSubscribe(maxDeliveriesSubject(r.spec), "tqflow-advisories."+r.spec.Name, func(m *nats.Msg) {
		r.onMaxDeliveries(ctx, m.Data)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to max-deliveries advisories of %s: %w", r.spec.Name, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// onMaxDeliveries dead-letters the message an advisory names. Failures
// are logged: the advisory is not redelivered, but the message stays in
// its stream for a replay.
func (r *runner) onMaxDeliveries(ctx context.Context, data []byte) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(data, &adv); err != nil || adv.StreamSeq == 0 {
		r.log.Warn("unreadable max-deliveries advisory", "err", err)
		return
	}
	log := r.log.With("stream_seq", adv.StreamSeq, "delivered", adv.Deliveries)
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := r.bus.js.Stream(gctx, r.spec.Stream)
	if err != nil {
		log.Error("dead-letter a message out of deliveries: look up its stream", "err", err)
		return
	}
	raw, err := s.GetMsg(gctx, adv.StreamSeq)
	if err != nil {
		log.Error("dead-letter a message out of deliveries: read it", "err", err)
		return
	}
	m := &Message{Subject: raw.Subject, Data: raw.Data, Header: raw.Header, Stream: r.spec.Stream, Sequence: raw.Sequence,
		Delivered: adv.Deliveries, Published: raw.Time}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	dl := r.newDeadLetter(m, ReasonMaxDeliver, ErrNoOutcome)
	if err := r.bus.publishDeadLetter(gctx, dl); err != nil {
		log.Error("dead-letter a message out of deliveries", "err", err)
		return
	}
	log.Error("message dead-lettered", "subject", m.Subject, "msg_id", m.ID(), "reason", ReasonMaxDeliver, "err", ErrNoOutcome)
	if r.opts.OnSettle != nil {
		r.opts.OnSettle(Settlement{Spec: r.spec, Message: m, Outcome: DeadLettered, Reason: ReasonMaxDeliver, Err: ErrNoOutcome})
	}
}
