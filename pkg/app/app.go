package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/obs"
)

// ExitUsage is the exit status for bad flags or configuration: nothing was
// started.
const ExitUsage = 2

// UsageError is bad input found before anything started. [Execute]
// treats a [*config.Error] a service returns the same way.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Env is what a command runs with: its resolved flags, variables and
// logger.
type Env struct {
	*Resolved
	Common Common
	Args   []string

	// pending holds flag problems, reported with the first configuration
	// problems so that the operator sees every problem at once.
	pending error
}

// Parse fills cfg (a struct with env tags) from the command's variables and
// validates it. Errors are [UsageError]s, and include any flag problems not
// yet reported.
func (e *Env) Parse(cfg any) error { return e.ParseAll(cfg) }

// ParseAll parses several configurations and reports every problem of all
// of them, and of the flags, in one error.
func (e *Env) ParseAll(cfgs ...any) error {
	errs := []error{e.pending}
	e.pending = nil
	for _, c := range cfgs {
		if err := config.Parse(c, e.Vars); err != nil {
			errs = append(errs, err)
		}
		if e.Resolved != nil {
			e.addSecrets(c)
			e.warnTransport(c)
		}
	}
	if e.Resolved != nil {
		// Every client scrubs its server-supplied text of every secret of
		// the process, not only its own: a proxy in front of one system
		// may echo another's credentials.
		s := e.Scrubber()
		for _, c := range cfgs {
			setScrubbers(reflect.ValueOf(c), s, 0)
		}
	}
	if err := dedupe(errs...); err != nil {
		return UsageError{err}
	}
	return nil
}

var scrubberType = reflect.TypeFor[*httpx.Scrubber]()

// setScrubbers joins s into every settable *httpx.Scrubber field of v
// (the clients' Config.Scrub), nested structs included.
func setScrubbers(v reflect.Value, s *httpx.Scrubber, depth int) {
	if depth > 8 || !v.IsValid() {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() && v.Type() != scrubberType {
			setScrubbers(v.Elem(), s, depth+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			if !v.Type().Field(i).IsExported() || !f.CanSet() {
				continue
			}
			if f.Type() == scrubberType {
				cur, _ := f.Interface().(*httpx.Scrubber)
				f.Set(reflect.ValueOf(cur.Join(s)))
				continue
			}
			setScrubbers(f, s, depth+1)
		}
	}
}

func isJoin(err error, parts []error) bool {
	msgs := make([]string, 0, len(parts))
	for _, p := range parts {
		if p != nil {
			msgs = append(msgs, p.Error())
		}
	}
	return err.Error() == strings.Join(msgs, "\n")
}

// dedupe joins errs, flattening joined errors and dropping a problem
// already reported (two jobs reading the same THREATQ_ variables find the
// same problems).
func dedupe(errs ...error) error {
	var flat []error
	seen := map[string]bool{}
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		// Only an errors.Join (its message is its errors' lines) is taken
		// apart; an error wrapping several keeps its own words.
		if j, ok := err.(interface{ Unwrap() []error }); ok && isJoin(err, j.Unwrap()) { //nolint:errorlint // taking a join apart, not inspecting it
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if msg := err.Error(); !seen[msg] {
			seen[msg] = true
			flat = append(flat, err)
		}
	}
	for _, err := range errs {
		walk(err)
	}
	return errors.Join(flat...)
}

// busVars is the NATS_ variables, validated as they are parsed.
type busVars struct {
	Bus bus.Config `envPrefix:"NATS_"`
}

func (v busVars) Validate() error { return v.Bus.Validate() }

// BusConfig parses and validates the NATS_ variables.
func (e *Env) BusConfig() (bus.Config, error) {
	var c busVars
	err := e.Parse(&c)
	return c.Bus, err
}

// Connect connects to NATS_URL and makes sure the topology exists.
func (e *Env) Connect(ctx context.Context, c bus.Config, name string) (*bus.Bus, error) {
	c.Name = name
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	b, err := bus.Connect(cctx, c, e.Log)
	if err != nil {
		return nil, err
	}
	if err := bus.NewTopology(c).Ensure(cctx, b.JetStream()); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// Command is a subcommand: it declares its own flags on fs and runs.
type Command struct {
	Name, Summary, Usage string
	// Flags registers the command's own flags, beside the common ones.
	Flags func(fs *flag.FlagSet)
	// NoCommon leaves the common flags out (tools such as rules parse).
	NoCommon bool
	// Optional lists the optional common flags the command takes
	// (-n, --historical, --once, -ds); the others are refused.
	Optional CommonFlag
	// Config returns the configurations the command reads, built with
	// the defaults it applies, for its help: the variables and defaults
	// shown come from their env tags (see [Vars]).
	Config func() []any
	// EnvFiles are env files tried in turn, the first that exists read,
	// when neither -c nor --env-file is given (the seed connectors read
	// their configuration from the current directory by default).
	EnvFiles []string
	// ParsesFirst says Run parses its configuration before doing anything
	// else, so flag problems can wait to be reported with configuration
	// problems in one message.
	ParsesFirst bool
	// Known, when set, is every variable the program reads: a variable
	// with one of its prefixes that it does not know (a misspelt setting)
	// is a configuration error naming the nearest known one.
	Known *config.Known
	Run   func(ctx context.Context, env *Env) error
}

// Execute parses args for cmd, resolves the environment (environ, as
// KEY=VALUE strings; os.Environ() when nil) and runs it under a context
// that ends on SIGINT or SIGTERM. It returns the exit status.
func Execute(cmd Command, args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := &Env{}
	if !cmd.NoCommon {
		env.Common.register(fs, cmd.Optional)
		args = SeedArgs(args)
	}
	if cmd.Flags != nil {
		cmd.Flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nUsage: %s\n\nFlags:\n", cmd.Summary, cmd.Usage)
		fs.PrintDefaults()
		if cmd.Config != nil {
			PrintVars(stderr, Vars(cmd.Config()...))
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return ExitUsage
	}
	env.Args = fs.Args()
	if environ == nil {
		environ = os.Environ()
	}
	if env.Common.ConfigDir == "" && env.Common.EnvFile == "" {
		for _, f := range cmd.EnvFiles {
			if fileExists(f) {
				env.Common.EnvFile = f
				break
			}
		}
	}
	r, err := env.Common.resolve(stderr, environ)
	if cmd.Known != nil {
		err = errors.Join(err, cmd.Known.Check(r.Vars))
	}
	if err != nil && !cmd.ParsesFirst {
		fmt.Fprintf(stderr, "tqflow %s: configuration:\n%s\n", cmd.Name, indent(err))
		return ExitUsage
	}
	env.pending = err
	defer func() { _ = r.Close() }()
	env.Resolved = r
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	finished, watched := make(chan struct{}), make(chan struct{})
	defer func() { close(finished); <-watched }() // before stop, deferred first
	go func() {
		defer close(watched)
		// The first signal starts a graceful shutdown; handing the signals
		// back to the runtime makes a second one end the process at once,
		// whatever is still draining.
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		select {
		case <-finished: // Run returned first: no signal came
			return
		default:
		}
		stop()
		r.Log.Info("shutting down; a second signal ends the process at once")
	}()
	if err := cmd.Run(ctx, env); err != nil {
		if problems := usageProblems(err); problems != nil {
			fmt.Fprintf(stderr, "tqflow %s: configuration:\n%s\n", cmd.Name, indent(problems))
			return ExitUsage
		}
		r.Log.Error(cmd.Name+" stopped", "err", err)
		return 1
	}
	return 0
}

// indent prints one problem per line.
func indent(err error) string {
	var out []byte
	for _, line := range splitLines(err.Error()) {
		out = append(out, "  - "...)
		out = append(out, line...)
		out = append(out, '\n')
	}
	return string(out[:max(0, len(out)-1)])
}

func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			if i > start {
				lines = append(lines, s[start:i])
			}
			start = i + 1
		}
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}

// usageProblems returns the problems err reports when it is bad input
// found before anything started: a [UsageError], or a [*config.Error] a
// service returned. It returns nil for any other error.
func usageProblems(err error) error {
	var ue UsageError
	if errors.As(err, &ue) {
		return ue.Err
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return ce.Err
	}
	return nil
}

// JoinUsage joins usage errors (a [UsageError] or a [*config.Error]) into
// one, so that every problem shows at once; any other error is returned as
// it is.
func JoinUsage(errs ...error) error {
	var all []error
	for _, err := range errs {
		if problems := usageProblems(err); problems != nil {
			all = append(all, problems)
		} else if err != nil {
			return err
		}
	}
	if len(all) == 0 {
		return nil
	}
	return UsageError{Err: dedupe(all...)}
}

// ParseService parses a service's configuration and the NATS_ variables,
// reporting the problems of both at once.
func (e *Env) ParseService(cfg any) (bus.Config, error) {
	perr := e.Parse(cfg)
	bc, berr := e.BusConfig()
	return bc, JoinUsage(perr, berr)
}

// Service is what [Env.Serve] gives a service to run with.
type Service struct {
	// Bus is the NATS connection, with the topology in place. Every
	// handler a runner on it calls is timed on Metrics.
	Bus *bus.Bus
	// Metrics is the service's Prometheus metrics; its OnSettle goes in
	// the runner's options.
	Metrics *obs.Metrics
	// Wiring feeds Metrics and readiness from the service's workers, as
	// it does in tqflow run; its OnSuccess is the fetcher's success hook.
	Wiring *obs.Wiring
}

// AddCheck makes check part of the service's readiness: /readyz fails,
// naming name and the check's error, while it fails.
func (s Service) AddCheck(name string, check obs.Check) { s.Wiring.AddCheck(name, check) }

// Watch makes consumers part of the service's readiness (/readyz fails
// while one does not exist) and of its lag metrics ([obs.Wiring.Watch]).
func (s Service) Watch(specs ...bus.ConsumerSpec) { s.Wiring.Watch(specs...) }

// Serve is what a service's Main does: parse cfg, the NATS_ and METRICS_
// variables (every problem at once), connect as name with the topology in
// place, serve /metrics, /livez and /readyz on METRICS_ADDR, call run, and
// close everything after it.
func (e *Env) Serve(ctx context.Context, name string, cfg any, run func(Service) error) error {
	var mc struct {
		Metrics obs.Config `envPrefix:"METRICS_"`
	}
	bc, err := e.ParseService(cfg)
	if err := JoinUsage(err, e.Parse(&mc)); err != nil {
		return err
	}
	b, err := e.Connect(ctx, bc, name)
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	m := obs.New(name)
	srv, err := obs.NewServer(mc.Metrics, m, b)
	if err != nil {
		return UsageError{err}
	}
	// A port in use is fatal, before the service starts (issue 13).
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", mc.Metrics.Addr)
	if err != nil {
		return fmt.Errorf("metrics server (METRICS_ADDR): %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	e.Log.Info("serving metrics and health", "addr", ln.Addr().String())
	w := obs.Wire(sctx, m, srv, 0, b)
	runErr := run(Service{Bus: b, Metrics: m, Wiring: w})
	stop()
	return errors.Join(runErr, <-served)
}
