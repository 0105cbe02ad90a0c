// Package cli is the tqflow command: its subcommands and the wiring of
// services into one process.
package cli

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/obs"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	exportersvc "github.com/tqflow/tqflow/services/exporter/service"
	fetchersvc "github.com/tqflow/tqflow/services/fetcher/service"
	loadersvc "github.com/tqflow/tqflow/services/signature-loader/service"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
	writersvc "github.com/tqflow/tqflow/services/writer/service"
)

// commands returns every subcommand, by name.
func commands(stdout, stderr io.Writer) map[string]app.Command {
	cmds := []app.Command{
		runCommand(stdout),
		demoCommand(stdout),
		sandboxCommand(stdout),
		fetcherCommand(),
		enricherCommand(),
		writerCommand(),
		signatureLoaderCommand(),
		exporterCommand(),
		rulesCommand(stdout, stderr),
		statusCommand(stdout),
		dlqCommand(stdout),
		replayCommand(stdout, stderr),
		healthcheckCommand(stdout),
		initCommand(os.Stdin, stdout),
	}
	m := make(map[string]app.Command, len(cmds))
	for _, c := range cmds {
		if o, ok := commandOptions[c.Name]; ok {
			c.Optional = o.optional
			c.Config = o.config
		}
		m[c.Name] = c
	}
	return m
}

// commandOption is what a command takes beyond its own flags: the optional
// common flags, and the configurations it reads (for its help).
type commandOption struct {
	optional app.CommonFlag
	config   func() []any
}

// natsVars and metricsVars are the NATS_ and METRICS_ configurations, as
// the services nest them.
type natsVars struct {
	Bus bus.Config `envPrefix:"NATS_"`
}

type metricsVars struct {
	Metrics obs.Config `envPrefix:"METRICS_"`
}

// runMetricsVars is the METRICS_ configuration as tqflow run reads it: on
// the loopback unless METRICS_ADDR says otherwise, one host being served,
// not every interface. Containers set METRICS_ADDR=:9090.
type runMetricsVars struct {
	Metrics obs.Config `envPrefix:"METRICS_" envDefaults:"ADDR=127.0.0.1:9090"`
}

// commandOptions is, by command, the common flags it takes and the
// configurations it reads, in one place.
var commandOptions = map[string]commandOption{
	"run":  {app.FlagInstance | app.FlagHistorical | app.FlagOnce | app.FlagDisableSSL, runConfigs},
	"demo": {app.FlagHistorical, nil},
	"fetcher": {app.FlagInstance | app.FlagHistorical | app.FlagOnce, func() []any {
		return []any{&fetchersvc.Config{}, &natsVars{}, &metricsVars{}}
	}},
	"enricher": {app.FlagInstance, func() []any {
		return []any{&enrichersvc.Config{}, &natsVars{}, &metricsVars{}}
	}},
	"writer": {0, func() []any {
		return []any{&writersvc.Config{}, &natsVars{}, &metricsVars{}}
	}},
	"signature-loader": {app.FlagInstance, func() []any {
		return []any{&loadersvc.Config{}, &natsVars{}, &metricsVars{}}
	}},
	"exporter": {app.FlagInstance | app.FlagDisableSSL, func() []any {
		return []any{&exportersvc.Config{}, &natsVars{}, &metricsVars{}}
	}},
	"status": {0, natsConfigs},
	"dlq":    {0, natsConfigs},
	"replay": {0, natsConfigs},
}

func natsConfigs() []any { return []any{&natsVars{}} }

// runConfigs is what tqflow run reads, with its defaults: metrics on the
// loopback.
func runConfigs() []any {
	return []any{&pipeline.Config{}, &embeddedConfig{}, &runMetricsVars{}}
}

// Main runs the subcommand named by args[0] with the process environment
// and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	return MainEnv(args, nil, stdout, stderr)
}

// MainAs is Main for a process started under the name prog (argv[0]'s
// base): under a seed connector's name (tq-misp-export, ...) it runs that
// job's one pass with the seed's command line, so that a crontab line
// written for the seed works unchanged.
func MainAs(prog string, args []string, stdout, stderr io.Writer) int {
	return MainAsEnv(prog, args, nil, stdout, stderr)
}

// MainAsEnv is MainAs with the environment given as KEY=VALUE strings.
func MainAsEnv(prog string, args, environ []string, stdout, stderr io.Writer) int {
	if job, ok := seedJobs[prog]; ok {
		return app.Execute(seedCommand(prog, job, stdout), args, environ, stdout, stderr)
	}
	return MainEnv(args, environ, stdout, stderr)
}

// MainEnv is Main with the environment given as KEY=VALUE strings.
func MainEnv(args, environ []string, stdout, stderr io.Writer) int {
	cmds := commands(stdout, stderr)
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, cmds)
		return 0
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "tqflow", version())
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tqflow: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return app.ExitUsage
	}
	// Unknown variables are refused, except by the health check, a probe
	// that also runs in the NATS container beside the server's own NATS_
	// variables.
	if cmd.Name != "healthcheck" {
		known, err := knownVars()
		if err != nil {
			fmt.Fprintf(stderr, "tqflow: %v\n", err)
			return 1
		}
		cmd.Known = known
	}
	return app.Execute(cmd, args[1:], environ, stdout, stderr)
}

func usage(w io.Writer, cmds map[string]app.Command) {
	fmt.Fprint(w, `tqflow moves threat intelligence between ThreatQ, Cisco Threat Response,
MISP and Emerging Threats, as a pipeline of small workers on NATS JetStream.

Usage: tqflow <command> [flags]

Commands:
`)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-18s %s\n", n, cmds[n].Summary)
	}
	fmt.Fprint(w, `  version            print the version

Configuration comes from the environment (see .env.example), an env file
(--env-file, or tqflow.env in the -c directory), and NAME_FILE variables for
secrets. Run tqflow <command> -h for a command's flags.
`)
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value[:min(12, len(s.Value))]
		}
	}
	return strings.TrimSpace(v)
}
