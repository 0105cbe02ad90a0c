package bus

import "fmt"

// Outcome is how a message was settled.
type Outcome int

// Outcomes.
const (
	Acked Outcome = iota
	Retried
	DeadLettered
)

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
