// Package logging builds tqflow's [slog.Logger]: coloured text through tint
// on a terminal, JSON otherwise, at a level from the seed connectors' -v
// flag or LOG_LEVEL; and carries a per-message logger in a context.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/lmittmann/tint"
)

// Format is how log records are written.
type Format string

// Formats.
const (
	// FormatAuto is text on a terminal, JSON otherwise.
	FormatAuto Format = ""
	FormatText Format = "text"
	FormatJSON Format = "json"
)

// Options configures [New].
type Options struct {
	// Level is the lowest level written.
	Level slog.Level
	// Format is the record format.
	Format Format
	// Terminal says whether w is a terminal, for FormatAuto.
	Terminal bool
	// Scrub, when not nil, replaces secrets in every record (see
	// [ScrubHandler]).
	Scrub *ScrubSet
}

// New returns a logger writing to w.
func New(w io.Writer, o Options) *slog.Logger {
	text := o.Format == FormatText || (o.Format == FormatAuto && o.Terminal)
	var h slog.Handler
	if text {
		h = tint.NewTextHandler(w, &tint.Options{
			Level:      o.Level,
			TimeFormat: time.TimeOnly,
			NoColor:    !o.Terminal,
		})
	} else {
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: o.Level})
	}
	if o.Scrub != nil {
		h = NewScrubHandler(h, o.Scrub)
	}
	return slog.New(h)
}

// OpenFile opens path for appending log records, creating it with mode
// 0640 if needed. It refuses a symbolic link (one planted where the log
// goes would make tqflow write wherever it points) and anything that is
// not a regular file.
func OpenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open log file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("open log file %s: not a regular file", path)
	}
	return f, nil
}

// LevelFromVerbosity maps the seed connectors' -v flag to a level: 0 errors
// only, 1 warnings, 2 information, 3 everything.
func LevelFromVerbosity(v int) (slog.Level, error) {
	switch v {
	case 0:
		return slog.LevelError, nil
	case 1:
		return slog.LevelWarn, nil
	case 2:
		return slog.LevelInfo, nil
	case 3:
		return slog.LevelDebug, nil
	}
	return 0, fmt.Errorf("verbosity %d: want 0 to 3", v)
}

// ParseLevel reads a level name: debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type ctxKey struct{}

// WithLogger returns ctx carrying l.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// FromContext returns the logger ctx carries, or a logger that discards.
func FromContext(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
