package service

import (
	"context"

	"github.com/tqflow/tqflow/pkg/obs"
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

// NewThreatQCatalog parses the THREATQ_ variables and returns a catalog
// on that ThreatQ, its calls timed on m (none when nil): the catalog
// factory of [Main].
func NewThreatQCatalog(_ context.Context, env interface{ Parse(any) error }, m *obs.Metrics) (Catalog, error) {
	var c struct {
		ThreatQ threatq.Config `envPrefix:"THREATQ_"`
	}
	if err := env.Parse(&c); err != nil {
		return nil, err
	}
	c.ThreatQ.WrapTransport = m.WrapTransport(obs.SystemThreatQ)
	tq, err := threatq.New(c.ThreatQ)
	if err != nil {
		return nil, err
	}
	return ThreatQCatalog{TQ: tq}, nil
}
