package service

import (
	"context"

	"github.com/tqflow/tqflow/pkg/app"
)

// Main returns the loader's entry point as a process of its own, against
// NATS_URL; newCatalog builds the ThreatQ catalog from the environment.
func Main(newCatalog func(ctx context.Context, env *app.Env) (Catalog, error)) func(context.Context, *app.Env) error {
	return func(ctx context.Context, env *app.Env) error {
		var c Config
		bc, err := env.ParseService(&c)
		if err != nil {
			return err
		}
		c.Instance = env.Instance
		cat, err := newCatalog(ctx, env)
		if err != nil {
			return err
		}
		b, err := env.Connect(ctx, bc, "signature-loader")
		if err != nil {
			return err
		}
		defer func() { _ = b.Close() }()
		return Run(ctx, c, b, cat, env.Log, &Stats{}, nil)
	}
}
