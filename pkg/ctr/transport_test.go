package ctr_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
)

// recorder is a transport that notes each request and sends it on.
type recorder struct {
	next  http.RoundTripper
	mu    sync.Mutex
	calls []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.calls = append(r.calls, req.Method+" "+req.URL.Path)
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// TestWrapTransport: the wrapped transport carries every call, the token
// request included.
func TestWrapTransport(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(ctrsim.New(ctrsim.Options{Clients: map[string]string{testID: testPassword}}).Handler())
	t.Cleanup(srv.Close)
	rec := &recorder{}
	c, err := ctr.New(ctr.Config{
		ClientID: testID, ClientPassword: config.Secret(testPassword), BaseURL: srv.URL, Timeout: 10 * time.Second,
		WrapTransport: func(next http.RoundTripper) http.RoundTripper {
			rec.next = next
			return rec
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Observe(context.Background(), []ctr.Observable{{Type: "domain", Value: "evil.example"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST /iroh/oauth2/token", "POST /iroh/iroh-enrich/observe/observables"}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("the wrapped transport saw %v, want %v", rec.calls, want)
	}
}
