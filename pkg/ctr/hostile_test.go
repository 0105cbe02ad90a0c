package ctr_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/httpx/httpxtest"
)

const (
	echoID       = "client-5f0c1e2a-echo"
	echoPassword = "ctr/pass+word&Z9=="
)

func echoClient(t *testing.T, h http.Handler) *ctr.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := ctr.New(ctr.Config{ClientID: echoID, ClientPassword: config.Secret(echoPassword), BaseURL: srv.URL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEchoedCredentialsAreScrubbed: a token endpoint, or an enrich route,
// that echoes the request (the Basic credential, the bearer call) into
// every error field: no form of the password or of the Basic credential
// reaches the error.
func TestEchoedCredentialsAreScrubbed(t *testing.T) {
	t.Parallel()
	forms := httpxtest.Forms([]string{echoPassword}, [2]string{echoID, echoPassword})
	for _, status := range []int{400, 401, 403, 429, 500} {
		t.Run(fmt.Sprintf("token %d", status), func(t *testing.T) {
			t.Parallel()
			c := echoClient(t, httpxtest.Echo(status))
			_, err := c.Observe(context.Background(), []ctr.Observable{{Type: "domain", Value: "evil.example"}})
			if err == nil {
				t.Fatal("an echoed error was taken for an answer")
			}
			httpxtest.NoLeak(t, "error", fmt.Sprintf("%v %+v", err, err), forms)
		})
	}
	t.Run("observe 400", func(t *testing.T) {
		t.Parallel()
		mux := http.NewServeMux()
		mux.HandleFunc("POST /iroh/oauth2/token", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"bearer","expires_in":600}`))
		})
		mux.HandleFunc("POST /iroh/iroh-enrich/observe/observables", httpxtest.Echo(400))
		c := echoClient(t, mux)
		_, err := c.Observe(context.Background(), []ctr.Observable{{Type: "domain", Value: echoPassword}})
		if !errors.Is(err, ctr.ErrBadRequest) {
			t.Fatalf("err = %v, want ErrBadRequest", err)
		}
		httpxtest.NoLeak(t, "error", err.Error(), forms)
	})
}

// TestHostileAnswers: an oversized enrich answer and an endless token
// answer end in a clear error, soon, without reading them whole.
func TestHostileAnswers(t *testing.T) {
	t.Parallel()
	endless := func(prefix string, limit int64) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(prefix))
			chunk := []byte(strings.Repeat(" ", 64<<10))
			for sent := int64(0); sent < limit && r.Context().Err() == nil; sent += int64(len(chunk)) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
	}
	tests := []struct {
		name  string
		token http.HandlerFunc
		enr   http.HandlerFunc
	}{
		{"endless token", endless(`{"access_token":"`, 1<<40), nil},
		{"big observe answer", nil, endless(`{"data":[`, 1<<40)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mux := http.NewServeMux()
			tok := tt.token
			if tok == nil {
				tok = func(w http.ResponseWriter, _ *http.Request) {
					_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"bearer","expires_in":600}`))
				}
			}
			mux.HandleFunc("POST /iroh/oauth2/token", tok)
			if tt.enr != nil {
				mux.HandleFunc("POST /iroh/iroh-enrich/observe/observables", tt.enr)
			}
			c := echoClient(t, mux)
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := c.Observe(context.Background(), []ctr.Observable{{Type: "domain", Value: "evil.example"}})
			var de *httpx.DecodeError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), "larger than") {
				t.Fatalf("err = %v, want a decode error for an oversized answer", err)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			took := time.Since(start)
			alloc := after.TotalAlloc - before.TotalAlloc // other parallel tests add to it
			t.Logf("%s: %v after %v, %d MiB allocated", tt.name, err, took, alloc>>20)
			if took > 10*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}
