package bus_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/httpx"
)

func TestRetryAfterOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want time.Duration
	}{
		{"nil", nil, 0},
		{"plain", errors.New("connection reset"), 0},
		{"transient", fmt.Errorf("observe: %w", bus.Transient(errors.New("busy"), 7*time.Second)), 7 * time.Second},
		{"transient without delay", bus.Transient(errors.New("busy"), 0), 0},
		{"pause", bus.Pause(errors.New("missing scope"), 0), time.Minute},
		// The runner's interface finds the HTTP layer's errors without
		// pkg/bus importing it.
		{"http 429", fmt.Errorf("observe: %w", &httpx.StatusError{Op: "ctr: observe", StatusCode: 429, Retry: 3 * time.Second}), 3 * time.Second},
		{"scrubbed http 429", httpx.NewScrubber("s3cret-token").Rebuild(&httpx.StatusError{Op: "s3cret-token", StatusCode: 429, Retry: 5 * time.Second}), 5 * time.Second},
	}
	for _, tt := range tests {
		if got := bus.RetryAfterOf(tt.err); got != tt.want {
			t.Errorf("%s: RetryAfterOf = %v, want %v", tt.name, got, tt.want)
		}
	}
}
