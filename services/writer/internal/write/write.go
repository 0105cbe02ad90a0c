package write

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/schemas"
)

// ThreatQ is what the writer asks of ThreatQ. ConsumeIndicators and
// ConsumeSignatures upsert a batch in one call (the bulk path of the API);
// a permanent error means the batch as a whole was refused.
type ThreatQ interface {
	ConsumeIndicators(ctx context.Context, ws []schemas.IndicatorWrite) error
	DeleteIndicatorAttribute(ctx context.Context, indicatorID, rowID int64) error
	// StaleAttributeRows lists the indicator's attribute rows that now
	// hold, under one of attrs' names, another value than attrs gives it.
	StaleAttributeRows(ctx context.Context, indicatorID int64, attrs []schemas.Attribute) ([]int64, error)
	ConsumeSignatures(ctx context.Context, ws []schemas.SignatureWrite) error
}

// deleteParallel bounds the attribute-row deletions in flight per batch.
const deleteParallel = 8

// Stats counts what a Writer did. Safe for concurrent use.
type Stats struct {
	Indicators, Signatures, Attributes, Removed, Invalid, Failed atomic.Int64
}

// Writer handles batches of write.v1 messages.
type Writer struct {
	ThreatQ ThreatQ
	Stats   *Stats
}

// toRemove returns the attribute rows to delete after w is written: those
// the message names and, when its view of the indicator may be stale (a
// replay), every row now under one of its names with another value.
func (w *Writer) toRemove(ctx context.Context, iw schemas.IndicatorWrite) ([]int64, error) {
	if !iw.ReplaceStale {
		return iw.RemoveAttributeIDs, nil
	}
	stale, err := w.ThreatQ.StaleAttributeRows(ctx, iw.ID, iw.Attributes)
	if err != nil {
		return nil, err
	}
	remove := slices.Clone(iw.RemoveAttributeIDs)
	for _, id := range stale {
		if !slices.Contains(remove, id) {
			remove = append(remove, id)
		}
	}
	return remove, nil
}

// Handle is a [bus.BatchHandler]. Indicator writes are consumed in one
// call, then the rows they replace are deleted: the new value is in place
// before the old goes, and a redelivery repeats both harmlessly (the
// upsert adds nothing twice, a deleted row's 404 counts as done).
func (w *Writer) Handle(ctx context.Context, ms []*bus.Message) []error {
	errs := make([]error, len(ms))
	var inds []schemas.IndicatorWrite
	var indIdx []int
	var sigs []schemas.SignatureWrite
	var sigIdx []int
	for i, m := range ms {
		var msg schemas.Write
		if err := schemas.Decode(m.Data, &msg); err != nil {
			w.Stats.Invalid.Add(1)
			errs[i] = bus.Permanent(err)
			continue
		}
		switch msg.Kind {
		case schemas.KindIndicator:
			inds = append(inds, *msg.Indicator)
			indIdx = append(indIdx, i)
		case schemas.KindSignature:
			sigs = append(sigs, *msg.Signature)
			sigIdx = append(sigIdx, i)
		}
	}
	// The rows to remove go one request each (ThreatQ has no bulk
	// delete), so they go several at a time.
	sem := make(chan struct{}, deleteParallel)
	var wg bus.Group // A helper's panic reaches the runner's recover.
	for j, err := range bus.Bisect(ctx, inds, w.ThreatQ.ConsumeIndicators) {
		i := indIdx[j]
		if err != nil {
			errs[i] = fmt.Errorf("write indicator %d: %w", inds[j].ID, err)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			remove, err := w.toRemove(ctx, inds[j])
			if err != nil {
				errs[i] = fmt.Errorf("write indicator %d: %w", inds[j].ID, err)
				return
			}
			for _, row := range remove {
				if err := w.ThreatQ.DeleteIndicatorAttribute(ctx, inds[j].ID, row); err != nil {
					errs[i] = fmt.Errorf("write indicator %d: remove old attribute row %d: %w", inds[j].ID, row, err)
					return
				}
				w.Stats.Removed.Add(1)
			}
			w.Stats.Indicators.Add(1)
			w.Stats.Attributes.Add(int64(len(inds[j].Attributes)))
		})
	}
	wg.Wait()
	for j, err := range bus.Bisect(ctx, sigs, w.ThreatQ.ConsumeSignatures) {
		if err != nil {
			errs[sigIdx[j]] = fmt.Errorf("write signature %q: %w", sigs[j].Name, err)
			continue
		}
		w.Stats.Signatures.Add(1)
	}
	for _, err := range errs {
		if err != nil {
			w.Stats.Failed.Add(1)
		}
	}
	return errs
}
