package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/obs"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	exportersvc "github.com/tqflow/tqflow/services/exporter/service"
	fetchersvc "github.com/tqflow/tqflow/services/fetcher/service"
	loadersvc "github.com/tqflow/tqflow/services/signature-loader/service"
	writersvc "github.com/tqflow/tqflow/services/writer/service"
)

func fetcherCommand() app.Command {
	return app.Command{
		Name:        "fetcher",
		Summary:     "run the fetcher against NATS_URL",
		Usage:       "tqflow fetcher [--once] [--historical YYYY-MM-DD] [-n NAME] [flags]",
		ParsesFirst: true,
		Run:         fetchersvc.Main,
	}
}

func enricherCommand() app.Command {
	return app.Command{
		Name:        "enricher",
		Summary:     "run the CTR enricher against NATS_URL",
		Usage:       "tqflow enricher [-n NAME] [flags]",
		ParsesFirst: true,
		Run:         enrichersvc.Main,
	}
}

func writerCommand() app.Command {
	return app.Command{
		Name:        "writer",
		Summary:     "run the ThreatQ writer against NATS_URL",
		Usage:       "tqflow writer [flags]",
		ParsesFirst: true,
		Run:         writersvc.Main,
	}
}

func splitHostPort(hp string) (string, int, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: want 1 to 65535", ps)
	}
	return host, port, nil
}

func signatureLoaderCommand() app.Command {
	return app.Command{
		Name:        "signature-loader",
		Summary:     "run the ET signature-loader against NATS_URL",
		Usage:       "tqflow signature-loader [-n NAME] [flags]",
		ParsesFirst: true,
		Run: loadersvc.Main(func(ctx context.Context, env *app.Env, m *obs.Metrics) (loadersvc.Catalog, error) {
			return loadersvc.NewThreatQCatalog(ctx, env, m)
		}),
	}
}

func exporterCommand() app.Command {
	return app.Command{
		Name:        "exporter",
		Summary:     "run the MISP exporter against NATS_URL",
		Usage:       "tqflow exporter [-n NAME] [flags]",
		ParsesFirst: true,
		Run:         exportersvc.Main,
	}
}
