// Package cli is the tqflow command: its subcommands and the wiring of
// services into one process.
package cli

import (
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/tqflow/tqflow/pkg/app"
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
	}
	m := make(map[string]app.Command, len(cmds))
	for _, c := range cmds {
		m[c.Name] = c
	}
	return m
}

// Main runs the subcommand named by args[0] with the process environment
// and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	return MainEnv(args, nil, stdout, stderr)
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
