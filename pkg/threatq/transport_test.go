package threatq_test

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tqflow/tqflow/pkg/sim/tqsim"
	"github.com/tqflow/tqflow/pkg/threatq"
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

// TestWrapTransport serves the simulator over TLS with its own
// certificate: the wrapped transport carries every call, the token
// request included, and still verifies the server against CAFile.
func TestWrapTransport(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(tqsim.New(tqsim.Options{}).Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // The refused handshakes.
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	wrap := func(next http.RoundTripper) http.RoundTripper {
		rec.next = next
		return rec
	}

	cfg := passwordConfig(srv.URL)
	cfg.CAFile = ca
	cfg.WrapTransport = wrap
	c, err := threatq.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SignatureTypes(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"POST /api/token", "GET /api/signature/types"} {
		if !slices.Contains(rec.calls, want) {
			t.Errorf("the wrapped transport did not see %s; it saw %v", want, rec.calls)
		}
	}

	// Without the CA, the same server is refused: wrapping kept TLS
	// verification.
	cfg.CAFile = ""
	rec.calls = nil
	c, err = threatq.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SignatureTypes(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an unknown certificate: err %v, want a certificate error", err)
	}
	if len(rec.calls) == 0 {
		t.Error("the refused call did not go through the wrapper")
	}

	cfg.WrapTransport = func(http.RoundTripper) http.RoundTripper { return nil }
	if _, err := threatq.New(cfg); err == nil || !strings.Contains(err.Error(), "WrapTransport") {
		t.Errorf("a wrapper that returns nil: err %v, want one naming WrapTransport", err)
	}
}
