package service

import (
	"context"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/obs"
)

// Main runs the fetcher as a process of its own, against NATS_URL: once
// with --once, else on its interval, standing by while another replica
// holds the lease.
func Main(ctx context.Context, env *app.Env) error {
	var c Config
	return env.Serve(ctx, "fetcher", &c, func(s app.Service) error {
		c.Instance = env.Instance
		c.ThreatQ.WrapTransport = s.Metrics.WrapTransport(obs.SystemThreatQ)
		c.ET.ET.WrapTransport = s.Metrics.WrapTransport(obs.SystemET)
		f, err := New(ctx, c, s.Bus, env.Log)
		if err != nil {
			return err
		}
		if err := s.Wiring.LoadRuns(ctx); err != nil {
			env.Log.Warn("load last runs", "err", err)
		}
		f.OnSuccess = s.Wiring.OnSuccess
		if env.Common.Once {
			_, err := f.RunOnce(ctx, env.Historical)
			return err
		}
		return f.Run(ctx, env.Historical)
	})
}
