package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Outgoing is a message to publish.
type Outgoing struct {
	// Subject is where it goes.
	Subject string
	// ID is its deterministic Nats-Msg-Id: the stream drops a second message
	// with the same ID within the duplicate window, which makes a retried
	// publish safe.
	ID string
	// Data is the payload.
	Data []byte
	// Header holds extra headers; may be nil.
	Header nats.Header
}

func (o Outgoing) msg() *nats.Msg {
	m := &nats.Msg{Subject: o.Subject, Data: o.Data, Header: o.Header}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	return m
}

// Publish publishes one message and waits for the stream to store it. A
// duplicate (same ID within the window) is not an error.
func (b *Bus) Publish(ctx context.Context, o Outgoing) error {
	if o.ID == "" {
		return fmt.Errorf("publish to %s: message has no ID", o.Subject)
	}
	if _, err := b.js.PublishMsg(ctx, o.msg(), jetstream.WithMsgID(o.ID)); err != nil {
		return fmt.Errorf("publish to %s: %w", o.Subject, err)
	}
	return nil
}

// Batch publishes many messages asynchronously, keeping at most a window of
// them unacknowledged, and reports whether the stream stored them all.
// A Batch is for one goroutine.
type Batch struct {
	js      jetstream.JetStream
	window  int
	pending []jetstream.PubAckFuture
	head    int
	stored  int
	dups    int
	errs    []error
}

// NewBatch returns a Batch with a window of unacknowledged publishes (1000
// when window <= 0).
func (b *Bus) NewBatch(window int) *Batch {
	if window <= 0 {
		window = 1000
	}
	return &Batch{js: b.js, window: window}
}

// Add publishes o asynchronously. When the window is full it first waits
// for the oldest publish to be acknowledged.
func (bt *Batch) Add(ctx context.Context, o Outgoing) error {
	if o.ID == "" {
		return fmt.Errorf("publish to %s: message has no ID", o.Subject)
	}
	for len(bt.pending)-bt.head >= bt.window {
		if err := bt.waitOldest(ctx); err != nil {
			return err
		}
	}
	f, err := bt.js.PublishMsgAsync(o.msg(), jetstream.WithMsgID(o.ID))
	if err != nil {
		return fmt.Errorf("publish to %s: %w", o.Subject, err)
	}
	bt.pending = append(bt.pending, f)
	return nil
}

func (bt *Batch) waitOldest(ctx context.Context) error {
	f := bt.pending[bt.head]
	bt.pending[bt.head] = nil
	bt.head++
	if bt.head > 4096 && bt.head*2 > len(bt.pending) {
		bt.pending = append(bt.pending[:0], bt.pending[bt.head:]...)
		bt.head = 0
	}
	select {
	case ack := <-f.Ok():
		bt.stored++
		if ack.Duplicate {
			bt.dups++
		}
	case err := <-f.Err():
		bt.errs = append(bt.errs, fmt.Errorf("publish to %s: %w", f.Msg().Subject, err))
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Wait waits until every message added so far is acknowledged, and returns
// the joined errors of those the stream did not store. Only when Wait
// returns nil may the caller treat the batch as durable (and, say, advance
// a checkpoint).
func (bt *Batch) Wait(ctx context.Context) error {
	for bt.head < len(bt.pending) {
		if err := bt.waitOldest(ctx); err != nil {
			return err
		}
	}
	bt.pending, bt.head = bt.pending[:0], 0
	return errors.Join(bt.errs...)
}

// Stored returns how many messages the stream acknowledged, and how many of
// those were duplicates it dropped.
func (bt *Batch) Stored() (stored, duplicates int) { return bt.stored, bt.dups }
