package bus

import (
	"log/slog"
	"time"
)

// RunOptions tunes a runner.
type RunOptions struct {
	// Concurrency is how many handler calls run at once in this process; 1
	// when zero. MaxAckPending caps the total across replicas.
	Concurrency int
	// BatchSize is the most messages given to one BatchHandler call; 100
	// when zero. [Bus.Run] uses 1.
	BatchSize int
	// BatchWait is how long a partial batch waits for more messages; 20ms
	// when zero.
	BatchWait time.Duration
	// PullMaxMessages is the client's pull buffer. Zero picks enough to keep
	// every worker fed, and never fewer than 64: tiny buffers stall (see
	// nats.md §4.3).
	PullMaxMessages int
	// DrainTimeout bounds how long, on shutdown, handlers may finish what
	// they hold; 20s when zero. Keep it shorter than the container's stop
	// grace period.
	DrainTimeout time.Duration
	// DoubleAck waits for the server to confirm each ack.
	DoubleAck bool
	// Backoff gives the redelivery delay of a transient failure by delivery
	// count; an exponential backoff from 1s to 5m when nil.
	Backoff func(delivered uint64) time.Duration
	// MaxRetryDelay caps a Retry-After; 1h when zero.
	MaxRetryDelay time.Duration
	// MaxRateLimited is how many tries of one message a rate limit may
	// refuse in process; after that it is redelivered like any transient
	// failure (spending a delivery), so that a server that always answers
	// 429 ends in a dead letter, not in a loop. 20 when zero.
	MaxRateLimited int
	// Logger logs settlements; the context's logger when nil.
	Logger *slog.Logger
	// OnSettle, when set, is told of every settled message (a dead-lettered
	// one with its reason), and with Retried of every try a rate limit
	// refused (tried again in process, not redelivered), for metrics. It
	// must be fast and safe for concurrent use.
	OnSettle func(Settlement)
}

func (o RunOptions) withDefaults(spec ConsumerSpec) RunOptions {
	o.Concurrency = max(o.Concurrency, 1)
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.BatchWait <= 0 {
		o.BatchWait = 20 * time.Millisecond
	}
	if o.PullMaxMessages <= 0 {
		o.PullMaxMessages = max(64, 2*o.Concurrency*o.BatchSize)
	}
	o.PullMaxMessages = min(o.PullMaxMessages, spec.MaxAckPending)
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 20 * time.Second
	}
	if o.Backoff == nil {
		o.Backoff = ExponentialBackoff(time.Second, 5*time.Minute)
	}
	if o.MaxRetryDelay <= 0 {
		o.MaxRetryDelay = time.Hour
	}
	if o.MaxRateLimited <= 0 {
		o.MaxRateLimited = 20
	}
	return o
}
