package bus

import "fmt"

// Outcome is how a message was settled.
type Outcome int

// Outcomes.
const (
	// Acked is a message handled: acknowledged.
	Acked Outcome = iota
	// Retried is a message to be tried again: handed back for redelivery,
	// or held in process after a rate limit.
	Retried
	// DeadLettered is a message given up on: kept as a [DeadLetter] and
	// terminated.
	DeadLettered
)

// String returns the outcome's name, as metrics label it: acked, retried
// or dead_lettered.
func (o Outcome) String() string {
	switch o {
	case Acked:
		return "acked"
	case Retried:
		return "retried"
	case DeadLettered:
		return "dead_lettered"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Settlement is what the runner did with a message, as
// [RunOptions.OnSettle] is told.
type Settlement struct {
	// Spec is the consumer the message was delivered to.
	Spec ConsumerSpec
	// Message is the message settled.
	Message *Message
	// Outcome is what the runner did with it.
	Outcome Outcome
	// Reason is why a dead-lettered message was, as its [DeadLetter]
	// records it: [ReasonPermanent] or [ReasonMaxDeliver]. It is empty for
	// the other outcomes.
	Reason string
	// Err is what the message was settled on: the handler's error, the
	// context's when shutting down, or [ErrNoOutcome] for a message whose
	// last allowed delivery ended without one. It is nil when the message
	// was acked.
	Err error
}
