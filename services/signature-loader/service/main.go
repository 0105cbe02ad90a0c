package service

import (
	"context"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/obs"
)

// Main returns the loader's entry point as a process of its own, against
// NATS_URL; newCatalog builds the ThreatQ catalog from the environment,
// timing its API calls on the service's metrics.
func Main(newCatalog func(ctx context.Context, env *app.Env, m *obs.Metrics) (Catalog, error)) func(context.Context, *app.Env) error {
	return func(ctx context.Context, env *app.Env) error {
		var c Config
		return env.Serve(ctx, "signature-loader", &c, func(s app.Service) error {
			c.Instance = env.Instance
			cat, err := newCatalog(ctx, env, s.Metrics)
			if err != nil {
				return err
			}
			s.Watch(c.Spec())
			return Run(ctx, c, s.Bus, cat, env.Log, &Stats{}, s.Metrics.OnSettle)
		})
	}
}
