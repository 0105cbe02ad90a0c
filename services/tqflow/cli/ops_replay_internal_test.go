package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
)

// TestReplay publishes three groups of messages a moment apart and
// replays the middle one: exactly its messages come back, marked, with new
// IDs; a dry run publishes nothing; the same replay ID again is stored
// once; and a later replay skips the copies.
func TestReplay(t *testing.T) {
	t.Parallel()
	b, url := listening(t)
	subject := bus.IndicatorSubject("ctr", "default")
	publish(t, b, subject, "ctr:default:1:100", "ctr:default:2:100")
	publish(t, b, bus.IndicatorSubject("misp", "default"), "misp:default:1:100")
	// The subject: gaps in the server's wall-clock stamps (which no test can
	// inject), for the replay window to fall between.
	time.Sleep(50 * time.Millisecond)
	since := time.Now()
	publish(t, b, subject, "ctr:default:3:200", "ctr:default:4:200")
	publish(t, b, bus.IndicatorSubject("misp", "default"), "misp:default:3:200")
	time.Sleep(50 * time.Millisecond) // The subject: the gap before the window closes.
	until := time.Now()
	time.Sleep(50 * time.Millisecond) // The subject: the gap after it.
	publish(t, b, subject, "ctr:default:5:300")

	window := []string{"--subject", subject, "--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano)}
	var out strings.Builder
	code, _, errs := execute(t, replayCommand(&out, &strings.Builder{}), url, append(window, "--dry-run")...)
	if code != 0 {
		t.Fatalf("replay --dry-run: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"ctr:default:3:200", "ctr:default:4:200", "would replay (dry run) 2"} {
		if !strings.Contains(squash(out.String()), want) {
			t.Errorf("dry run does not show %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "ctr:default:1:100") || strings.Contains(out.String(), "ctr:default:5:300") {
		t.Errorf("dry run lists messages outside the range:\n%s", out.String())
	}
	if got := len(read(t, b, bus.StreamIndicators, subject)); got != 5 {
		t.Fatalf("after a dry run %d messages on %s, want 5", got, subject)
	}

	out.Reset()
	code, _, errs = execute(t, replayCommand(&out, &strings.Builder{}), url, append(window, "--id", "r1")...)
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, errs)
	}
	if got := squash(out.String()); !strings.Contains(got, "\nreplayed 2\n") || !strings.Contains(got, "\nstored 2\n") {
		t.Errorf("replay output:\n%s", out.String())
	}
	msgs := read(t, b, bus.StreamIndicators, subject)
	if len(msgs) != 7 {
		t.Fatalf("%d messages on %s after the replay, want 5 and 2 copies", len(msgs), subject)
	}
	for i, want := range []string{"ctr:default:3:200:replay:r1", "ctr:default:4:200:replay:r1"} {
		m := msgs[5+i]
		if id := m.Headers().Get("Nats-Msg-Id"); id != want {
			t.Errorf("copy %d has ID %q, want %q", i, id, want)
		}
		if r := m.Headers().Get(bus.HeaderReplay); r != "r1" {
			t.Errorf("copy %d has %s %q, want r1", i, bus.HeaderReplay, r)
		}
		if h := m.Headers().Get(bus.HeaderCorrelation); h != "run-1" {
			t.Errorf("copy %d lost its correlation ID: %q", i, h)
		}
	}
	if got := len(read(t, b, bus.StreamIndicators, bus.IndicatorSubject("misp", "default"))); got != 2 {
		t.Errorf("another subject changed: %d messages, want 2", got)
	}

	// The same replay again (say it was interrupted): stored once.
	o, err := resolveReplay(subject, since.Format(time.RFC3339Nano), until.Format(time.RFC3339Nano), "r1", false, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := replay(t.Context(), b, o, &strings.Builder{}, nil)
	if err != nil || res.Replayed != 2 || res.Duplicates != 2 {
		t.Errorf("replay r1 again: %v %+v, want 2 replayed, both duplicates", err, res)
	}

	// Everything since the start, with the copies: they are skipped.
	o.since, o.until, o.id = since.Add(-time.Hour), time.Now(), "r2"
	res, err = replay(t.Context(), b, o, &strings.Builder{}, nil)
	if err != nil || res.Read != 7 || res.Skipped != 2 || res.Replayed != 5 || res.Stored != 5 {
		t.Errorf("replay r2: %v %+v, want 7 read, 2 skipped, 5 replayed and stored", err, res)
	}
}

// TestReplayEmptyRange replays a range with nothing in it, and returns.
func TestReplayEmptyRange(t *testing.T) {
	t.Parallel()
	b, _ := listening(t)
	subject := bus.IndicatorSubject("ctr", "default")
	publish(t, b, subject, "a")
	o, err := resolveReplay(subject, "1h", "", "", false, nil, time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	res, err := replay(t.Context(), b, o, &strings.Builder{}, nil)
	if err != nil || res.Read != 0 || res.Replayed != 0 {
		t.Errorf("empty range: %v %+v", err, res)
	}
	// A subject no stream holds.
	o.subject = "nowhere.at.all"
	if _, err := replay(t.Context(), b, o, &strings.Builder{}, nil); err == nil {
		t.Error("replay of a subject no stream holds: no error")
	}
}

func TestResolveReplay(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name                string
		subject, since, til string
		args                []string
		want                []string // substrings of the error; none: valid
	}{
		{name: "yesterday", subject: "tq.indicators.ctr.default", since: "2025-03-01", til: "2025-03-02"},
		{name: "last day", subject: "tq.indicators.ctr.default", since: "24h"},
		{name: "nothing", want: []string{"--subject: required", "--since: required"}},
		{name: "dead letters", subject: "dlq.WRITES.writer", since: "1h", want: []string{"redrive"}},
		{name: "until before since", subject: "x", since: "2025-03-02", til: "2025-03-01", want: []string{"not after"}},
		{name: "bad times", subject: "x", since: "soon", til: "later", want: []string{"--since", "--until"}},
		{name: "stray argument", subject: "x", since: "1h", args: []string{"now"}, want: []string{"unexpected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := resolveReplay(tt.subject, tt.since, tt.til, "", false, tt.args, now)
			if len(tt.want) == 0 {
				if err != nil || o.id == "" || !o.until.After(o.since) {
					t.Errorf("resolveReplay: %v %+v", err, o)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q: %v", w, err)
				}
			}
		})
	}
}

// squash collapses runs of spaces, for checking tables.
func squash(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}
