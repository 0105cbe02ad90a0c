package bus

import (
	"errors"
	"fmt"
	"time"
)

// WorkerConfig is the consumer settings every worker reads from its
// environment: <PREFIX>CONCURRENCY, <PREFIX>BATCH_SIZE,
// <PREFIX>MAX_ACK_PENDING, <PREFIX>MAX_DELIVER and <PREFIX>DRAIN_TIMEOUT.
// It has no defaults of its own: a service embeds it under its prefix with
// its defaults in a config.DefaultsTag beside it, where help reads them
// too:
//
//	bus.WorkerConfig `envPrefix:"ENRICHER_" envDefaults:"CONCURRENCY=8,BATCH_SIZE=100,MAX_ACK_PENDING=1000,MAX_DELIVER=10,DRAIN_TIMEOUT=20s"`
type WorkerConfig struct {
	// Concurrency is how many batches one process handles at once.
	Concurrency int `env:"CONCURRENCY"`
	// BatchSize is the most messages handled together.
	BatchSize int `env:"BATCH_SIZE"`
	// MaxAckPending caps messages in flight across every replica: the
	// global concurrency cap on what the worker calls.
	MaxAckPending int `env:"MAX_ACK_PENDING"`
	// MaxDeliver bounds attempts per message before it is dead-lettered.
	MaxDeliver int `env:"MAX_DELIVER"`
	// DrainTimeout bounds how long shutdown waits for in-flight batches.
	DrainTimeout time.Duration `env:"DRAIN_TIMEOUT"`
}

// Validate reports every problem with w at once, naming the variables with
// prefix; a batch may hold at most maxBatchSize messages.
func (w WorkerConfig) Validate(prefix string, maxBatchSize int) error {
	var errs []error
	if w.Concurrency < 1 || w.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("%sCONCURRENCY %d: want 1 to 64", prefix, w.Concurrency))
	}
	if w.BatchSize < 1 || w.BatchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf("%sBATCH_SIZE %d: want 1 to %d", prefix, w.BatchSize, maxBatchSize))
	}
	if w.MaxAckPending < w.BatchSize {
		errs = append(errs, fmt.Errorf("%sMAX_ACK_PENDING %d: want at least %sBATCH_SIZE", prefix, w.MaxAckPending, prefix))
	}
	if w.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("%sMAX_DELIVER %d: want at least 1", prefix, w.MaxDeliver))
	}
	return errors.Join(errs...)
}

// Spec returns s with the worker's delivery limits.
func (w WorkerConfig) Spec(s ConsumerSpec) ConsumerSpec {
	s.MaxDeliver, s.MaxAckPending = w.MaxDeliver, w.MaxAckPending
	return s
}

// Options returns o with the worker's concurrency, batch size and drain
// timeout.
func (w WorkerConfig) Options(o RunOptions) RunOptions {
	o.Concurrency, o.BatchSize, o.DrainTimeout = w.Concurrency, w.BatchSize, w.DrainTimeout
	return o
}
