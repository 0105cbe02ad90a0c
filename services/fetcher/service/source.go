package service

import (
	"context"
	"log/slog"

	"github.com/tqflow/tqflow/pkg/threatq"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/fetcher/internal/fetch"
)

// savedSearch is the CTR job's source: a Threat Library saved search, run
// with the window injected.
type savedSearch struct {
	tq   *threatq.Client
	name string
	log  *slog.Logger
}

var _ fetch.Source = (*savedSearch)(nil)

func (s *savedSearch) Fetch(ctx context.Context, w fetch.Window, page func([]schemas.IndicatorData) error) error {
	search, err := s.tq.SavedSearch(ctx, s.name)
	if err != nil {
		return err
	}
	q := search.Query()
	q.UpdatedAfter, q.UpdatedBefore = w.After, w.Before
	// The enricher tells the rows it wrote from other feeds' by their
	// sources, to see whether a row of ours CTR no longer gives is left.
	q.RowSources = true
	return s.tq.Query(ctx, q, func(inds []threatq.Indicator) error { return page(convert(inds)) })
}

// activeAbove is the MISP job's source: Active indicators at or above a
// score.
type activeAbove struct {
	tq        *threatq.Client
	threshold float64
}

func (s *activeAbove) Fetch(ctx context.Context, w fetch.Window, page func([]schemas.IndicatorData) error) error {
	q := threatq.ActiveAbove(s.threshold)
	q.UpdatedAfter, q.UpdatedBefore = w.After, w.Before
	return s.tq.Query(ctx, q, func(inds []threatq.Indicator) error { return page(convert(inds)) })
}

func convert(inds []threatq.Indicator) []schemas.IndicatorData {
	out := make([]schemas.IndicatorData, 0, len(inds))
	for _, in := range inds {
		d := schemas.IndicatorData{
			ID: in.ID, Value: in.Value, Type: in.Type, Status: in.Status,
			Score: min(max(in.Score, 0), 10), UpdatedAt: in.UpdatedAt.UTC(),
		}
		if !in.CreatedAt.IsZero() {
			t := in.CreatedAt.UTC()
			d.CreatedAt = &t
		}
		for _, a := range in.Attributes {
			d.Attributes = append(d.Attributes, schemas.Row{ID: a.ID, Name: a.Name, Value: a.Value, Sources: a.Sources})
		}
		out = append(out, d)
	}
	return out
}
