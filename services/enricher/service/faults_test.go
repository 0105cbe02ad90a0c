package service_test

import (
	"time"

	"github.com/tqflow/tqflow/pkg/sim"
)

func simFaults429() sim.Faults {
	return sim.Faults{RateLimitRate: 1, RetryAfter: time.Second, PathPrefix: "/iroh/iroh-enrich/"}
}

func noFaults() sim.Faults { return sim.Faults{} }
