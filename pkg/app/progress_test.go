package app_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/app"
)

// TestProgressBarOnATerminal: on a terminal the step is drawn as a bar
// with its count, and ended with a new line.
func TestProgressBarOnATerminal(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	p := app.NewProgress(&w, nil, app.ProgressOptions{What: "fetch ctr", Unit: "indicators", Total: 200, Terminal: true})
	p.Add(100)
	p.Add(100)
	p.Done()
	p.Done()
	out := w.String()
	for _, want := range []string{"fetch ctr", "200/200", "100%"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar lacks %q: %q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\n") || strings.HasSuffix(out, "\n\n") {
		t.Errorf("bar not ended with a new line: %q", out)
	}
}

// TestProgressLogLinesElsewhere: off a terminal nothing is drawn, and a
// log line says how far the step is at most once per interval.
func TestProgressLogLinesElsewhere(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Unix(0, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var w, logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	p := app.NewProgress(&w, log, app.ProgressOptions{What: "replay", Unit: "messages", Total: -1, Interval: time.Second, Now: clock})
	p.Add(5) // before the interval: no line
	advance(time.Second)
	p.Add(5)
	advance(100 * time.Millisecond)
	p.Add(5) // too soon after the last line
	p.Done()
	if w.Len() != 0 {
		t.Errorf("drew on a non-terminal: %q", w.String())
	}
	if n := strings.Count(logs.String(), "msg=progress"); n != 1 {
		t.Errorf("%d log lines, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "step=replay done=10") {
		t.Errorf("log line: %s", logs.String())
	}
	var nilP *app.Progress
	nilP.Add(1)
	nilP.Done()
}

// TestProgressNothingCounted: a bar that counted nothing draws nothing.
func TestProgressNothingCounted(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	p := app.NewProgress(&w, nil, app.ProgressOptions{What: "parse rulesets", Unit: "lines", Total: -1, Terminal: true})
	p.Done()
	if w.Len() != 0 {
		t.Errorf("drew %q", w.String())
	}
}
