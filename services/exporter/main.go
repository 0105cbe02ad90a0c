// Command exporter runs tqflow's MISP exporter against the NATS server at
// NATS_URL. It is the same service as tqflow exporter; -h lists its flags.
package main

import (
	"os"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/services/exporter/service"
)

func main() {
	os.Exit(app.Execute(app.Command{
		Name:    "exporter",
		Summary: "tqflow exporter: see tqflow help",
		Usage:   "exporter [flags]",
		Run:     service.Main,
	}, os.Args[1:], nil, os.Stdout, os.Stderr))
}
