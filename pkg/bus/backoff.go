package bus

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// ExponentialBackoff returns a redelivery delay by delivery count: initial
// after the first failure, doubling, capped at maxDelay, with ±20% jitter.
func ExponentialBackoff(initial, maxDelay time.Duration) func(uint64) time.Duration {
	return func(delivered uint64) time.Duration {
		b := backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(initial),
			backoff.WithMaxInterval(maxDelay),
			backoff.WithMultiplier(2),
			backoff.WithRandomizationFactor(0.2),
			backoff.WithMaxElapsedTime(0),
		)
		d := b.NextBackOff()
		for i := uint64(1); i < delivered && i < 64 && d < maxDelay; i++ {
			d = b.NextBackOff()
		}
		return d
	}
}
