package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/testkit"
)

// listening starts an embedded server that listens on a free port, so that
// commands can connect through NATS_URL, and returns a bus on it with the
// topology in place, and the URL.
func listening(t *testing.T) (*bus.Bus, string) {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(), ServerName: "test", Port: -1}, nil)
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return bustest.Connect(t, srv), srv.ClientURL()
}

// execute runs cmd as tqflow would, against NATS at url, and returns its
// exit status and output.
func execute(t *testing.T, cmd app.Command, url string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = app.Execute(cmd, args, []string{"NATS_URL=" + url, "NATS_STREAM_MAX_AGE=1h", "NATS_DUPLICATE_WINDOW=2m"}, &out, &errb)
	return code, out.String(), errb.String()
}

// publish stores messages on subject with the given IDs, payload {"id":ID}.
func publish(t *testing.T, b *bus.Bus, subject string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := b.Publish(t.Context(), bus.Outgoing{Subject: subject, ID: id, Data: []byte(`{"id":"` + id + `"}`),
			Header: map[string][]string{bus.HeaderCorrelation: {"run-1"}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// makeDeadLetter makes the writer-like consumer "writer" dead-letter one
// message published on tq.writes.indicator with id, and returns the dead
// letter's sequence in DEADLETTER.
func makeDeadLetter(t *testing.T, b *bus.Bus, id string) uint64 {
	t.Helper()
	s, err := b.JetStream().Stream(t.Context(), bus.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	before := s.CachedInfo().State.LastSeq
	publish(t, b, bus.SubjectWriteIndicator, id)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- b.Run(ctx, bus.ConsumerSpec{Stream: bus.StreamWrites, Name: "writer"}, func(context.Context, *bus.Message) error {
			return bus.Permanent(errors.New("threatq: 422: attribute value too long"))
		}, bus.RunOptions{})
	}()
	var last uint64
	testkit.Eventually(t, func() bool {
		info, err := s.Info(t.Context())
		if err != nil {
			t.Errorf("dead-letter stream info: %v", err)
			return true
		}
		last = info.State.LastSeq
		return last > before
	}, 10*time.Second, "a dead letter")
	if t.Failed() {
		t.FailNow()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return last
}

// read returns every message stored on subject, in order.
func read(t *testing.T, b *bus.Bus, stream, subject string) []jetstream.Msg {
	t.Helper()
	var out []jetstream.Msg
	err := scan(t.Context(), b.JetStream(), stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}},
		func(m jetstream.Msg, _ *jetstream.MsgMetadata) (bool, error) {
			out = append(out, m)
			return true, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 2, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    time.Time
		wantErr bool
	}{
		{name: "RFC 3339", in: "2025-03-01T12:00:00Z", want: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)},
		{name: "RFC 3339 with offset", in: "2025-03-01T12:00:00+02:00", want: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)},
		{name: "date", in: "2025-03-01", want: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)},
		{name: "hours", in: "24h", want: now.Add(-24 * time.Hour)},
		{name: "minutes", in: "90m", want: now.Add(-90 * time.Minute)},
		{name: "days", in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{name: "negative", in: "-1h", wantErr: true},
		{name: "garbage", in: "yesterday", wantErr: true},
		{name: "bad date", in: "2025-13-01", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseWhen(tt.in, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseWhen(%q): %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && !got.Equal(tt.want) {
				t.Errorf("parseWhen(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseFlagsAnywhere(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		pos     []string
		dry     bool
		wantErr bool
	}{
		{name: "flags first", args: []string{"--dry-run", "redrive", "12"}, pos: []string{"redrive", "12"}, dry: true},
		{name: "flags last", args: []string{"redrive", "12", "--dry-run"}, pos: []string{"redrive", "12"}, dry: true},
		{name: "no flags", args: []string{"list"}, pos: []string{"list"}},
		{name: "unknown flag", args: []string{"list", "--nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newTestFlagSet()
			dry := fs.Bool("dry-run", false, "")
			pos, err := parseFlagsAnywhere(fs, tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			var ue app.UsageError
			if tt.wantErr && !errors.As(err, &ue) {
				t.Errorf("err %v is not a UsageError", err)
			}
			if tt.wantErr {
				return
			}
			if strings.Join(pos, " ") != strings.Join(tt.pos, " ") || *dry != tt.dry {
				t.Errorf("got %q dry-run %v, want %q %v", pos, *dry, tt.pos, tt.dry)
			}
		})
	}
}

// newTestFlagSet returns a silent flag set.
func newTestFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
