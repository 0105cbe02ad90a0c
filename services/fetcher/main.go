// Command fetcher runs tqflow's fetcher against the NATS server at NATS_URL.
// It is the same service as tqflow fetcher; -h lists its flags.
package main

import (
	"os"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/services/fetcher/service"
)

func main() {
	os.Exit(app.Execute(app.Command{
		Name:        "fetcher",
		Summary:     "tqflow fetcher: see tqflow help",
		Usage:       "fetcher [flags]",
		ParsesFirst: true,
		Run:         service.Main,
	}, os.Args[1:], nil, os.Stdout, os.Stderr))
}
