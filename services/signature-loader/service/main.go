package service

import (
	"context"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/obs"
)

// Main runs the loader as a process of its own, against NATS_URL, with the
// signature types and statuses of the ThreatQ at THREATQ_URL.
func Main(ctx context.Context, env *app.Env) error {
	var c Config
	return env.Serve(ctx, "signature-loader", &c, func(s app.Service) error {
		c.Instance = env.Instance
		c.ThreatQ.WrapTransport = s.Metrics.WrapTransport(obs.SystemThreatQ)
		cat, err := NewThreatQCatalog(c.ThreatQ)
		if err != nil {
			return err
		}
		s.Watch(c.Spec())
		return Run(ctx, c, s.Bus, cat, env.Log, &Stats{}, s.Metrics.OnSettle)
	})
}
