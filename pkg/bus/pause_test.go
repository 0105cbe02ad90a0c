package bus_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
)

func TestPause(t *testing.T) {
	t.Parallel()
	cause := errors.New("missing scope")
	err := fmt.Errorf("observe: %w", bus.Pause(cause, 3*time.Minute))
	if !bus.IsPause(err) || bus.IsPermanent(err) || bus.RetryAfterOf(err) != 3*time.Minute || !errors.Is(err, cause) {
		t.Errorf("Pause: IsPause %v, IsPermanent %v, RetryAfter %v, Is cause %v",
			bus.IsPause(err), bus.IsPermanent(err), bus.RetryAfterOf(err), errors.Is(err, cause))
	}
	if bus.Pause(nil, time.Second) != nil || bus.IsPause(bus.Transient(cause, time.Second)) {
		t.Error("Pause(nil) or a plain transient error counted as a pause")
	}
	if d := bus.RetryAfterOf(bus.Pause(cause, 0)); d != time.Minute {
		t.Errorf("Pause with no delay retries after %v, want 1m", d)
	}
}
