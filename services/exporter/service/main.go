package service

import (
	"context"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/obs"
)

// Main runs the exporter as a process of its own, against NATS_URL.
func Main(ctx context.Context, env *app.Env) error {
	var c Config
	return env.Serve(ctx, "exporter", &c, func(s app.Service) error {
		c.Instance = env.Instance
		c.MISP.WrapTransport = s.Metrics.WrapTransport(obs.SystemMISP)
		s.Watch(c.Spec())
		stats := &Stats{}
		if err := Register(s.Metrics.Registry(), stats); err != nil {
			return err
		}
		return Run(ctx, c, s.Bus, env.Log, stats, s.Metrics.OnSettle)
	})
}
