package service

import (
	"context"
	"fmt"

	"github.com/tqflow/tqflow/pkg/threatq"
)

// ThreatQCatalog reads signature types and statuses from ThreatQ.
type ThreatQCatalog struct{ TQ *threatq.Client }

var _ Catalog = ThreatQCatalog{}

// SignatureTypes returns the names of ThreatQ's signature types.
func (c ThreatQCatalog) SignatureTypes(ctx context.Context) ([]string, error) {
	ts, err := c.TQ.SignatureTypes(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return names, nil
}

// SignatureStatuses returns the names of ThreatQ's signature statuses.
func (c ThreatQCatalog) SignatureStatuses(ctx context.Context) ([]string, error) {
	ss, err := c.TQ.SignatureStatuses(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.Name
	}
	return names, nil
}

// NewThreatQCatalog returns a catalog on the ThreatQ c names: the
// loader's own (Config.ThreatQ).
func NewThreatQCatalog(c threatq.Config) (ThreatQCatalog, error) {
	tq, err := threatq.New(c)
	if err != nil {
		return ThreatQCatalog{}, fmt.Errorf("signature catalog: %w", err)
	}
	return ThreatQCatalog{TQ: tq}, nil
}
