// Command tqflow runs the tqflow pipeline: every service in one process on
// an embedded NATS server (tqflow run), one service against a NATS server
// (tqflow enricher, ...), the simulators (tqflow sandbox), and the
// operator's tools. tqflow help lists them.
package main

import (
	"os"
	"path/filepath"

	"github.com/tqflow/tqflow/services/tqflow/cli"
)

func main() {
	os.Exit(cli.MainAs(filepath.Base(os.Args[0]), os.Args[1:], os.Stdout, os.Stderr))
}
