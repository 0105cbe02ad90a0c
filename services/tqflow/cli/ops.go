package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/app"
)

// The operator commands (status, dlq, replay, healthcheck) live in the
// ops*.go files. They connect to NATS_URL like any service, do one thing
// and exit.

// parseFlagsAnywhere parses args with fs, letting flags come after
// positional arguments too ("dlq show 12 --json"), and returns the
// positional ones. Flag errors are [app.UsageError]s.
func parseFlagsAnywhere(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, app.UsageError{Err: err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseWhen reads a point in time: RFC 3339, a date (YYYY-MM-DD, midnight
// UTC), or a duration before now ("24h", "90m", "7d").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2025-03-01T12:00:00Z), a date (2025-03-01) or a duration before now (24h, 7d)", s)
}

// scan reads stream's messages that cfg selects, in order, calling fn for
// each until fn returns false. It stops at the last message the stream
// held when the scan started, so messages published meanwhile (a replay's
// own copies) are not read. An ordered consumer reads: it is ephemeral,
// needs no acks, and leaves the durable consumers alone.
func scan(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, fn func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error)) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", stream, err)
	}
	last := s.CachedInfo().State.LastSeq
	if s.CachedInfo().State.Msgs == 0 {
		return nil
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	defer it.Stop()
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		return nil
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read stream %s: %w", stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read stream %s: %w", stream, err)
		}
		if md.Sequence.Stream > last {
			return nil
		}
		more, err := fn(m, md)
		if err != nil || !more || md.NumPending == 0 || md.Sequence.Stream >= last {
			return err
		}
	}
}

// copyHeader returns h without the server's Nats-* headers (the message
// ID among them, which the copy gets anew).
func copyHeader(h nats.Header) nats.Header {
	out := nats.Header{}
	for k, v := range h {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}

// when formats a time for tables: UTC to the second, "-" when zero.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
