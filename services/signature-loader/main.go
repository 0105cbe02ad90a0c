// Command signature-loader runs tqflow's signature-loader against the NATS
// server at NATS_URL. It is the same service as tqflow signature-loader; -h
// lists its flags.
package main

import (
	"os"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/services/signature-loader/service"
)

func main() {
	os.Exit(app.Execute(app.Command{
		Name:        "signature-loader",
		Summary:     "tqflow signature-loader: see tqflow help",
		Usage:       "signature-loader [flags]",
		ParsesFirst: true,
		Run:         service.Main,
	}, os.Args[1:], nil, os.Stdout, os.Stderr))
}
