package cli

import (
	"context"
	"io"
	"path/filepath"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/schemas"
)

// seedJobs maps the seed connectors' executable names to the job each
// ran. make install and the packages link these names to tqflow.
// tq-emergingthreats is the name the ET guide's own crontab line uses.
var seedJobs = map[string]string{
	"tq-conn-ctr-enrichment":   schemas.JobCTR,
	"tq-misp-export":           schemas.JobMISP,
	"tq-conn-emerging-threats": schemas.JobET,
	"tq-emergingthreats":       schemas.JobET,
}

// SeedNames returns the seed executables' names tqflow answers to.
func SeedNames() []string {
	names := make([]string, 0, len(seedJobs))
	for n := range seedJobs {
		names = append(names, n)
	}
	return names
}

// SystemEnvFile is the env file the packages install.
const SystemEnvFile = "/etc/tqflow/tqflow.env"

// seedCommand is tqflow run --once for one job, under the seed's name and
// with the seed's flags. Without -c or --env-file it reads tqflow.env in
// the current directory, as the seeds did, else SystemEnvFile.
func seedCommand(prog, job string, stdout io.Writer) app.Command {
	run := runCommand(stdout)
	return app.Command{
		Name:        prog,
		Summary:     prog + ": one pass of tqflow's " + job + " job (tqflow run --once with JOBS=" + job + ")",
		Usage:       prog + " [-v 1-3] [-ll DIR|stdout] [-c DIR] [-n NAME] [-hist YYYY-MM-DD] [-ds]",
		ParsesFirst: true,
		Optional:    app.FlagInstance | app.FlagHistorical | app.FlagDisableSSL,
		Config:      runConfigs,
		EnvFiles:    []string{"tqflow.env", filepath.FromSlash(SystemEnvFile)},
		Run: func(ctx context.Context, env *app.Env) error {
			env.Vars["JOBS"] = job
			env.Common.Once = true
			return run.Run(ctx, env)
		},
	}
}
