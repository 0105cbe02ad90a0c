package cli

import (
	"context"

	"github.com/tqflow/tqflow/pkg/app"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	exportersvc "github.com/tqflow/tqflow/services/exporter/service"
	fetchersvc "github.com/tqflow/tqflow/services/fetcher/service"
	loadersvc "github.com/tqflow/tqflow/services/signature-loader/service"
	writersvc "github.com/tqflow/tqflow/services/writer/service"
)

// serviceCommand runs one service as a process of its own: it parses its
// configuration first, so flag problems are reported with it.
func serviceCommand(name, summary, usage string, run func(context.Context, *app.Env) error) app.Command {
	return app.Command{Name: name, Summary: summary, Usage: usage, ParsesFirst: true, Run: run}
}

func fetcherCommand() app.Command {
	return serviceCommand("fetcher", "run the fetcher against NATS_URL",
		"tqflow fetcher [--once] [--historical YYYY-MM-DD] [-n NAME] [flags]", fetchersvc.Main)
}

func enricherCommand() app.Command {
	return serviceCommand("enricher", "run the CTR enricher against NATS_URL", "tqflow enricher [-n NAME] [flags]", enrichersvc.Main)
}

func writerCommand() app.Command {
	return serviceCommand("writer", "run the ThreatQ writer against NATS_URL", "tqflow writer [flags]", writersvc.Main)
}

func signatureLoaderCommand() app.Command {
	return serviceCommand("signature-loader", "run the ET signature-loader against NATS_URL", "tqflow signature-loader [-n NAME] [flags]",
		loadersvc.Main)
}

func exporterCommand() app.Command {
	return serviceCommand("exporter", "run the MISP exporter against NATS_URL", "tqflow exporter [-n NAME] [flags]", exportersvc.Main)
}
