package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
)

// A single host is one system: tqflow run records where its embedded
// server listens, and with which credentials, in DATA_DIR/nats/context.json
// (mode 0600), and the operator commands on the same host find it there
// when NATS_URL is not set. The file is a nats CLI context, so
// `nats --context DATA_DIR/nats/context.json ...` reaches the same server.
// tqflow run removes it when it stops.

// localContextName is the file's name under DATA_DIR/nats.
const localContextName = "context.json"

// localContext is a nats CLI context file: the fields the CLI reads.
type localContext struct {
	Description string `json:"description"`
	URL         string `json:"url"`
	User        string `json:"user,omitempty"`
	Password    string `json:"password,omitempty"`
	Token       string `json:"token,omitempty"`
	NKey        string `json:"nkey,omitempty"`
}

// dataDirConfig is where tqflow run keeps its data.
type dataDirConfig struct {
	DataDir string `env:"DATA_DIR" envDefault:".data"`
}

func localContextPath(dataDir string) (string, error) {
	p, err := filepath.Abs(filepath.Join(dataDir, "nats", localContextName))
	if err != nil {
		return "", fmt.Errorf("DATA_DIR %s: %w", dataDir, err)
	}
	return p, nil
}

// writeLocalContext writes lc to path with mode 0600, atomically: a
// reader sees the old file or the new one, never half of one.
func writeLocalContext(path string, lc localContext) error {
	data, err := json.MarshalIndent(lc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".context-*.json") // Mode 0600.
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := f.Write(append(data, '\n'))
	if err := errors.Join(werr, f.Chmod(0o600), f.Close()); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readLocalContext reads what tqflow run recorded; fs.ErrNotExist when
// nothing was.
func readLocalContext(path string) (localContext, error) {
	var lc localContext
	data, err := os.ReadFile(path)
	if err != nil {
		return lc, err
	}
	if err := json.Unmarshal(data, &lc); err != nil {
		return lc, fmt.Errorf("read %s: %w", path, err)
	}
	if lc.URL == "" {
		return lc, fmt.Errorf("read %s: no url", path)
	}
	return lc, nil
}

// SystemDataDir is the packaged unit's DATA_DIR (StateDirectory=tqflow):
// with DATA_DIR unset, the operator commands look there after ./.data, so
// that "sudo tqflow status" finds the tqflow run systemd started.
const SystemDataDir = "/var/lib/tqflow"

// findLocalContext reads the first tqflow run recorded under dirs, in
// turn, and returns where it was found.
func findLocalContext(dirs []string) (string, localContext, error) {
	var tried []string
	for _, dir := range dirs {
		path, err := localContextPath(dir)
		if err != nil {
			return "", localContext{}, app.UsageError{Err: err}
		}
		lc, err := readLocalContext(path)
		switch {
		case err == nil:
			return path, lc, nil
		case errors.Is(err, fs.ErrPermission):
			return "", localContext{}, fmt.Errorf("read tqflow run's record %s (its user's and root's only: sudo?): %w", path, err)
		case !errors.Is(err, fs.ErrNotExist):
			return "", localContext{}, err
		}
		tried = append(tried, path)
	}
	return "", localContext{}, fmt.Errorf("%w: NATS_URL is not set and no tqflow run is recorded under DATA_DIR (no %s): start tqflow run there, or set DATA_DIR or NATS_URL",
		ErrNothingRunning, strings.Join(tried, ", no "))
}

// apply returns bc pointed at the recorded server with its credentials.
func (lc localContext) apply(bc bus.Config) bus.Config {
	bc.URL, bc.User, bc.Password, bc.Token, bc.NKeySeedFile, bc.CredsFile = lc.URL, lc.User, config.Secret(lc.Password), config.Secret(lc.Token), lc.NKey, ""
	return bc
}

// localWait bounds how long an operator command waits for the recorded
// server: it is on this host, so it answers at once or not at all.
const localWait = 3 * time.Second

// connectOps parses the NATS_ variables and connects as tqflow-<name>: to
// NATS_URL when set, else to the tqflow run recorded under DATA_DIR.
func connectOps(ctx context.Context, env *app.Env, name string) (*bus.Bus, error) {
	var dc dataDirConfig
	bc, err := env.ParseService(&dc)
	if err != nil {
		return nil, err
	}
	if bc.URL != "" {
		return env.Connect(ctx, bc, "tqflow-"+name)
	}
	dirs := []string{dc.DataDir}
	if _, set := env.Vars["DATA_DIR"]; !set {
		dirs = append(dirs, SystemDataDir)
	}
	path, lc, err := findLocalContext(dirs)
	if err != nil {
		return nil, err
	}
	bc = lc.apply(bc)
	bc.ConnectWait = localWait
	b, err := env.Connect(ctx, bc, "tqflow-"+name)
	if errors.Is(err, bus.ErrAuth) || ctx.Err() != nil {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: the tqflow run recorded in %s does not answer at %s (it stopped without removing the file?): %w", ErrNothingRunning, path, lc.URL, err)
	}
	return b, nil
}

// ErrNothingRunning is an operator command finding no tqflow run to talk
// to on this host.
var ErrNothingRunning = errors.New("no tqflow run is running here")
