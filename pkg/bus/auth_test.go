package bus_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
)

// authServer starts an embedded server listening on a loopback port that
// accepts only auth.
func authServer(t *testing.T, auth bus.EmbeddedAuth) *bus.Embedded {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, Auth: auth}, nil)
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// TestEmbeddedRefusesStrangers: on a server with credentials, the
// unauthenticated publish to tq.writes.indicator that issue 13 made
// (which had tqflow rewrite an indicator with its own ThreatQ
// credentials) is refused, over the network and in process, while the
// right credentials publish.
func TestEmbeddedRefusesStrangers(t *testing.T) {
	t.Parallel()
	srv := authServer(t, bus.EmbeddedAuth{User: "tqflow", Password: "s3cret-pw"})
	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"no credentials", nil},
		{"wrong password", []nats.Option{nats.UserInfo("tqflow", "guess")}},
		{"token instead", []nats.Option{nats.Token("s3cret-pw")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nc, err := nats.Connect(srv.ClientURL(), tc.opts...)
			if err == nil {
				defer nc.Close()
				perr := nc.Publish("tq.writes.indicator", []byte(`{"indicator_id":1,"status":"Whitelisted"}`))
				ferr := nc.Flush()
				t.Fatalf("connected and published (%v, %v): want the connection refused", perr, ferr)
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect: %v, want an authorization violation", err)
			}
		})
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("tqflow", "s3cret-pw"))
	if err != nil {
		t.Fatalf("the right credentials: %v", err)
	}
	defer nc.Close()
	if err := nc.Publish("tq.writes.indicator", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// In process: the server's own credentials.
	inproc, err := srv.Connect("inproc")
	if err != nil {
		t.Fatalf("in-process connection with the server's credentials: %v", err)
	}
	inproc.Close()
}

// TestConnectAuthFailsAtOnce: a refused password ends Connect at once with
// ErrAuth naming the user (not "no servers available" after minutes), and
// never shows the password.
func TestConnectAuthFailsAtOnce(t *testing.T) {
	t.Parallel()
	srv := authServer(t, bus.EmbeddedAuth{User: "tqflow", Password: "right-pw"})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := bus.Connect(ctx, bus.Config{URL: srv.ClientURL(), User: "tqflow", Password: "wrong-pw-31337"}, nil)
	if !errors.Is(err, bus.ErrAuth) {
		t.Fatalf("connect: %v, want ErrAuth", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s to give up", d)
	}
	if strings.Contains(err.Error(), "wrong-pw-31337") || !strings.Contains(err.Error(), `"tqflow"`) {
		t.Errorf("error %q: want the user named and no password", err)
	}
	b, err := bus.Connect(ctx, bus.Config{URL: srv.ClientURL(), User: "tqflow", Password: "right-pw"}, nil)
	if err != nil {
		t.Fatalf("the right password: %v", err)
	}
	_ = b.Close()
}

// TestConnectWaitBounded: nothing listening ends Connect after
// ConnectWait, saying no server answered.
func TestConnectWaitBounded(t *testing.T) {
	t.Parallel()
	srv := authServer(t, bus.EmbeddedAuth{Token: "x"})
	u := srv.ClientURL()
	srv.Shutdown()
	start := time.Now()
	_, err := bus.Connect(context.Background(), bus.Config{URL: u, ConnectWait: 500 * time.Millisecond}, nil)
	if !errors.Is(err, nats.ErrNoServers) || time.Since(start) > 5*time.Second {
		t.Errorf("connect to nothing: %v after %s", err, time.Since(start))
	}
}

// TestEmbeddedNKeyAndToken: the other ways in, as AuthFor derives them
// from the NATS_ variables.
func TestEmbeddedNKeyAndToken(t *testing.T) {
	t.Parallel()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	otherFile := filepath.Join(t.TempDir(), "other.nk")
	if err := os.WriteFile(otherFile, otherSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		server    bus.Config
		good, bad bus.Config
	}{
		{"nkey", bus.Config{NKeySeedFile: seedFile}, bus.Config{NKeySeedFile: seedFile}, bus.Config{NKeySeedFile: otherFile}},
		{"token", bus.Config{Token: "tok-1"}, bus.Config{Token: "tok-1"}, bus.Config{Token: "tok-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			auth, err := bus.AuthFor(tc.server)
			if err != nil {
				t.Fatal(err)
			}
			srv := authServer(t, auth)
			ctx := context.Background()
			tc.good.URL, tc.bad.URL = srv.ClientURL(), srv.ClientURL()
			b, err := bus.Connect(ctx, tc.good, nil)
			if err != nil {
				t.Fatalf("good credentials: %v", err)
			}
			_ = b.Close()
			if _, err := bus.Connect(ctx, tc.bad, nil); !errors.Is(err, bus.ErrAuth) {
				t.Errorf("bad credentials: %v, want ErrAuth", err)
			}
			nc, err := srv.ConnectAs(tc.good)
			if err != nil {
				t.Fatalf("in process: %v", err)
			}
			nc.Close()
		})
	}
	if _, err := bus.AuthFor(bus.Config{CredsFile: "x.creds"}); err == nil {
		t.Error("AuthFor accepted a creds file")
	}
}

func TestConfigValidateAuth(t *testing.T) {
	t.Parallel()
	base := bus.Config{Replicas: 1, MaxAge: time.Hour, Duplicates: time.Minute}
	for _, tc := range []struct {
		name string
		edit func(*bus.Config)
		want string
	}{
		{"user without password", func(c *bus.Config) { c.User = "u" }, "NATS_PASSWORD"},
		{"two methods", func(c *bus.Config) { c.User, c.Password, c.Token = "u", "p", config.Secret("t") }, "not several"},
		{"cert without key", func(c *bus.Config) { c.TLSCert = "c.pem" }, "NATS_TLS_KEY"},
		{"bad replicas", func(c *bus.Config) { c.Replicas = 2 }, "NATS_REPLICAS"},
		{"wildcard inbox prefix", func(c *bus.Config) { c.InboxPrefix = "_INBOX.>" }, "NATS_INBOX_PREFIX"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := base
			tc.edit(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want a problem naming %s", err, tc.want)
			}
		})
	}
	if err := base.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
