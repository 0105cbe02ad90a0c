package bus

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerSpec declares a durable pull consumer.
type ConsumerSpec struct {
	// Stream is the stream it reads.
	Stream string
	// Name is the durable name; replicas of a worker share it.
	Name string
	// Subjects filter the stream; empty means all of it.
	Subjects []string
	// AckWait is how long a delivery may go unacknowledged before the
	// server redelivers it; 30s when zero.
	AckWait time.Duration
	// MaxDeliver bounds deliveries; the last failed one is dead-lettered. 10
	// when zero.
	MaxDeliver int
	// MaxAckPending caps unacknowledged messages across every replica: the
	// global concurrency cap. 1000 when zero.
	MaxAckPending int
	// StartTime, when set, makes a new consumer start at that time instead
	// of the start of the stream (replay and backfill consumers).
	StartTime *time.Time
	// InactiveThreshold removes the consumer after that long unused; zero
	// keeps it.
	InactiveThreshold time.Duration
}

func (s ConsumerSpec) withDefaults() ConsumerSpec {
	if s.AckWait == 0 {
		s.AckWait = 30 * time.Second
	}
	if s.MaxDeliver == 0 {
		s.MaxDeliver = 10
	}
	if s.MaxAckPending == 0 {
		s.MaxAckPending = 1000
	}
	return s
}

// Config returns the consumer's JetStream configuration.
func (s ConsumerSpec) Config() jetstream.ConsumerConfig {
	s = s.withDefaults()
	cc := jetstream.ConsumerConfig{
		Durable:           s.Name,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           s.AckWait,
		MaxDeliver:        s.MaxDeliver,
		MaxAckPending:     s.MaxAckPending,
		InactiveThreshold: s.InactiveThreshold,
	}
	switch len(s.Subjects) {
	case 0:
	case 1:
		cc.FilterSubject = s.Subjects[0]
	default:
		cc.FilterSubjects = s.Subjects
	}
	if s.StartTime != nil {
		cc.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cc.OptStartTime = s.StartTime
	}
	return cc
}
