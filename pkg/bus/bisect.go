package bus

import (
	"context"
	"errors"
)

// Bisect calls call with every item, and when it fails permanently (a
// validation error for the whole batch, caused by some items), calls it
// again on each half, down to single items, so that only the items at fault
// fail and the rest go through. It returns one error per item. A transient
// failure is not split: it is returned for every item of the call, to be
// retried as a whole. Nor is an error that says the whole call failed
// whatever its items (an error, or one it wraps, with a WholeCall method
// returning true, such as an answer that could not be decoded): splitting
// would only repeat the call, each half as likely to fail.
func Bisect[T any](ctx context.Context, items []T, call func(context.Context, []T) error) []error {
	errs := make([]error, len(items))
	bisect(ctx, items, errs, call)
	return errs
}

func bisect[T any](ctx context.Context, items []T, errs []error, call func(context.Context, []T) error) {
	if len(items) == 0 {
		return
	}
	err := call(ctx, items)
	if err == nil {
		return
	}
	if len(items) == 1 || !IsPermanent(err) || wholeCall(err) || ctx.Err() != nil {
		for i := range errs {
			errs[i] = err
		}
		return
	}
	mid := len(items) / 2
	bisect(ctx, items[:mid], errs[:mid], call)
	bisect(ctx, items[mid:], errs[mid:], call)
}

// wholeCall reports whether err says the call failed as a whole.
func wholeCall(err error) bool {
	var w interface{ WholeCall() bool }
	return errors.As(err, &w) && w.WholeCall()
}
