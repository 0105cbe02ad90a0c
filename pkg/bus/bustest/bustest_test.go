package bustest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
)

// TestStored publishes on two subjects of one stream and checks that
// Stored returns the messages of one subject only, all of them, in order.
func TestStored(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	if got := bustest.Stored(t, b, bus.StreamWrites, bus.SubjectWriteIndicator); len(got) != 0 {
		t.Fatalf("an empty stream: %d messages", len(got))
	}
	for i := range 7 {
		subject := bus.SubjectWriteIndicator
		if i%3 == 0 {
			subject = bus.SubjectWriteSignature
		}
		if err := b.Publish(ctx, bus.Outgoing{Subject: subject, ID: fmt.Sprint(i), Data: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, m := range bustest.Stored(t, b, bus.StreamWrites, bus.SubjectWriteIndicator) {
		got = append(got, string(m.Data()))
	}
	if want := "[1 2 4 5]"; fmt.Sprint(got) != want {
		t.Errorf("Stored = %v, want %s", got, want)
	}
}
