package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/logging"
)

func TestNewFormats(t *testing.T) {
	t.Parallel()
	var js bytes.Buffer
	logging.New(&js, logging.Options{Level: slog.LevelInfo}).Info("hello", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(js.Bytes(), &rec); err != nil || rec["msg"] != "hello" {
		t.Errorf("auto format off a terminal must be JSON, got %q (%v)", js.String(), err)
	}
	var txt bytes.Buffer
	l := logging.New(&txt, logging.Options{Level: slog.LevelWarn, Format: logging.FormatText})
	l.Info("hidden")
	l.Warn("shown", "k", "v")
	if strings.Contains(txt.String(), "hidden") || !strings.Contains(txt.String(), "shown") || !strings.Contains(txt.String(), "k=v") {
		t.Errorf("text output = %q", txt.String())
	}
}

func TestLevelFromVerbosity(t *testing.T) {
	t.Parallel()
	for v, want := range []slog.Level{slog.LevelError, slog.LevelWarn, slog.LevelInfo, slog.LevelDebug} {
		got, err := logging.LevelFromVerbosity(v)
		if err != nil || got != want {
			t.Errorf("-v %d = %v, %v; want %v", v, got, err, want)
		}
	}
	if _, err := logging.LevelFromVerbosity(4); err == nil {
		t.Error("-v 4 must be an error")
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := logging.New(&buf, logging.Options{Format: logging.FormatJSON})
	ctx := logging.WithLogger(context.Background(), l.With("subject", "x"))
	logging.FromContext(ctx).Info("m")
	if !strings.Contains(buf.String(), `"subject":"x"`) {
		t.Errorf("FromContext lost the logger: %q", buf.String())
	}
	logging.FromContext(context.Background()).Info("discarded") // Must not panic.
}
