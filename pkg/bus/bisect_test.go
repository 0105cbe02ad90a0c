package bus_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
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
