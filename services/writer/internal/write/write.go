package write

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/schemas"
)

// Upserted is what ThreatQ's answer to a consume call says of one item.
type Upserted struct {
	// ID is the object's id.
	ID int64
	// StatusMatches, when the answer shows the object's status, says
	// whether it is the one the write asks for; nil when it does not show
	// it. Consume sets the status of new objects only.
	StatusMatches *bool
	// Existing, when the answer says, tells whether the object existed
	// before the call.
	Existing *bool
}

// ThreatQ is what the writer asks of ThreatQ. The Upsert calls write a
// batch in one call (the bulk path of the API); a permanent error means
// the batch as a whole was refused. Status names are ThreatQ's spelling.
type ThreatQ interface {
	UpsertIndicators(ctx context.Context, ws []schemas.IndicatorWrite) ([]Upserted, error)
	// StaleRows reads the indicator's rows with their sources and returns
	// those a write of attrs under source replaces (threatq.StaleRows):
	// rows listing source alone that attrs does not hold.
	StaleRows(ctx context.Context, indicatorID int64, attrs []schemas.Attribute, source string) ([]int64, error)
	DeleteIndicatorAttribute(ctx context.Context, indicatorID, rowID int64) error
	// SetIndicatorStatus PUTs the indicator's status. ThreatQ answers with
	// the indicator: where the answer shows its rows with their sources,
	// SetIndicatorStatus returns the rows a write of attrs under source
	// replaces, as StaleRows would, and known true, sparing that read.
	SetIndicatorStatus(ctx context.Context, indicatorID int64, status string, attrs []schemas.Attribute, source string) (stale []int64, known bool, err error)
	UpsertSignatures(ctx context.Context, ws []schemas.SignatureWrite) ([]Upserted, error)
	SetSignatureStatus(ctx context.Context, signatureID int64, status string) error
}

// parallel bounds the indicators finished at once per batch (each a
// status PUT or a read of its rows, then deletions): ThreatQ has no bulk
// form of these calls.
const parallel = 8

// Stats counts what a Writer did. Safe for concurrent use.
type Stats struct {
	Indicators, Signatures, Attributes, Removed, Invalid, Failed atomic.Int64
	// StatusSet counts status PUTs, on indicators and signatures.
	StatusSet atomic.Int64
}

// Writer handles batches of write.v1 messages.
type Writer struct {
	ThreatQ ThreatQ
	Stats   *Stats
}

// needsStatus reports whether the status must be PUT: the write asks for
// one and ThreatQ's answer shows another, or, where the answer does not
// show it, what the writer was told the object has (fetched or last
// written) differs. A new object got its status from consume.
func needsStatus(want, known string, u Upserted) bool {
	switch {
	case want == "":
		return false
	case u.StatusMatches != nil:
		return !*u.StatusMatches
	case u.Existing != nil && !*u.Existing:
		return false
	default:
		return known != want
	}
}

// Handle is a [bus.BatchHandler]. Indicator writes are consumed in one
// call; then, per indicator, the status is PUT where it differs, and the
// rows the write replaces are deleted (only rows listing our source
// alone: see threatq.StaleRows), found in the PUT's answer or, without
// one, read from ThreatQ with their sources. The new
// values are in place before the old go, and a redelivery repeats all of
// it harmlessly (the upsert adds nothing twice, a deleted row's 404
// counts as done, a status already set is not PUT again). Signature
// writes are consumed, then their status PUT where it differs.
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
	sem := make(chan struct{}, parallel)
	var wg bus.Group // A helper's panic reaches the runner's recover.
	for j, r := range bisect(ctx, inds, w.ThreatQ.UpsertIndicators) {
		i := indIdx[j]
		if r.err != nil {
			errs[i] = fmt.Errorf("write indicator %d: %w", inds[j].ID, r.err)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := w.finishIndicator(ctx, inds[j], r.u); err != nil {
				errs[i] = fmt.Errorf("write indicator %d: %w", inds[j].ID, err)
			}
		})
	}
	wg.Wait()
	for j, r := range bisect(ctx, sigs, w.ThreatQ.UpsertSignatures) {
		i := sigIdx[j]
		if r.err != nil {
			errs[i] = fmt.Errorf("write signature %q: %w", sigs[j].Name, r.err)
			continue
		}
		if !needsStatus(sigs[j].Status, sigs[j].LastStatus, r.u) {
			w.Stats.Signatures.Add(1)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := w.ThreatQ.SetSignatureStatus(ctx, r.u.ID, sigs[j].Status); err != nil {
				errs[i] = fmt.Errorf("write signature %q: set status %s: %w", sigs[j].Name, sigs[j].Status, err)
				return
			}
			w.Stats.StatusSet.Add(1)
			w.Stats.Signatures.Add(1)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			w.Stats.Failed.Add(1)
		}
	}
	return errs
}

// finishIndicator sets an upserted write's status where it differs and
// removes the rows the write replaces. The status PUT answers with the
// indicator's rows where ThreatQ shows them, so an indicator whose status
// changes costs one request before its deletions, not two; the rows are
// read only where no PUT was needed or its answer did not show them. Both
// come after the upsert, so the new values are in place before the old
// go. A write known by value and type only (ID 0, an ET IP list address)
// takes the id consume answered, and removes no rows: it holds none of
// its own, and the rows of another feed under the same source name are
// not ours to judge.
func (w *Writer) finishIndicator(ctx context.Context, iw schemas.IndicatorWrite, u Upserted) error {
	byValue := iw.ID == 0
	if byValue {
		if u.ID == 0 {
			return errors.New("consume answered no id for an indicator written by value and type")
		}
		iw.ID = u.ID
	}
	var stale []int64
	known := byValue // by value: no rows of ours to judge
	if needsStatus(iw.Status, iw.FetchedStatus, u) {
		rows, shown, err := w.ThreatQ.SetIndicatorStatus(ctx, iw.ID, iw.Status, iw.Attributes, iw.Source)
		if err != nil {
			return fmt.Errorf("set status %s: %w", iw.Status, err)
		}
		w.Stats.StatusSet.Add(1)
		if !byValue {
			stale, known = rows, shown
		}
	}
	if !known {
		var err error
		if stale, err = w.ThreatQ.StaleRows(ctx, iw.ID, iw.Attributes, iw.Source); err != nil {
			return err
		}
	}
	for _, row := range stale {
		if err := w.ThreatQ.DeleteIndicatorAttribute(ctx, iw.ID, row); err != nil {
			return fmt.Errorf("remove old attribute row %d: %w", row, err)
		}
		w.Stats.Removed.Add(1)
	}
	w.Stats.Indicators.Add(1)
	w.Stats.Attributes.Add(int64(len(iw.Attributes)))
	return nil
}

// result is one item's outcome of a bisected upsert.
type result struct {
	u   Upserted
	err error
}

// bisect runs upsert over items through [bus.Bisect], keeping what the
// successful calls answered for each item. It bisects the items' indexes,
// so each answer finds its item's place.
func bisect[T any](ctx context.Context, items []T, upsert func(context.Context, []T) ([]Upserted, error)) []result {
	out := make([]result, len(items))
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	errs := bus.Bisect(ctx, idx, func(ctx context.Context, part []int) error {
		batch := make([]T, len(part))
		for k, i := range part {
			batch[k] = items[i]
		}
		us, err := upsert(ctx, batch)
		if err != nil {
			return err
		}
		if len(us) != len(part) {
			return fmt.Errorf("upsert answered %d items for %d", len(us), len(part))
		}
		for k, i := range part {
			out[i].u = us[k]
		}
		return nil
	})
	for i, err := range errs {
		out[i].err = err
	}
	return out
}
