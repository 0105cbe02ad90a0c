package service

import (
	"context"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/obs"
)

// Main runs the writer as a process of its own, against NATS_URL.
func Main(ctx context.Context, env *app.Env) error {
	var c Config
	return env.Serve(ctx, "writer", &c, func(s app.Service) error {
		c.ThreatQ.WrapTransport = s.Metrics.WrapTransport(obs.SystemThreatQ)
		s.Watch(c.Spec())
		return Run(ctx, c, s.Bus, env.Log, &Stats{}, s.Metrics.OnSettle)
	})
}
