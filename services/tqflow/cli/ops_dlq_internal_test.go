package cli

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
)

// TestDLQ dead-letters a real message, then lists, shows and redrives it
// through the command, as an operator would once the cause is fixed.
func TestDLQ(t *testing.T) {
	t.Parallel()
	b, url := listening(t)
	seq := makeDeadLetter(t, b, "w:default:42:abc")
	s := strconv.FormatUint(seq, 10)

	var sb strings.Builder
	if code := execList(t, &sb, url); code != 0 {
		t.Fatalf("dlq list: exit %d", code)
	}
	for _, want := range []string{s, "WRITES/writer", bus.SubjectWriteIndicator, "permanent", "422: attribute value too long"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("dlq list does not show %q:\n%s", want, sb.String())
		}
	}
	sb.Reset()
	if code, _, errs := execute(t, dlqCommand(&sb), url, "list", "--consumer", "enricher-ctr-default"); code != 0 || strings.Contains(sb.String(), "WRITES/writer") {
		t.Errorf("dlq list --consumer of another consumer: exit %d, output\n%s%s", code, sb.String(), errs)
	}

	sb.Reset()
	if code, _, errs := execute(t, dlqCommand(&sb), url, "show", s); code != 0 {
		t.Fatalf("dlq show: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"dead letter: " + s, "message id:  w:default:42:abc", "Tqflow-Correlation-Id: run-1", "payload (", `"id": "w:default:42:abc"`} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("dlq show does not show %q:\n%s", want, sb.String())
		}
	}

	sb.Reset()
	if code, _, errs := execute(t, dlqCommand(&sb), url, "redrive", s, "--dry-run"); code != 0 || !strings.Contains(sb.String(), "would redrive: 1") {
		t.Fatalf("dlq redrive --dry-run: exit %d, output\n%s%s", code, sb.String(), errs)
	}
	if got := read(t, b, bus.StreamWrites, bus.SubjectWriteIndicator); len(got) != 1 {
		t.Fatalf("after a dry run, %d messages on the subject, want the 1 original", len(got))
	}

	sb.Reset()
	if code, _, errs := execute(t, dlqCommand(&sb), url, "redrive", s); code != 0 || !strings.Contains(sb.String(), "redriven: 1") {
		t.Fatalf("dlq redrive: exit %d, output\n%s%s", code, sb.String(), errs)
	}
	got := read(t, b, bus.StreamWrites, bus.SubjectWriteIndicator)
	if len(got) != 2 {
		t.Fatalf("after a redrive, %d messages on the subject, want the original and its copy", len(got))
	}
	c := got[1]
	if id := c.Headers().Get("Nats-Msg-Id"); id != "redrive:"+s {
		t.Errorf("copy's message ID %q, want redrive:%s", id, s)
	}
	if h := c.Headers().Get(bus.HeaderRedrive); h != s {
		t.Errorf("copy's %s header %q, want %s", bus.HeaderRedrive, h, s)
	}
	if h := c.Headers().Get(bus.HeaderCorrelation); h != "run-1" {
		t.Errorf("copy lost its correlation ID: %q", h)
	}
	if string(c.Data()) != `{"id":"w:default:42:abc"}` {
		t.Errorf("copy's payload %s", c.Data())
	}
	sb.Reset()
	if code := execList(t, &sb, url); code != 0 || strings.Contains(sb.String(), "WRITES/writer") {
		t.Errorf("the redriven dead letter is still listed (exit %d):\n%s", code, sb.String())
	}
	if code, _, _ := execute(t, dlqCommand(&sb), url, "show", s); code != 1 {
		t.Errorf("dlq show of a redriven dead letter: exit %d, want 1", code)
	}
}

func execList(t *testing.T, sb *strings.Builder, url string) int {
	t.Helper()
	code, _, _ := execute(t, dlqCommand(sb), url, "list")
	return code
}

// TestDLQRedriveAll redrives every dead letter of one consumer, and a
// second redrive of the same dead letter (say the delete was lost) is
// stored once.
func TestDLQRedriveAll(t *testing.T) {
	t.Parallel()
	b, _ := listening(t)
	first := makeDeadLetter(t, b, "w:1")
	second := makeDeadLetter(t, b, "w:2")
	var sb strings.Builder
	o := dlqOptions{consumer: "writer", all: true}
	dls, err := listDeadLetters(t.Context(), b.JetStream(), o)
	if err != nil || len(dls) != 2 || dls[0].Seq != first || dls[1].Seq != second {
		t.Fatalf("listDeadLetters: %v %+v, want %d and %d", err, dls, first, second)
	}
	// Publish the first copy as an interrupted redrive would have.
	if err := b.Publish(t.Context(), bus.Outgoing{Subject: bus.SubjectWriteIndicator, ID: redriveID(first), Data: dls[0].Data}); err != nil {
		t.Fatal(err)
	}
	if err := dlqRedrive(t.Context(), b, o, nil, &sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "redriven: 2") {
		t.Errorf("output:\n%s", sb.String())
	}
	if got := read(t, b, bus.StreamWrites, bus.SubjectWriteIndicator); len(got) != 4 {
		t.Errorf("%d messages on the subject, want 2 originals and 2 copies", len(got))
	}
	if dls, err := listDeadLetters(t.Context(), b.JetStream(), dlqOptions{}); err != nil || len(dls) != 0 {
		t.Errorf("dead letters left: %v %+v", err, dls)
	}
}

func TestDLQUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{name: "no action", args: nil},
		{name: "unknown action", args: []string{"purge"}},
		{name: "show without seq", args: []string{"show"}},
		{name: "show bad seq", args: []string{"show", "x"}},
		{name: "redrive seq and all", args: []string{"redrive", "3", "--all"}},
		{name: "redrive nothing", args: []string{"redrive"}},
		{name: "bad consumer", args: []string{"list", "--consumer", "a.b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// No server: usage errors come before connecting.
			code, _, errs := execute(t, dlqCommand(&strings.Builder{}), "nats://127.0.0.1:1", tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, errs)
			}
		})
	}
}
