package cli

import (
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/obs"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
)

// ownPrefixes mark a variable as tqflow's: one of them on a variable no
// configuration reads is a configuration error (a misspelt setting would
// otherwise be ignored). They are the prefixes of the configuration
// structs, and the service names an operator may reach for (FETCHER_ for
// FETCH_). Left out on purpose: prefixes other software shares (DATA_,
// LOG_: tqflow reads no LOG_ variable, its level and format are flags) and
// TQFLOW_ (the tests' and docker-compose's own variables).
func ownPrefixes() []string {
	return []string{
		"THREATQ_", "CTR_", "MISP_", "ET_", "NATS_", "FETCH_", "FETCHER_", "EXPORTER_", "LOADER_",
		"SIGNATURE_LOADER_", "WRITER_", "ENRICHER_", "METRICS_",
	}
}

// knownVars returns every variable a tqflow command reads: the
// configurations of every service, of tqflow run's embedded server and of
// the metrics server, and the names read by hand.
func knownVars() (*config.Known, error) {
	var mc struct {
		Metrics obs.Config `envPrefix:"METRICS_"`
	}
	// docker-compose's own variables (.env.example's image names, the NATS
	// container's settings) reach the workers too when one .env is both
	// compose's and the env_file.
	extra := []string{"INSTANCE", "NATS_IMAGE", "NATS_MAX_STORE", "NATS_SERVER_NAME"}
	return config.NewKnown(ownPrefixes(), extra, &pipeline.Config{}, &embeddedConfig{}, &mc)
}
