package service

import (
	"context"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
)

// Main runs the fetcher as a process of its own, against NATS_URL: once
// with --once, else on its interval, standing by while another replica
// holds the lease.
func Main(ctx context.Context, env *app.Env) error {
	var c Config
	return env.Serve(ctx, "fetcher", &c, func(b *bus.Bus) error {
		c.Instance = env.Instance
		f, err := New(ctx, c, b, env.Log)
		if err != nil {
			return err
		}
		if env.Common.Once {
			_, err := f.RunOnce(ctx, env.Historical)
			return err
		}
		return f.Run(ctx, env.Historical)
	})
}
