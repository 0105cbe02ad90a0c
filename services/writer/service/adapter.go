package service

import (
	"context"

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

func (a adapter) ConsumeIndicators(ctx context.Context, ws []schemas.IndicatorWrite) error {
	items := make([]threatq.IndicatorWrite, len(ws))
	for i, w := range ws {
		items[i] = threatq.IndicatorWrite{
			Value:      w.Value,
			Type:       w.Type,
			Status:     w.Status,
			Source:     w.Source,
			Attributes: attrs(w.Attributes),
		}
	}
	_, err := a.tq.ConsumeIndicators(ctx, items)
	return err
}

func (a adapter) DeleteIndicatorAttribute(ctx context.Context, indicatorID, rowID int64) error {
	return a.tq.DeleteIndicatorAttribute(ctx, indicatorID, rowID)
}

func (a adapter) StaleAttributeRows(ctx context.Context, indicatorID int64, as []schemas.Attribute) ([]int64, error) {
	return a.tq.StaleAttributeRows(ctx, indicatorID, attrs(as))
}

func (a adapter) ConsumeSignatures(ctx context.Context, ws []schemas.SignatureWrite) error {
	items := make([]threatq.SignatureWrite, len(ws))
	for i, w := range ws {
		items[i] = threatq.SignatureWrite{
			Name:       w.Name,
			Value:      w.Value,
			Type:       w.Type,
			Status:     w.Status,
			Source:     w.Source,
			Attributes: attrs(w.Attributes),
		}
	}
	_, err := a.tq.ConsumeSignatures(ctx, items)
	return err
}
