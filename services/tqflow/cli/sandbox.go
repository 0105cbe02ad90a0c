package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
)

type sandboxFlags struct {
	seed       uint64
	indicators int
	share      float64
	rules      int
	host       string
	port       int
}

func (s *sandboxFlags) register(fs *flag.FlagSet, port int) {
	fs.Uint64Var(&s.seed, "seed", 1, "seed of the generated dataset")
	fs.IntVar(&s.indicators, "indicators", 5000, "indicators in the simulated ThreatQ")
	fs.Float64Var(&s.share, "context", 0.3, "share (0 to 1) of CTR-supported indicators CTR has context for")
	fs.IntVar(&s.rules, "rules", 300, "rules in the generated ET ruleset")
	fs.StringVar(&s.host, "host", "127.0.0.1", "address the simulators listen on")
	fs.IntVar(&s.port, "port", port, "ThreatQ's port; CTR, MISP and ET take the next three (0: free ports)")
}

func (s *sandboxFlags) start() (*sandbox.Sandbox, error) {
	if s.indicators < 0 || s.share < 0 || s.share > 1 || s.rules < 0 {
		return nil, app.UsageError{Err: fmt.Errorf("--indicators, --rules must be >= 0 and --context within 0 to 1")}
	}
	return sandbox.Start(sandbox.Options{
		Seed: s.seed, Indicators: s.indicators, ContextShare: s.share, Rules: s.rules,
		Host: s.host, BasePort: s.port,
	})
}

func sandboxCommand(stdout io.Writer) app.Command {
	var sf sandboxFlags
	return app.Command{
		Name:    "sandbox",
		Summary: "serve simulated ThreatQ, CTR, MISP and ET servers with a generated dataset",
		Usage:   "tqflow sandbox [--indicators N] [--context SHARE] [--rules N] [--port P] [--seed S]",
		Flags:   func(fs *flag.FlagSet) { sf.register(fs, 18080) },
		Run: func(ctx context.Context, env *app.Env) error {
			sb, err := sf.start()
			if err != nil {
				return err
			}
			defer sb.Close()
			fmt.Fprintf(stdout, "# tqflow sandbox: %d indicators (%d with CTR context), %d rules.\n", len(sb.Dataset.Indicators), len(sb.Dataset.WithContext), sf.rules)
			fmt.Fprintln(stdout, "# Point tqflow at it with these variables (e.g. as an env file):")
			vars := sb.Env()
			for _, k := range slices.Sorted(maps.Keys(vars)) {
				fmt.Fprintf(stdout, "%s=%s\n", k, vars[k])
			}
			fmt.Fprintln(stdout, "# Each simulator serves GET /_sim/ledger, /_sim/stats and GET|PUT /_sim/faults.")
			env.Log.Info("sandbox serving", "threatq", sb.ThreatQURL, "ctr", sb.CTRURL, "misp", sb.MISPURL, "et", sb.ETURL)
			<-ctx.Done()
			return nil
		},
	}
}

func demoCommand(stdout io.Writer) app.Command {
	var sf sandboxFlags
	var keep bool
	return app.Command{
		Name:    "demo",
		Summary: "run the jobs once against the sandbox on an embedded NATS server, with a summary",
		Usage:   "tqflow demo [--indicators N] [--context SHARE] [--keep]",
		Flags: func(fs *flag.FlagSet) {
			sf.register(fs, 0)
			fs.BoolVar(&keep, "keep", false, "keep the NATS store under .data/demo (it is wiped at the start either way)")
		},
		Run: func(ctx context.Context, env *app.Env) error {
			sb, err := sf.start()
			if err != nil {
				return err
			}
			defer sb.Close()
			// The sandbox's settings win over the environment: the demo
			// must never reach a real ThreatQ by accident.
			maps.Copy(env.Vars, sb.Env())
			dir := filepath.Join(".data", "demo")
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("demo: clear %s: %w", dir, err)
			}
			if !keep {
				defer func() { _ = os.RemoveAll(dir) }()
			}
			env.Vars["DATA_DIR"] = dir
			env.Vars["NATS_URL"] = ""
			env.Vars["JOBS"] = "ctr,misp"
			if sf.rules > 0 {
				env.Vars["JOBS"] += ",et"
			}
			var pc pipeline.Config
			var ec embeddedConfig
			if err := app.JoinUsage(pc.Parse(env), env.Parse(&ec)); err != nil {
				return err
			}
			b, shutdown, err := openBus(ctx, env, ec)
			if err != nil {
				return err
			}
			defer shutdown()
			p, err := pipeline.New(ctx, pc, pipeline.Buses{Default: b}, env.Log)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "sandbox: %d indicators in ThreatQ saved search %q, CTR knows %d of them\n\n",
				len(sb.Dataset.Indicators), sandbox.SavedSearch, len(sb.Dataset.WithContext))
			start := time.Now()
			s, err := p.RunOnce(ctx, env.Historical)
			s.Print(stdout)
			printLedger(stdout, sb.ThreatQ.Ledger, time.Since(start))
			return err
		},
	}
}

// printLedger says what the simulated ThreatQ recorded, as a check on the
// summary from the other side.
func printLedger(w io.Writer, l *sim.Ledger, elapsed time.Duration) {
	ops := map[string]int{}
	objects := map[string]bool{}
	for _, e := range l.Entries() {
		ops[e.Op]++
		objects[e.Object] = true
	}
	fmt.Fprintf(w, "\nThreatQ simulator ledger: %d attributes added, %d removed, %d statuses set, on %d objects (%s)\n",
		ops["attribute.add"], ops["attribute.delete"], ops["status.set"], len(objects), elapsed.Round(time.Millisecond))
}
