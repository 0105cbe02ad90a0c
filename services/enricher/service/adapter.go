package service

import (
	"context"
	"log/slog"

	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/enricher/internal/enrich"
)

// ctrAdapter asks CTR and maps its answers to attributes. The enricher
// calls it with distinct observables, at most the client's batch size.
type ctrAdapter struct {
	c   *ctr.Client
	log *slog.Logger
	// moduleRetries is how many times the modules that failed inside an
	// answer are asked again at once (restricted with mids) before the
	// answer is returned incomplete.
	moduleRetries int
}

var _ enrich.CTR = (*ctrAdapter)(nil)

// Observe asks CTR once, then asks again only the modules that failed
// inside the answer, up to moduleRetries times. Answers are matched back
// by the observable exactly as sent: ResultsFor keys its map by the
// observables given, so two URLs that differ only in case never get each
// other's context.
func (a *ctrAdapter) Observe(ctx context.Context, obs []enrich.Observable) (enrich.Answer, error) {
	req := make([]ctr.Observable, len(obs))
	for i, o := range obs {
		req[i] = ctr.Observable{Type: o.Type, Value: o.Value}
	}
	resp, err := a.c.Observe(ctx, req)
	if err != nil {
		return enrich.Answer{}, err
	}
	out := enrich.Answer{Attributes: make(map[enrich.Observable][]schemas.Attribute)}
	note := func(errs []ctr.ModuleError) {
		for _, me := range errs {
			a.log.Warn("ctr module error", "module", me.Module, "module_instance_id", me.InstanceID, "code", me.Code, "type", me.Type, "message", me.Message)
			out.ModuleErrors = append(out.ModuleErrors, enrich.ModuleError{Module: me.Module, Code: me.Code})
		}
	}
	note(resp.Errors)
	for try := 0; try < a.moduleRetries && len(resp.Errors) > 0; try++ {
		var mids []string
		for _, me := range resp.Errors {
			if me.InstanceID == "" { // Cannot be asked alone.
				mids = nil
				break
			}
			mids = append(mids, me.InstanceID)
		}
		if len(mids) == 0 {
			break
		}
		again, err := a.c.ObserveModules(ctx, req, mids)
		if err != nil {
			break // The first answer stands, incomplete.
		}
		resp.Modules = append(resp.Modules, again.Modules...)
		resp.Errors = again.Errors
		note(resp.Errors)
	}
	out.Incomplete = len(resp.Errors) > 0
	for o, rs := range resp.Results() {
		var attrs []schemas.Attribute
		seen := map[schemas.Attribute]bool{}
		for _, r := range rs {
			for _, at := range r.Attributes {
				x := schemas.Attribute{Name: at.Name, Value: at.Value}
				if at.Value != "" && !seen[x] {
					seen[x] = true
					attrs = append(attrs, x)
				}
			}
		}
		out.Attributes[enrich.Observable{Type: o.Type, Value: o.Value}] = attrs
	}
	return out, nil
}
