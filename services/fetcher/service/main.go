package service

import (
	"context"

	"github.com/tqflow/tqflow/pkg/app"
)

// Main runs the fetcher as a process of its own, against NATS_URL: once
// with --once, else on its interval, standing by while another replica
// holds the lease.
func Main(ctx context.Context, env *app.Env) error {
	var c Config
	bc, err := env.ParseService(&c)
	if err != nil {
		return err
	}
	c.Instance = env.Instance
	b, err := env.Connect(ctx, bc, "fetcher")
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	f, err := New(ctx, c, b, env.Log)
	if err != nil {
		return err
	}
	if env.Common.Once {
		_, err := f.RunOnce(ctx, env.Historical)
		return err
	}
	return f.Run(ctx, env.Historical)
}
