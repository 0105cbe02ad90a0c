// Command writer runs tqflow's writer against the NATS server at NATS_URL.
// It is the same service as tqflow writer; -h lists its flags.
package main

import (
	"os"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/services/writer/service"
)

func main() {
	os.Exit(app.Execute(app.Command{
		Name:        "writer",
		Summary:     "tqflow writer: see tqflow help",
		Usage:       "writer [flags]",
		ParsesFirst: true,
		Run:         service.Main,
	}, os.Args[1:], nil, os.Stdout, os.Stderr))
}
