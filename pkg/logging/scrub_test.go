package logging_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/logging"
)

type shown struct{ s string }

func (s shown) String() string { return s.s }

func TestScrubHandler(t *testing.T) {
	t.Parallel()
	const key = "misp-key-0123456789"
	for _, format := range []logging.Format{logging.FormatJSON, logging.FormatText} {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			set := &logging.ScrubSet{}
			l := logging.New(&buf, logging.Options{Level: slog.LevelDebug, Format: format, Scrub: set})
			// Attributes bound before the secrets are known are scrubbed
			// when written.
			bound := l.With("early", "saw "+key).WithGroup("g")
			set.Set(httpx.NewScrubber(key).String)
			l.Info("server said "+key, "err", fmt.Errorf("call: %w", errors.New("401 "+key)),
				"s", key, "stringer", shown{key}, "bytes", []byte(key), "map", map[string]string{"k": key},
				slog.Group("grp", "inner", key), "n", 3)
			bound.Warn("x", "v", key)
			if out := buf.String(); strings.Contains(out, key) || strings.Count(out, httpx.Redacted) < 9 {
				t.Errorf("log output leaks or lost records:\n%s", out)
			}
			if !strings.Contains(buf.String(), "3") {
				t.Error("a number attribute was lost")
			}
		})
	}
}

func TestOpenFileRefusesSymlink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "tqflow.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if f, err := logging.OpenFile(link); err == nil {
		_ = f.Close()
		t.Fatal("a planted symlink was followed")
	}
	plain := filepath.Join(dir, "real.log")
	f, err := logging.OpenFile(plain)
	if err != nil {
		t.Fatalf("a plain file: %v", err)
	}
	_ = f.Close()
	if fi, err := os.Stat(plain); err != nil || fi.Mode().Perm() != 0o640&^0o022 && fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
}
