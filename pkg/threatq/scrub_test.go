package threatq_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/httpx/httpxtest"
	"github.com/tqflow/tqflow/pkg/threatq"
)

// Distinctive credentials, with characters that escaping changes.
const (
	echoClientID = "tq-client-id-7f3a9"
	echoSecret   = "tq/client+secret&9=Zq"
	echoPassword = "tq pass/word+7!"
)

// TestEchoedCredentialsAreScrubbed: a server that echoes the request into
// every error field, on the token call and on an API call, for both
// grants: no form of any credential reaches the error.
func TestEchoedCredentialsAreScrubbed(t *testing.T) {
	t.Parallel()
	forms := httpxtest.Forms([]string{echoSecret, echoPassword, echoClientID}, [2]string{echoClientID, echoSecret})
	grants := map[string]func(string) threatq.Config{
		"client credentials": func(u string) threatq.Config {
			return threatq.Config{URL: u, ClientID: echoClientID, ClientSecret: echoSecret}
		},
		"password": func(u string) threatq.Config {
			return threatq.Config{URL: u, Email: "a@example.com", Password: echoPassword, ClientID: echoClientID}
		},
	}
	for name, cfgOf := range grants {
		for _, status := range []int{http.StatusUnauthorized, http.StatusBadRequest, http.StatusInternalServerError} {
			t.Run(fmt.Sprintf("%s/token %d", name, status), func(t *testing.T) {
				t.Parallel()
				srv := httptest.NewServer(httpxtest.Echo(status))
				t.Cleanup(srv.Close)
				c, err := threatq.New(cfgOf(srv.URL))
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.IndicatorStatuses(context.Background())
				if err == nil {
					t.Fatal("an echoing server's error was taken for an answer")
				}
				httpxtest.NoLeak(t, "error", err.Error(), forms)
				httpxtest.NoLeak(t, "error", fmt.Sprintf("%+v %#v", err, err), forms)
			})
		}
		t.Run(name+"/api 400", func(t *testing.T) {
			t.Parallel()
			mux := http.NewServeMux()
			mux.HandleFunc("POST /api/token", func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
			})
			mux.HandleFunc("/api/", httpxtest.Echo(http.StatusBadRequest))
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			cfg := cfgOf(srv.URL)
			// The process's other secrets, passed in by the service.
			cfg.Scrub = httpx.NewScrubber("misp-key-in-the-same-process")
			c, err := threatq.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ConsumeIndicators(context.Background(), []threatq.IndicatorWrite{{Value: "misp-key-in-the-same-process", Type: "FQDN"}})
			var ve *threatq.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			all := append(forms, httpxtest.Forms([]string{"misp-key-in-the-same-process"})...)
			httpxtest.NoLeak(t, "error", err.Error(), all)
			httpxtest.NoLeak(t, "fields", fmt.Sprint(ve.Fields), all)
		})
	}
	_ = config.Secret("")
}
