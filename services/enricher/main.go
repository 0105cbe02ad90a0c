// Command enricher runs tqflow's enricher against the NATS server at NATS_URL.
// It is the same service as tqflow enricher; -h lists its flags.
package main

import (
	"os"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/services/enricher/service"
)

func main() {
	os.Exit(app.Execute(app.Command{
		Name:        "enricher",
		Summary:     "tqflow enricher: see tqflow help",
		Usage:       "enricher [flags]",
		ParsesFirst: true,
		Run:         service.Main,
	}, os.Args[1:], nil, os.Stdout, os.Stderr))
}
