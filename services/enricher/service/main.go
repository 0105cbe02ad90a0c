package service

import (
	"context"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
)

// Main runs the enricher as a process of its own, against NATS_URL.
func Main(ctx context.Context, env *app.Env) error {
	var c Config
	return env.Serve(ctx, "enricher", &c, func(b *bus.Bus) error {
		c.Instance = env.Instance
		return Run(ctx, c, b, env.Log, &Stats{}, nil)
	})
}
