package e2e_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
)

// composeUsers are the users of deploy/nats/users.conf and the variables
// their passwords come from.
var composeUsers = map[string]string{
	"fetcher":          "TQFLOW_NATS_FETCHER_PASSWORD",
	"enricher":         "TQFLOW_NATS_ENRICHER_PASSWORD",
	"writer":           "TQFLOW_NATS_WRITER_PASSWORD",
	"exporter":         "TQFLOW_NATS_EXPORTER_PASSWORD",
	"signature-loader": "TQFLOW_NATS_SIGNATURE_LOADER_PASSWORD",
	"ops":              "TQFLOW_NATS_OPS_PASSWORD",
}

// composeNATS starts a NATS server from compose's own deploy/nats/nats.conf
// (its users and permissions as shipped), on a free loopback port with a
// temporary store. Not parallel: the passwords reach the configuration
// through the environment, as in the container.
func composeNATS(t *testing.T) *server.Server {
	t.Helper()
	t.Setenv("NATS_SERVER_NAME", "compose-test")
	t.Setenv("NATS_MAX_STORE", "1GB")
	for user, v := range composeUsers {
		t.Setenv(v, "pw-"+user)
	}
	opts, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatalf("read deploy/nats/nats.conf: %v", err)
	}
	opts.StoreDir, opts.Host, opts.Port, opts.HTTPPort, opts.NoSigs, opts.NoLog = t.TempDir(), "127.0.0.1", -1, 0, true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("NATS from deploy/nats/nats.conf not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// violations collects the permission violations a connection is told of.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler() nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			v.mu.Lock()
			v.errs = append(v.errs, err.Error())
			v.mu.Unlock()
		}
	})
}

// TestComposeUsers runs every job once with each service connected as its
// own compose user, under the permissions deploy/nats/users.conf ships:
// the pipeline works, and no service is refused a subject. Then the
// attacks of issue 13: no credentials, or another service's, cannot
// publish tq.writes.indicator.
func TestComposeUsers(t *testing.T) {
	srv := composeNATS(t)
	url := srv.ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var seen violations
	as := func(user string) *bus.Bus {
		t.Helper()
		c := bus.Config{URL: url, Name: user, User: user, Password: config.Secret("pw-" + user), InboxPrefix: "_INBOX_" + user,
			Replicas: 1, MaxAge: time.Hour, Duplicates: 2 * time.Minute, MaxBytes: -1}
		if user == "ops" {
			c.InboxPrefix = ""
		}
		opts, err := c.Options()
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(url, append(opts, seen.handler())...)
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		b, err := bus.New(nc, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		if err := bus.NewTopology(c).Ensure(ctx, b.JetStream()); err != nil {
			t.Fatalf("%s applies the topology: %v", user, err)
		}
		return b
	}

	h := newHarness(t, sandbox.Options{Seed: 7, Indicators: 200, ContextShare: 0.3, Rules: 40})
	h.vars["JOBS"] = "ctr,misp,et"
	buses := pipeline.Buses{Default: as("ops"), Fetcher: as("fetcher"), Enricher: as("enricher"), Writer: as("writer"),
		Loader: as("signature-loader"), Exporter: as("exporter")}
	p, err := pipeline.New(ctx, h.config(nil), buses, h.logger())
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.RunOnce(ctx, nil)
	if err != nil {
		t.Fatalf("run with every service as its own user: %v", err)
	}
	seen.mu.Lock()
	if len(seen.errs) > 0 {
		t.Errorf("permission violations:\n%s", strings.Join(seen.errs, "\n"))
	}
	seen.mu.Unlock()
	if s.Writer.Indicators.Load() == 0 || s.Writer.Signatures.Load() == 0 || s.Exporter.Saved.Load() == 0 || s.DeadLetter != 0 {
		t.Errorf("written %d indicators, %d signatures, %d MISP attributes, %d dead letters: want every job to have worked",
			s.Writer.Indicators.Load(), s.Writer.Signatures.Load(), s.Exporter.Saved.Load(), s.DeadLetter)
	}

	before := streamState(t, buses.Default, bus.StreamWrites).Msgs
	// No credentials: not even a connection.
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Error("an unauthenticated client connected")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("unauthenticated client: %v, want an authorization violation", err)
	}
	// Another service's password: the publish is refused.
	for _, user := range []string{"writer", "exporter", "fetcher", "signature-loader"} {
		b := as(user)
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := b.JetStream().Publish(pctx, bus.SubjectWriteIndicator, []byte(`{"indicator_id":1,"status":"Whitelisted"}`))
		pcancel()
		if err == nil {
			t.Errorf("%s published to %s", user, bus.SubjectWriteIndicator)
		}
	}
	// Nor can a service read the replies of another (the messages pulled
	// by the writer among them).
	want := 1
	for _, user := range []string{"enricher", "fetcher"} {
		nc := as(user).Conn()
		if _, err := nc.SubscribeSync("_INBOX_writer.>"); err != nil {
			t.Fatal(err)
		}
		// The server refuses the subscription asynchronously.
		if !testkit.Wait(func() bool { return refusedSubs(&seen, "_INBOX_writer.>") >= want }, 3*time.Second) {
			t.Errorf("%s subscribed to the writer's replies", user)
		}
		want++
	}
	if after := streamState(t, buses.Default, bus.StreamWrites).Msgs; after != before {
		t.Errorf("WRITES went from %d to %d messages: a refused publish was stored", before, after)
	}
}

// refusedSubs counts the refused subscriptions to subject.
func refusedSubs(v *violations, subject string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, e := range v.errs {
		if strings.Contains(e, "Subscription") && strings.Contains(e, subject) {
			n++
		}
	}
	return n
}
