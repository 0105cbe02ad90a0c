package obs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tqflow/tqflow/pkg/bus"
)

// Config says where the server listens. Fields carry caarlos0/env tags;
// services nest it under the METRICS_ prefix (METRICS_ADDR).
type Config struct {
	// Addr is host:port to listen on; ":9090" when empty.
	Addr string `env:"ADDR" envDefault:":9090"`
	// CheckTimeout bounds all readiness checks of one /readyz request
	// together; 2s when zero.
	CheckTimeout time.Duration `env:"CHECK_TIMEOUT" envDefault:"2s"`
	// ShutdownTimeout bounds how long in-flight requests may finish once
	// the context ends; 5s when zero.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"5s"`
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = ":9090"
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = 2 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("METRICS_ADDR %q: want host:port: %w", c.Addr, err))
		}
	}
	if c.CheckTimeout < 0 {
		errs = append(errs, fmt.Errorf("METRICS_CHECK_TIMEOUT is %s: want a positive duration", c.CheckTimeout))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("METRICS_SHUTDOWN_TIMEOUT is %s: want a positive duration", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// Conn is the NATS connection readiness depends on; *bus.Bus is one.
type Conn interface {
	// Ready reports whether the connection is up.
	Ready() bool
}

var _ Conn = (*bus.Bus)(nil)

// Check is a readiness check: nil means ready.
type Check func(ctx context.Context) error

// ErrNotConnected is the NATS check's error while the connection is down.
var ErrNotConnected = errors.New("not connected")

// ErrShuttingDown is the readiness error once the server's context ended
// or [Server.SetNotReady] was called.
var ErrShuttingDown = errors.New("shutting down")

// Server serves /metrics, /livez and /readyz. Its methods are safe for
// concurrent use.
type Server struct {
	cfg      Config
	metrics  *Metrics
	conn     Conn
	mux      *http.ServeMux
	mu       sync.Mutex
	names    []string
	checks   []Check
	notReady atomic.Bool
}

// NewServer returns a server of m's metrics whose readiness follows conn
// and the checks added later.
func NewServer(c Config, m *Metrics, conn Conn) (*Server, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("metrics server: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("metrics server: %w", errNilMetrics)
	}
	if conn == nil {
		return nil, errors.New("metrics server: no NATS connection")
	}
	c.setDefaults()
	s := &Server{cfg: c, metrics: m, conn: conn, mux: http.NewServeMux()}
	s.mux.Handle("GET /metrics", m.Handler())
	s.mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	return s, nil
}

// AddCheck adds a readiness check, reported under name.
func (s *Server) AddCheck(name string, check Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names = append(s.names, name)
	s.checks = append(s.checks, check)
}

// SetNotReady makes /readyz answer 503 from now on: call it first when
// shutting down, before draining consumers.
func (s *Server) SetNotReady() { s.notReady.Store(true) }

// Handler returns the server's routes, for tests and for mounting
// elsewhere.
func (s *Server) Handler() http.Handler { return s.mux }

// Ready runs every readiness check and returns the failures, joined, each
// prefixed by its check's name; nil when ready.
func (s *Server) Ready(ctx context.Context) error {
	if s.notReady.Load() {
		return fmt.Errorf("server: %w", ErrShuttingDown)
	}
	var errs []error
	if !s.conn.Ready() {
		errs = append(errs, fmt.Errorf("nats: %w", ErrNotConnected))
	}
	s.mu.Lock()
	names, checks := s.names, s.checks
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	for i, check := range checks {
		if err := check(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", names[i], err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	err := s.Ready(r.Context())
	if err == nil {
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	var b strings.Builder
	b.WriteString("not ready:\n")
	for line := range strings.SplitSeq(err.Error(), "\n") {
		b.WriteString("  ")
		b.WriteString(line)
		b.WriteString("\n")
	}
	_, _ = w.Write([]byte(b.String()))
}

// Run listens on the configured address and serves until ctx ends; see
// [Server.Serve].
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then turns not ready and shuts down:
// in-flight requests get the shutdown timeout to finish. It returns nil
// after a clean shutdown, and closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics: %w", err)
	case <-ctx.Done():
	}
	s.SetNotReady()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down metrics server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}

// ConsumerCheck returns a readiness check that the durable consumer
// exists on stream.
func ConsumerCheck(js jetstream.JetStream, stream, consumer string) Check {
	return func(ctx context.Context) error {
		if _, err := js.Consumer(ctx, stream, consumer); err != nil {
			return fmt.Errorf("look up consumer %s on %s: %w", consumer, stream, err)
		}
		return nil
	}
}

func handlerFor(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
