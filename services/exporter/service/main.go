package service

import (
	"context"

	"github.com/tqflow/tqflow/pkg/app"
)

// Main runs the exporter as a process of its own, against NATS_URL.
func Main(ctx context.Context, env *app.Env) error {
	var c Config
	bc, err := env.ParseService(&c)
	if err != nil {
		return err
	}
	c.Instance = env.Instance
	b, err := env.Connect(ctx, bc, "exporter")
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	return Run(ctx, c, b, env.Log, &Stats{}, nil)
}
