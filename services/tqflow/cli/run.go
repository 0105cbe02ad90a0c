package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/obs"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	exportersvc "github.com/tqflow/tqflow/services/exporter/service"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
)

// embeddedConfig says where the embedded server keeps its data, where it
// listens, and who may connect.
type embeddedConfig struct {
	Bus bus.Config `envPrefix:"NATS_"`
	// DataDir holds the embedded server's store, and the record of where it
	// listens for the operator commands.
	DataDir string `env:"DATA_DIR" envDefault:".data"`
	// Listen is host:port for workers in other processes, the operator
	// commands and the nats CLI; empty: a free loopback port; "off":
	// in-process connections only.
	Listen string `env:"NATS_LISTEN"`
	// SyncAlways has the embedded server fsync every write.
	SyncAlways bool `env:"NATS_SYNC_ALWAYS"`
}

// listenOff is the NATS_LISTEN value for an embedded server that does not
// listen at all.
const listenOff = "off"

// Validate checks the NATS_ variables, and, for an embedded server, that
// one listening beyond this host requires credentials.
func (ec embeddedConfig) Validate() error {
	errs := []error{ec.Bus.Validate()}
	if ec.Bus.URL != "" {
		return errors.Join(errs...)
	}
	if ec.Bus.TLSCA != "" || ec.Bus.TLSCert != "" {
		errs = append(errs, errors.New("NATS_TLS_CA, NATS_TLS_CERT and NATS_TLS_KEY are for connecting to NATS_URL; the embedded server serves no TLS (run a NATS server for that)"))
	}
	if _, err := bus.AuthFor(ec.Bus); err != nil && ec.Bus.CredsFile != "" {
		errs = append(errs, err)
	}
	if ec.Listen != "" && ec.Listen != listenOff {
		host, _, err := splitHostPort(ec.Listen)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("NATS_LISTEN %q: %w", ec.Listen, err))
		case !isLoopback(host) && !ec.Bus.HasAuth():
			errs = append(errs, fmt.Errorf("NATS_LISTEN %q listens beyond this host with no authentication: set NATS_USER and NATS_PASSWORD, NATS_TOKEN or NATS_NKEY_SEED_FILE (and see the README on running on a network)", ec.Listen))
		}
	}
	return errors.Join(errs...)
}

// isLoopback reports whether host names this host only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
			var mc runMetricsVars
			if err := app.JoinUsage(pc.Parse(env), env.Parse(&ec), env.Parse(&mc)); err != nil {
				return err
			}
			onParsed, parsed := parseProgress(os.Stderr)
			pc.Loader.OnParsed = onParsed
			defer parsed()
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
			watchFetch(p.Fetcher(), os.Stderr)
			srv, err := obs.NewServer(mc.Metrics, m, b)
			if err != nil {
				return app.UsageError{Err: err}
			}
			p.Instrument(ctx, m, srv, 0)
			if err := enrichersvc.Register(m.Registry(), p.EnricherStats()); err != nil {
				return err
			}
			srv.AddCheck("ctr", enrichersvc.Check(p.EnricherStats()))
			if err := exportersvc.Register(m.Registry(), p.ExporterStats()); err != nil {
				return err
			}
			// A port in use is fatal, before anything starts: a tqflow run
			// nobody can monitor is not what the operator asked for.
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp", mc.Metrics.Addr)
			if err != nil {
				return fmt.Errorf("metrics server (METRICS_ADDR): %w", err)
			}
			env.Log.Info("serving metrics and health", "addr", ln.Addr().String())
			sctx, stopServer := context.WithCancel(ctx)
			var serveErr error
			served := make(chan struct{})
			go func() {
				serveErr = srv.Serve(sctx, ln)
				close(served)
			}()
			defer func() {
				stopServer()
				<-served
				if serveErr != nil {
					env.Log.Warn("metrics server", "err", serveErr)
				}
			}()
			if env.Common.Once {
				s, err := p.RunOnce(ctx, env.Historical)
				parsed()
				s.Print(stdout)
				return err
			}
			return runContinuous(ctx, p, srv, served, func() error { return serveErr }, env)
		},
	}
}

// runContinuous runs the workers and the fetcher's schedule until ctx
// ends, or until a worker or the metrics server stops: then /readyz fails
// at once, everything stops, and the reason is returned.
func runContinuous(ctx context.Context, p *pipeline.Pipeline, srv *obs.Server, served <-chan struct{}, serveErr func() error, env *app.Env) error {
	wctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	wait := p.StartWorkers(wctx)
	fctx, unsupervise := p.Supervise(wctx)
	defer unsupervise()
	go func() {
		select {
		case <-p.Failed():
			srv.SetNotReady()
		case <-served:
			if ctx.Err() != nil {
				return
			}
			// The metrics server stopped by itself.
			srv.SetNotReady()
			stop(fmt.Errorf("metrics server stopped: %w", serveErr()))
		case <-wctx.Done():
		}
	}()
	var ferr error
	if ferr = p.WaitStarted(fctx); ferr == nil {
		ferr = p.Fetcher().Run(fctx, env.Historical)
	}
	srv.SetNotReady()
	stop(nil)
	if werr := wait(); werr != nil {
		return werr
	}
	if cause := context.Cause(wctx); cause != nil && !errors.Is(cause, context.Canceled) && ctx.Err() == nil {
		return cause
	}
	if ctx.Err() != nil && errors.Is(ferr, context.Canceled) {
		return nil
	}
	return ferr
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
	srv, bc, stopped, err := startEmbedded(ec, env.Log)
	if err != nil {
		return nil, nil, err
	}
	bc.Name = "tqflow"
	nc, err := srv.ConnectAs(bc)
	if err != nil {
		stopped()
		return nil, nil, err
	}
	b, err := bus.New(nc, env.Log)
	if err == nil {
		err = bus.NewTopology(ec.Bus).Ensure(ctx, b.JetStream())
	}
	if err != nil {
		nc.Close()
		stopped()
		return nil, nil, err
	}
	return b, func() {
		_ = b.Close()
		stopped()
	}, nil
}

// startEmbedded starts the embedded server: every connection must
// authenticate, with the NATS_ credentials when set, else with a user and
// password made up for this run. Where it listens, and with which
// credentials, is recorded under DATA_DIR for the operator commands.
// stopped removes that record and shuts the server down.
func startEmbedded(ec embeddedConfig, log *slog.Logger) (srv *bus.Embedded, bc bus.Config, stopped func(), err error) {
	dir, err := filepath.Abs(filepath.Join(ec.DataDir, "nats"))
	if err != nil {
		return nil, bc, nil, fmt.Errorf("DATA_DIR %s: %w", ec.DataDir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, bc, nil, fmt.Errorf("DATA_DIR %s: %w", ec.DataDir, err)
	}
	bc = ec.Bus
	if !bc.HasAuth() {
		bc.User, bc.Password = "tqflow", config.Secret(rand.Text())
	}
	auth, err := bus.AuthFor(bc)
	if err != nil {
		return nil, bc, nil, app.UsageError{Err: err}
	}
	cfg := bus.EmbeddedConfig{StoreDir: dir, Host: "127.0.0.1", Port: -1, SyncAlways: ec.SyncAlways, Auth: auth}
	switch ec.Listen {
	case listenOff:
		cfg.Port = 0
	case "":
	default:
		host, port, err := splitHostPort(ec.Listen)
		if err != nil {
			return nil, bc, nil, app.UsageError{Err: fmt.Errorf("NATS_LISTEN %q: %w", ec.Listen, err)}
		}
		cfg.Host, cfg.Port = host, port
	}
	srv, err = bus.StartEmbedded(cfg, log)
	if err != nil {
		return nil, bc, nil, err
	}
	u := srv.ClientURL()
	if u == "" {
		log.Info("embedded NATS started (in-process only)", "store", dir)
		return srv, bc, srv.Shutdown, nil
	}
	if !isLoopback(cfg.Host) {
		log.Warn("embedded NATS listens beyond this host, without TLS", "url", u)
	}
	record, err := localContextPath(ec.DataDir)
	if err == nil {
		err = writeLocalContext(record, localContext{Description: "tqflow run (embedded NATS server)", URL: u,
			User: bc.User, Password: bc.Password.Reveal(), Token: bc.Token.Reveal(), NKey: bc.NKeySeedFile})
	}
	if err != nil {
		srv.Shutdown()
		return nil, bc, nil, err
	}
	log.Info("embedded NATS listening", "url", u, "store", dir, "context", record)
	return srv, bc, func() {
		if err := os.Remove(record); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("remove the record of the embedded NATS server", "path", record, "err", err)
		}
		srv.Shutdown()
	}, nil
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
