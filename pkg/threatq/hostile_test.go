package threatq_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/threatq"
)

// TestEndlessTokenAnswer: a token endpoint that never stops sending is
// cut off after a few KiB, with a decode error, not read to the 256 MiB
// page limit.
func TestEndlessTokenAnswer(t *testing.T) {
	t.Parallel()
	var sent int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"access_token":"`))
		chunk := []byte(strings.Repeat("A", 32<<10))
		for r.Context().Err() == nil && sent < 64<<20 {
			n, err := w.Write(chunk)
			sent += int64(n)
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c, err := threatq.New(clientConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.IndicatorStatuses(context.Background())
	var de *httpx.DecodeError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a decode error for an oversized answer", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	t.Logf("endless token answer refused in %v", time.Since(start))
}
