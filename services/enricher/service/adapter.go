package service

import (
	"context"
	"log/slog"
	"strings"

	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/enricher/internal/enrich"
)

// ctrAdapter asks CTR and maps its answers to attributes. The enricher
// calls it with at most the client's batch size of observables.
type ctrAdapter struct {
	c   *ctr.Client
	log *slog.Logger
}

var _ enrich.CTR = (*ctrAdapter)(nil)

// key matches answers to what was sent regardless of case: CTR may echo a
// hash or a domain in another case than it was sent.
func key(typ, value string) string { return strings.ToLower(typ) + "\x00" + strings.ToLower(value) }

func (a *ctrAdapter) Observe(ctx context.Context, obs []enrich.Observable) (map[enrich.Observable][]schemas.Attribute, error) {
	req := make([]ctr.Observable, len(obs))
	sent := make(map[string][]enrich.Observable, len(obs))
	for i, o := range obs {
		req[i] = ctr.Observable{Type: o.Type, Value: o.Value}
		k := key(o.Type, o.Value)
		sent[k] = append(sent[k], o)
	}
	resp, err := a.c.Observe(ctx, req)
	if err != nil {
		return nil, err
	}
	for _, me := range resp.Errors {
		a.log.Warn("ctr module error", "module", me.Module, "code", me.Code, "type", me.Type, "message", me.Message)
	}
	out := make(map[enrich.Observable][]schemas.Attribute)
	for o, r := range resp.Results() {
		attrs := make([]schemas.Attribute, 0, len(r.Attributes))
		for _, at := range r.Attributes {
			if at.Value != "" {
				attrs = append(attrs, schemas.Attribute{Name: at.Name, Value: at.Value})
			}
		}
		for _, eo := range sent[key(o.Type, o.Value)] {
			out[eo] = attrs
		}
	}
	return out, nil
}
