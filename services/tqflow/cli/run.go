package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/obs"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
)

// embeddedConfig says where the embedded server keeps its data and
// whether it listens for other processes.
type embeddedConfig struct {
	Bus bus.Config `envPrefix:"NATS_"`
	// DataDir holds the embedded server's store.
	DataDir string `env:"DATA_DIR" envDefault:".data"`
	// Listen is host:port for workers in other processes and the nats CLI;
	// empty: in-process connections only.
	Listen string `env:"NATS_LISTEN"`
}

func runCommand(stdout io.Writer) app.Command {
	return app.Command{
		Name:        "run",
		Summary:     "run every service in one process on an embedded NATS server",
		Usage:       "tqflow run [--once] [--historical YYYY-MM-DD] [-n NAME] [-v 0-3] [-ll DIR|stdout] [-c DIR]",
		ParsesFirst: true,
		Run: func(ctx context.Context, env *app.Env) error {
			var pc pipeline.Config
			var ec embeddedConfig
			var mc struct {
				Metrics obs.Config `envPrefix:"METRICS_"`
			}
			if err := app.JoinUsage(pc.Parse(env), env.Parse(&ec), env.Parse(&mc)); err != nil {
				return err
			}
			b, shutdown, err := openBus(ctx, env, ec)
			if err != nil {
				return err
			}
			defer shutdown()
			m := obs.New("tqflow")
			pc.Instrument(m)
			p, err := pipeline.New(ctx, pc, pipeline.Buses{Default: b}, env.Log)
			if err != nil {
				return err
			}
			p.Observe(m.OnSettle)
			srv, err := obs.NewServer(mc.Metrics, m, b)
			if err != nil {
				return app.UsageError{Err: err}
			}
			if err := enrichersvc.Register(m.Registry(), p.EnricherStats()); err != nil {
				return err
			}
			srv.AddCheck("ctr", enrichersvc.Check(p.EnricherStats()))
			sctx, stopServer := context.WithCancel(ctx)
			defer stopServer()
			go func() {
				if err := srv.Run(sctx); err != nil {
					env.Log.Error("metrics server stopped", "err", err)
				}
			}()
			if env.Common.Once {
				s, err := p.RunOnce(ctx, env.Historical)
				s.Print(stdout)
				return err
			}
			wctx, stop := context.WithCancel(ctx)
			defer stop()
			wait := p.StartWorkers(wctx)
			ferr := p.Fetcher().Run(ctx, env.Historical)
			stop()
			return errors.Join(ferr, wait())
		},
	}
}

// openBus connects to NATS_URL when set, else starts the embedded server
// with its store under DATA_DIR. shutdown closes the connection, then the
// server.
func openBus(ctx context.Context, env *app.Env, ec embeddedConfig) (*bus.Bus, func(), error) {
	if ec.Bus.URL != "" {
		b, err := env.Connect(ctx, ec.Bus, "tqflow")
		if err != nil {
			return nil, nil, err
		}
		return b, func() { _ = b.Close() }, nil
	}
	srv, err := startEmbedded(ec, env.Log)
	if err != nil {
		return nil, nil, err
	}
	nc, err := srv.Connect("tqflow")
	if err != nil {
		srv.Shutdown()
		return nil, nil, err
	}
	b, err := bus.New(nc, env.Log)
	if err == nil {
		err = bus.NewTopology(ec.Bus).Ensure(ctx, b.JetStream())
	}
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, nil, err
	}
	return b, func() {
		_ = b.Close()
		srv.Shutdown()
	}, nil
}

func startEmbedded(ec embeddedConfig, log *slog.Logger) (*bus.Embedded, error) {
	dir, err := filepath.Abs(filepath.Join(ec.DataDir, "nats"))
	if err != nil {
		return nil, fmt.Errorf("DATA_DIR %s: %w", ec.DataDir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("DATA_DIR %s: %w", ec.DataDir, err)
	}
	cfg := bus.EmbeddedConfig{StoreDir: dir}
	if ec.Listen != "" {
		host, port, err := splitHostPort(ec.Listen)
		if err != nil {
			return nil, app.UsageError{Err: fmt.Errorf("NATS_LISTEN %q: %w", ec.Listen, err)}
		}
		cfg.Host, cfg.Port = host, port
	}
	srv, err := bus.StartEmbedded(cfg, log)
	if err != nil {
		return nil, err
	}
	if u := srv.ClientURL(); u != "" {
		log.Info("embedded NATS listening", "url", u, "store", dir)
	} else {
		log.Info("embedded NATS started (in-process only)", "store", dir)
	}
	return srv, nil
}

// splitHostPort splits NATS_LISTEN into a host and a port.
func splitHostPort(hp string) (string, int, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: want 1 to 65535", ps)
	}
	return host, port, nil
}
