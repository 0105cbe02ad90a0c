package bus

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Message is a message delivered to a handler. Handlers read it; the
// runner settles it.
type Message struct {
	// Subject is the subject it was published on.
	Subject string
	// Data is its payload.
	Data []byte
	// Header is its headers; never nil.
	Header nats.Header
	// Stream and Sequence say where it is stored.
	Stream   string
	Sequence uint64
	// Delivered counts deliveries, 1 on the first.
	Delivered uint64
	// Published is when the stream stored it.
	Published time.Time

	msg jetstream.Msg
	// limited counts the tries a rate limit refused in process.
	limited int
}

// ID returns the message's Nats-Msg-Id.
func (m *Message) ID() string { return m.Header.Get(headerMsgID) }

// Replay returns the replay ID of a re-published message, or "".
func (m *Message) Replay() string { return m.Header.Get(HeaderReplay) }
