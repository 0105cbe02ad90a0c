package misp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/httpx/httpxtest"
	"github.com/tqflow/tqflow/pkg/misp"
)

const echoKey = "EchoKey0123456789abcdefghijklmnopqrstuvw"

// TestEchoedKeyIsScrubbed: a server that echoes the request, Authorization
// header included, into its error fields, for each status MISP's client
// reads a message from: no form of the key reaches the error.
func TestEchoedKeyIsScrubbed(t *testing.T) {
	t.Parallel()
	forms := httpxtest.Forms([]string{echoKey})
	for _, status := range []int{401, 403, 404, 405, 413, 500} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(httpxtest.Echo(status))
			t.Cleanup(srv.Close)
			c, err := misp.New(misp.Config{URL: srv.URL, Key: config.Secret(echoKey), Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.AddEvent(context.Background(), misp.Event{Info: "x"})
			if err == nil {
				t.Fatal("an echoed error was taken for an answer")
			}
			httpxtest.NoLeak(t, "error", fmt.Sprintf("%v %+v", err, err), forms)
			var me *misp.Error
			if errors.As(err, &me) {
				httpxtest.NoLeak(t, "fields", fmt.Sprint(me.Fields), forms)
			}
		})
	}
}

// TestBigAnswer: an endless answer ends in a decode error at the body
// limit, and an endless error answer is cut at 64 KiB.
func TestBigAnswer(t *testing.T) {
	t.Parallel()
	for _, status := range []int{200, 500} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = w.Write([]byte(`{"message":"`))
				chunk := []byte(strings.Repeat("x", 64<<10))
				for sent := 0; sent < 1<<30 && r.Context().Err() == nil; sent += len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}))
			t.Cleanup(srv.Close)
			c, err := misp.New(misp.Config{URL: srv.URL, Key: config.Secret(echoKey), Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = c.DescribeTypes(context.Background())
			t.Logf("status %d: %.120v after %v", status, err, time.Since(start))
			var de *httpx.DecodeError
			var se *httpx.StatusError
			switch {
			case status == 200 && !errors.As(err, &de):
				t.Errorf("err = %v, want a decode error", err)
			case status == 500 && (!errors.As(err, &se) || se.StatusCode != 500):
				t.Errorf("err = %v, want the 500", err)
			}
		})
	}
}
