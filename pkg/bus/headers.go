package bus

import "github.com/nats-io/nats.go/jetstream"

// Header names tqflow sets on messages, for code that reads them.
const (
	// HeaderReplay marks a message re-published by replay; its value is the
	// replay's ID.
	HeaderReplay = "Tqflow-Replay"
	// HeaderCorrelation carries a run's correlation ID end to end.
	HeaderCorrelation = "Tqflow-Correlation-Id"
	// HeaderReason is set on a dead letter's message and holds its
	// [DeadLetter.Reason] ([ReasonPermanent] or [ReasonMaxDeliver]), so that
	// a reader can tell them apart without decoding the payload.
	HeaderReason = "Tqflow-Reason"
	// HeaderRedrive marks a message re-published from the dead letters
	// (tqflow dlq redrive); its value is the dead letter's stream
	// sequence.
	HeaderRedrive = "Tqflow-Redrive"
)

// Header names JetStream sets and this package reads.
const (
	// headerMsgID is the deduplication ID a publish sets
	// ([Outgoing.ID]); [Message.ID] reads it.
	headerMsgID = jetstream.MsgIDHeader
	// headerKVOperation marks a key-value bucket's message as a delete or
	// a purge (KV-Operation: DEL or PURGE); a put has none. JetStream's
	// client keeps its own name for it unexported.
	headerKVOperation = "KV-Operation"
)
