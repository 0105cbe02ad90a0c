package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/httpx"
)

func TestBisect(t *testing.T) {
	t.Parallel()
	bad := errors.New("validation: value rejected")
	tests := []struct {
		name      string
		items     []int
		transient bool
		wantBad   []int
		maxCalls  int
	}{
		{"all good", []int{1, 2, 3, 4}, false, nil, 1},
		{"one bad", []int{1, 2, 99, 4, 5, 6, 7, 8}, false, []int{99}, 7},
		{"two bad", []int{99, 2, 3, 98}, false, []int{99, 98}, 7},
		{"transient fails all, unsplit", []int{1, 99, 3}, true, []int{1, 99, 3}, 1},
		{"empty", nil, false, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			errs := bus.Bisect(context.Background(), tt.items, func(_ context.Context, batch []int) error {
				calls++
				if slices.ContainsFunc(batch, func(v int) bool { return v > 90 }) {
					if tt.transient {
						return errors.New("HTTP 503")
					}
					return bus.Permanent(bad)
				}
				return nil
			})
			var gotBad []int
			for i, err := range errs {
				if err != nil {
					gotBad = append(gotBad, tt.items[i])
				}
			}
			if !slices.Equal(gotBad, tt.wantBad) {
				t.Errorf("failed items %v, want %v", gotBad, tt.wantBad)
			}
			if calls > tt.maxCalls {
				t.Errorf("%d calls, want at most %d", calls, tt.maxCalls)
			}
		})
	}
}

// TestBisectWholeCall: an answer that cannot be decoded (here: too large)
// blames no item, so the call is not split into one call per item.
func TestBisectWholeCall(t *testing.T) {
	t.Parallel()
	calls := 0
	items := []int{1, 2, 3, 4, 5, 6, 7, 8}
	errs := bus.Bisect(context.Background(), items, func(context.Context, []int) error {
		calls++
		return fmt.Errorf("observe: %w", &httpx.DecodeError{Op: "ctr: observe", Err: errors.New("answer larger than 256 MiB")})
	})
	if calls != 1 {
		t.Errorf("%d calls for an undecodable answer, want 1", calls)
	}
	for i, err := range errs {
		if !bus.IsPermanent(err) {
			t.Errorf("item %d: %v, want the permanent decode error", i, err)
		}
	}
}
