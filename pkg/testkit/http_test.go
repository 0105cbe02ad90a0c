package testkit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tqflow/tqflow/pkg/testkit"
)

func TestGetAndScrape(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("tqflow_up 1\n"))
	}))
	t.Cleanup(srv.Close)

	if code, body := testkit.Get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || body != "not ready\n" {
		t.Errorf("Get /readyz = %d %q, want 503 and the body", code, body)
	}
	if body, err := testkit.Scrape(context.Background(), srv.URL+"/metrics"); err != nil || body != "tqflow_up 1\n" {
		t.Errorf("Scrape /metrics = %q, %v", body, err)
	}
	if _, err := testkit.Scrape(context.Background(), srv.URL+"/readyz"); err == nil {
		t.Error("Scrape of a 503 reported no error")
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if _, err := testkit.Scrape(context.Background(), closed.URL+"/metrics"); err == nil {
		t.Error("Scrape of a closed server reported no error")
	}
}
