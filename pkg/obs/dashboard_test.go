package obs_test

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/obs"
)

// TestDashboardNames checks that every tqflow_ metric the Grafana
// dashboard queries is one obs exposes.
func TestDashboardNames(t *testing.T) {
	t.Parallel()
	dash, err := os.ReadFile("../../deploy/grafana/tqflow.json")
	if os.IsNotExist(err) {
		t.Skip("no deploy/grafana/tqflow.json beside this module")
	}
	if err != nil {
		t.Fatal(err)
	}
	m := obs.New("test")
	// Give every vector a series, so that it shows on the page.
	m.OnSettle(bus.ConsumerSpec{Name: "c"}, &bus.Message{Delivered: 2}, bus.DeadLettered, nil)
	m.RunDone("ctr", "default", time.Now())
	_ = m.TimeHandler("c", func(_ context.Context, _ *bus.Message) error { return nil })(t.Context(), &bus.Message{})
	rt := m.Transport("ctr", roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://ctr.invalid/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	b := bustest.New(t)
	spec := bus.ConsumerSpec{Stream: bus.StreamWrites, Name: "writer"}
	if _, err := b.JetStream().CreateOrUpdateConsumer(t.Context(), spec.Stream, spec.Config()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- m.PollConsumers(ctx, b.JetStream(), 10*time.Millisecond, obs.ConsumerRef{Stream: spec.Stream, Consumer: spec.Name})
	}()
	eventually(t, m, "tqflow_consumer_pending_messages{")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	page := scrape(t, m)
	for _, name := range regexp.MustCompile(`tqflow_[a-z_]+`).FindAllString(string(dash), -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
		if !strings.Contains(page, "# HELP "+base+" ") {
			t.Errorf("the dashboard queries %s, which obs does not expose", name)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
