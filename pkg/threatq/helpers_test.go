package threatq_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
	"github.com/tqflow/tqflow/pkg/threatq"
)

// passwordConfig is a client configuration for tqsim's default user.
func passwordConfig(url string) threatq.Config {
	u := tqsim.DefaultUser
	return threatq.Config{URL: url, Email: u.Email, Password: config.Secret(u.Password), ClientID: config.Secret(u.ClientID)}
}

// clientConfig is a client configuration for tqsim's default OAuth client.
func clientConfig(url string) threatq.Config {
	c := tqsim.DefaultClient
	return threatq.Config{URL: url, ClientID: config.Secret(c.ID), ClientSecret: config.Secret(c.Secret)}
}

// simClient serves a simulator and returns it with a client of it.
func simClient(t *testing.T, opts tqsim.Options, mod func(*threatq.Config)) (*tqsim.Server, *threatq.Client) {
	t.Helper()
	s := tqsim.New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	cfg := passwordConfig(srv.URL)
	if mod != nil {
		mod(&cfg)
	}
	c, err := threatq.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// fakeClient serves h behind a token endpoint that always succeeds, and
// returns a client of it.
func fakeClient(t *testing.T, h http.HandlerFunc) *threatq.Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/token", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
	})
	mux.HandleFunc("/api/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := threatq.New(passwordConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
