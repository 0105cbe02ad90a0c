// Package app is the process scaffolding every tqflow binary shares:
// signals, the seed connectors' flags, configuration, logging and NATS.
package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/logging"
)

// Common holds the flags every service subcommand takes. The short forms
// are the seed connectors' (-v, -ll, -c, -n, -hist, -ds), and so are their
// long forms (--verbosity, --loglocation, --config, --name, --historical),
// so that a seed's command line runs unchanged.
type Common struct {
	Verbosity  int
	LogTo      string
	ConfigDir  string
	EnvFile    string
	Instance   string
	Historical string
	Once       bool
	DisableSSL bool
	LogFormat  string
}

// CommonFlag names a common flag that only some commands take; the
// others (-v, -ll, -c, --env-file, --log-format) every command with common
// flags takes.
type CommonFlag uint

// The optional common flags.
const (
	// FlagInstance is -n/--name.
	FlagInstance CommonFlag = 1 << iota
	// FlagHistorical is -hist/--historical.
	FlagHistorical
	// FlagOnce is --once.
	FlagOnce
	// FlagDisableSSL is the MISP seed's -ds: MISP_DISABLE_SSL=true.
	FlagDisableSSL
)

// register adds the common flags to fs: the ones every command takes and
// those of opt.
func (c *Common) register(fs *flag.FlagSet, opt CommonFlag) {
	fs.IntVar(&c.Verbosity, "v", 2, "log verbosity: 0 errors, 1 warnings, 2 information, 3 everything (also -vN, --verbosity)")
	fs.IntVar(&c.Verbosity, "verbosity", 2, "same as -v")
	fs.StringVar(&c.LogTo, "ll", "stdout", "where logs go: stdout, or a directory to write tqflow.log in (also --loglocation)")
	fs.StringVar(&c.LogTo, "loglocation", "stdout", "same as -ll")
	fs.StringVar(&c.ConfigDir, "c", "", "configuration directory: its tqflow.env is read when present (also --config)")
	fs.StringVar(&c.ConfigDir, "config", "", "same as -c")
	fs.StringVar(&c.EnvFile, "env-file", "", "an env file of KEY=VALUE lines (overrides -c's tqflow.env)")
	fs.StringVar(&c.LogFormat, "log-format", "", "text or json (default: text on a terminal, json otherwise)")
	if opt&FlagInstance != 0 {
		fs.StringVar(&c.Instance, "n", "", "instance name (also --name; default from INSTANCE, else \"default\")")
		fs.StringVar(&c.Instance, "name", "", "same as -n")
	}
	if opt&FlagHistorical != 0 {
		fs.StringVar(&c.Historical, "historical", "", "re-read indicators updated since this date (YYYY-MM-DD), once")
		fs.StringVar(&c.Historical, "hist", "", "same as --historical")
	}
	if opt&FlagOnce != 0 {
		fs.BoolVar(&c.Once, "once", false, "run the fetch once, wait until the pipeline has processed it, print a summary and exit")
	}
	if opt&FlagDisableSSL != 0 {
		fs.BoolVar(&c.DisableSSL, "ds", false, "do not verify MISP's TLS certificate (the MISP seed's switch; sets MISP_DISABLE_SSL=true; also --disable-ssl)")
		fs.BoolVar(&c.DisableSSL, "disable-ssl", false, "same as -ds")
	}
}

// SeedArgs rewrites the seed connectors' glued verbosity, -vN (e.g. -v3),
// to -v=N, which the flag package understands. Arguments after "--" are
// left alone.
func SeedArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] == 'v' && allDigits(a[2:]) {
			a = "-v=" + a[2:]
		}
		out = append(out, a)
	}
	return out
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// Resolved is what the common flags and the environment resolve to.
type Resolved struct {
	Vars       map[string]string
	Instance   string
	Historical *time.Time
	Log        *slog.Logger
	closeLog   func() error

	// logScrub is what Log scrubs with; scrub holds every secret of the
	// configurations parsed so far.
	logScrub *logging.ScrubSet
	scrubMu  sync.Mutex
	scrub    *httpx.Scrubber
	warned   map[httpx.Warning]bool
}

// warnTransport logs, once each, the transport warnings of a parsed
// configuration: plain http allowed, certificate verification off.
func (r *Resolved) warnTransport(cfg any) {
	for _, w := range config.Find[interface{ TransportWarnings() []httpx.Warning }](cfg) {
		for _, tw := range w.TransportWarnings() {
			r.scrubMu.Lock()
			seen := r.warned[tw]
			if r.warned == nil {
				r.warned = map[httpx.Warning]bool{}
			}
			r.warned[tw] = true
			r.scrubMu.Unlock()
			if !seen && r.Log != nil {
				r.Log.Warn("transport security weakened", "system", tw.System, "setting", tw.Setting, "problem", tw.Problem)
			}
		}
	}
}

// Scrubber returns a scrubber of every secret of the configurations parsed
// so far (see [Env.ParseAll]): API clients apply it to server-supplied
// text, and the logger applies it to every record.
func (r *Resolved) Scrubber() *httpx.Scrubber {
	r.scrubMu.Lock()
	defer r.scrubMu.Unlock()
	return r.scrub
}

// addSecrets adds the secrets of a parsed configuration to the process's
// scrubber and to the logger's.
func (r *Resolved) addSecrets(cfg any) {
	add := httpx.NewScrubber(config.SecretsOf(cfg)...)
	for _, c := range config.Find[interface{ BasicCredentials() [][2]string }](cfg) {
		for _, p := range c.BasicCredentials() {
			add = add.WithBasic(p[0], p[1])
		}
	}
	if add.Empty() {
		return
	}
	r.scrubMu.Lock()
	r.scrub = r.scrub.Join(add)
	s := r.scrub
	r.scrubMu.Unlock()
	if r.logScrub != nil {
		r.logScrub.Set(s.String)
	}
}

// Close closes the log file, if any.
func (r *Resolved) Close() error {
	if r.closeLog != nil {
		return r.closeLog()
	}
	return nil
}

// resolve checks the flags, reads the configuration sources and builds the
// logger. It reports every problem it finds in one error.
func (c *Common) resolve(stderr io.Writer, environ []string) (*Resolved, error) {
	var errs []error
	r := &Resolved{}
	level, err := logging.LevelFromVerbosity(c.Verbosity)
	if err != nil {
		errs = append(errs, fmt.Errorf("-v: %w", err))
	}
	if c.Historical != "" {
		t, err := time.Parse(time.DateOnly, c.Historical)
		if err != nil {
			errs = append(errs, fmt.Errorf("--historical %q: want a date as YYYY-MM-DD", c.Historical))
		} else if t.After(time.Now()) {
			errs = append(errs, fmt.Errorf("--historical %s is in the future", c.Historical))
		} else {
			r.Historical = &t
		}
	}
	envFile := c.EnvFile
	if envFile == "" && c.ConfigDir != "" {
		if p := filepath.Join(c.ConfigDir, "tqflow.env"); fileExists(p) {
			envFile = p
		} else if !dirExists(c.ConfigDir) {
			errs = append(errs, fmt.Errorf("-c %s: no such directory", c.ConfigDir))
		}
	}
	vars, err := config.Source{Environ: environ, EnvFile: envFile}.Lookup()
	if err != nil {
		errs = append(errs, err)
	}
	if c.DisableSSL {
		vars["MISP_DISABLE_SSL"] = "true"
	}
	r.Vars = vars
	r.Instance = c.Instance
	if r.Instance == "" {
		r.Instance = vars["INSTANCE"]
	}
	if r.Instance == "" {
		r.Instance = "default"
	}
	if !bus.ValidToken(r.Instance) {
		errs = append(errs, fmt.Errorf("instance name %q: want 1 to 64 letters, digits, - or _", r.Instance))
	}
	var format logging.Format
	switch strings.ToLower(c.LogFormat) {
	case "":
	case "text":
		format = logging.FormatText
	case "json":
		format = logging.FormatJSON
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	var w io.Writer = stderr
	terminal := false
	if f, ok := stderr.(*os.File); ok {
		terminal = logging.IsTerminal(f)
	}
	switch c.LogTo {
	case "", "stdout", "-":
	default:
		if err := os.MkdirAll(c.LogTo, 0o750); err != nil {
			errs = append(errs, fmt.Errorf("-ll %s: %w", c.LogTo, err))
			break
		}
		f, err := logging.OpenFile(filepath.Join(c.LogTo, "tqflow.log"))
		if err != nil {
			errs = append(errs, fmt.Errorf("-ll %s: %w", c.LogTo, err))
			break
		}
		w, terminal, r.closeLog = f, false, f.Close
	}
	r.logScrub = &logging.ScrubSet{}
	r.Log = logging.New(w, logging.Options{Level: level, Format: format, Terminal: terminal, Scrub: r.logScrub})
	// The result is usable even with problems, so that they can be
	// reported together with the configuration's.
	return r, errors.Join(errs...)
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
