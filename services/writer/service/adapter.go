package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/threatq"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/writer/internal/write"
)

// adapter turns write.v1 payloads into ThreatQ client calls.
type adapter struct{ tq *threatq.Client }

var _ write.ThreatQ = adapter{}

func attrs(as []schemas.Attribute) []threatq.Attribute {
	out := make([]threatq.Attribute, len(as))
	for i, a := range as {
		out[i] = threatq.Attribute{Name: a.Name, Value: a.Value}
	}
	return out
}

// statusErr makes a status name the instance does not have permanent: no
// retry mends a misspelt name.
func statusErr(err error) error {
	if errors.Is(err, threatq.ErrNotFound) {
		return bus.Permanent(err)
	}
	return err
}

// upserted turns consume answers into the writer's, comparing each
// answer's status id with the one the write asks for.
func upserted(ctx context.Context, cs []threatq.Consumed, want []string, resolve func(context.Context, string) (int, error)) ([]write.Upserted, error) {
	out := make([]write.Upserted, len(cs))
	for i, c := range cs {
		out[i] = write.Upserted{ID: c.ID, Existing: c.Existing}
		if c.StatusID == 0 || want[i] == "" {
			continue
		}
		id, err := resolve(ctx, want[i])
		if err != nil {
			return nil, statusErr(fmt.Errorf("compare status: %w", err))
		}
		out[i].StatusMatches = new(id == c.StatusID)
	}
	return out, nil
}

func (a adapter) UpsertIndicators(ctx context.Context, ws []schemas.IndicatorWrite) ([]write.Upserted, error) {
	items := make([]threatq.IndicatorWrite, len(ws))
	want := make([]string, len(ws))
	for i, w := range ws {
		items[i] = threatq.IndicatorWrite{
			Value:      w.Value,
			Type:       w.Type,
			Status:     w.Status,
			Source:     w.Source,
			Attributes: attrs(w.Attributes),
		}
		want[i] = w.Status
	}
	cs, err := a.tq.UpsertIndicators(ctx, items)
	if err != nil {
		return nil, err
	}
	return upserted(ctx, cs, want, a.tq.IndicatorStatusID)
}

func (a adapter) StaleRows(ctx context.Context, indicatorID int64, as []schemas.Attribute, source string) ([]int64, error) {
	return a.tq.StaleRowsOf(ctx, indicatorID, attrs(as), source)
}

func (a adapter) DeleteIndicatorAttribute(ctx context.Context, indicatorID, rowID int64) error {
	return a.tq.DeleteIndicatorAttribute(ctx, indicatorID, rowID)
}

func (a adapter) SetIndicatorStatus(ctx context.Context, indicatorID int64, status string, as []schemas.Attribute, source string) ([]int64, bool, error) {
	id, err := a.tq.IndicatorStatusID(ctx, status)
	if err != nil {
		return nil, false, statusErr(err)
	}
	rows, shown, err := a.tq.SetIndicatorStatusRows(ctx, indicatorID, id)
	if err != nil || !shown {
		return nil, false, err
	}
	return threatq.StaleRows(rows, attrs(as), source), true, nil
}

func (a adapter) UpsertSignatures(ctx context.Context, ws []schemas.SignatureWrite) ([]write.Upserted, error) {
	items := make([]threatq.SignatureWrite, len(ws))
	want := make([]string, len(ws))
	for i, w := range ws {
		items[i] = threatq.SignatureWrite{
			Name:       w.Name,
			Value:      w.Value,
			Type:       w.Type,
			Status:     w.Status,
			Source:     w.Source,
			Attributes: attrs(w.Attributes),
		}
		want[i] = w.Status
	}
	cs, err := a.tq.UpsertSignatures(ctx, items)
	if err != nil {
		return nil, err
	}
	return upserted(ctx, cs, want, a.tq.SignatureStatusID)
}

func (a adapter) SetSignatureStatus(ctx context.Context, signatureID int64, status string) error {
	id, err := a.tq.SignatureStatusID(ctx, status)
	if err != nil {
		return statusErr(err)
	}
	return a.tq.SetSignatureStatus(ctx, signatureID, id)
}
