package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// DeadLetter is a message that could not be processed, kept with why
// (schema deadletter.v1).
type DeadLetter struct {
	// Schema is "deadletter.v1".
	Schema string `json:"schema"`
	// Stream, Consumer, Subject and Sequence say where the message was.
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Subject  string `json:"subject"`
	Sequence uint64 `json:"stream_seq"`
	// MsgID is the original Nats-Msg-Id.
	MsgID string `json:"msg_id,omitempty"`
	// Deliveries is how many times the message was delivered.
	Deliveries uint64 `json:"deliveries"`
	// Reason is "permanent" (the handler said it cannot succeed) or
	// "max_deliver" (retries ran out).
	Reason string `json:"reason"`
	// Error is the handler's error.
	Error string `json:"error"`
	// FailedAt is when it was dead-lettered.
	FailedAt time.Time `json:"failed_at"`
	// Header is the original message's headers.
	Header map[string][]string `json:"header,omitempty"`
	// Data is the original payload (base64 in JSON).
	Data []byte `json:"data"`
}

// Dead-letter reasons, as a [DeadLetter] and a [Settlement] give them.
const (
	// ReasonPermanent is a message whose handler said it cannot succeed:
	// it returned a permanent error.
	ReasonPermanent = "permanent"
	// ReasonMaxDeliver is a message whose retries ran out: its last allowed
	// delivery failed, or ended without an outcome.
	ReasonMaxDeliver = "max_deliver"
)

// publishDeadLetter stores dl on its subject, with an ID that makes a
// second attempt for the same message a no-op.
func (b *Bus) publishDeadLetter(ctx context.Context, dl DeadLetter) error {
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	return b.Publish(ctx, Outgoing{
		Subject: DeadLetterSubject(dl.Stream, dl.Consumer),
		ID:      "dlq:" + dl.Stream + ":" + dl.Consumer + ":" + strconv.FormatUint(dl.Sequence, 10),
		Data:    data,
		Header:  nats.Header{HeaderReason: []string{dl.Reason}},
	})
}
