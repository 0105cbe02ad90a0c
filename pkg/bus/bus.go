package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bus is a connection to NATS JetStream with tqflow's topology in place.
// It is safe for concurrent use.
type Bus struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger

	mu        sync.Mutex
	consuming map[int]func(ConsumerSpec)
	nextHook  int
	// middleware is what [Bus.Use] added.
	middleware []Middleware
}

// NotifyConsuming has f called each time a runner on b starts consuming
// (its worker's start-up checks are behind it) until stop is called. f
// must be fast and safe for concurrent use.
func (b *Bus) NotifyConsuming(f func(ConsumerSpec)) (stop func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.consuming == nil {
		b.consuming = map[int]func(ConsumerSpec){}
	}
	id := b.nextHook
	b.nextHook++
	b.consuming[id] = f
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.consuming, id)
	}
}

func (b *Bus) notifyConsuming(spec ConsumerSpec) {
	b.mu.Lock()
	hooks := make([]func(ConsumerSpec), 0, len(b.consuming))
	for _, f := range b.consuming {
		hooks = append(hooks, f)
	}
	b.mu.Unlock()
	for _, f := range hooks {
		f(spec)
	}
}

// Connect dials the NATS server or cluster of c.URL, retrying until ctx
// ends (or c.ConnectWait passes) while the server is not up yet (compose
// start-up order), and reconnecting for ever once connected. A server
// that refuses the credentials ends it at once with [ErrAuth]: waiting
// would not change the answer.
func Connect(ctx context.Context, c Config, log *slog.Logger) (*Bus, error) {
	if c.URL == "" {
		return nil, errors.New("connect to NATS: no URL (set NATS_URL, or run with the embedded server)")
	}
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	refused := make(chan error, 1)
	opts = append(opts,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true))
	opts = append(opts, logHandlers(log, refused)...)
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	wait := c.ConnectWait
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("connect to NATS at %s: %w: %w", redactURL(c.URL), nats.ErrNoServers, ctx.Err())
		case <-timeout.C:
			nc.Close()
			return nil, fmt.Errorf("connect to NATS at %s: %w after %s", redactURL(c.URL), nats.ErrNoServers, wait)
		case err := <-refused:
			nc.Close()
			return nil, fmt.Errorf("connect to NATS at %s as %s: %w: %w", redactURL(c.URL), c.identity(), ErrAuth, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return New(nc, log)
}

// Options returns the connection options c asks for: name, credentials,
// TLS. [Connect] adds its reconnection rules to them.
func (c Config) Options() ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(c.Name), nats.DrainTimeout(ConnDrainTimeout), nats.SyncQueueLen(syncQueueLen)}
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password.Reveal()))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token.Reveal()))
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED_FILE: read nkey seed: %w", err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}

// identity names how c authenticates, for errors; never a secret.
func (c Config) identity() string {
	switch {
	case c.User != "":
		return "user " + strconv.Quote(c.User)
	case c.Token != "":
		return "a token"
	case c.NKeySeedFile != "":
		return "the nkey of " + c.NKeySeedFile
	case c.CredsFile != "":
		return "the credentials of " + c.CredsFile
	}
	return "no credentials"
}

// redactURL hides a password in a URL's user part.
func redactURL(u string) string {
	var out []string
	for _, one := range strings.Split(u, ",") {
		if p, err := url.Parse(strings.TrimSpace(one)); err == nil && p.User != nil {
			one = p.Redacted()
		}
		out = append(out, one)
	}
	return strings.Join(out, ",")
}

// New returns a Bus on an open connection, which it then owns.
func New(nc *nats.Conn, log *slog.Logger) (*Bus, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open JetStream: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bus{nc: nc, js: js, log: log}, nil
}

// logHandlers logs the connection's events. An authentication or
// authorisation refusal is also sent, once, on refused.
func logHandlers(log *slog.Logger, refused chan<- error) []nats.Option {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	refuse := func(err error) {
		if isAuthError(err) {
			select {
			case refused <- err:
			default:
			}
		}
	}
	return []nats.Option{
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
				refuse(err)
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			refuse(err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("nats async error", "subject", subject, "err", err)
			refuse(err)
		}),
	}
}

// isAuthError reports whether err is the server refusing who we are.
func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}

// JetStream returns the JetStream handle.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Conn returns the underlying connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Ready reports whether the connection is up.
func (b *Bus) Ready() bool { return b.nc.IsConnected() }

// KeyValue returns one of the topology's buckets.
func (b *Bus) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := b.js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open key-value bucket %s: %w", bucket, err)
	}
	return kv, nil
}

// ObjectStore returns one of the topology's object stores.
func (b *Bus) ObjectStore(ctx context.Context, bucket string) (jetstream.ObjectStore, error) {
	os, err := b.js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", bucket, err)
	}
	return os, nil
}

// ConnDrainTimeout bounds the connection's drain in [Bus.Close]. The
// runners have drained their consumers by then (their own drain timeout),
// so what is left is flushing: short, so that a worker's drain timeout
// plus this stays inside a container's stop grace period (30 s for the
// 20 s drain timeouts of docker-compose.yml) and a hung drain ends in a
// close, not a SIGKILL.
const ConnDrainTimeout = 5 * time.Second

// Close drains the connection: pending publishes are flushed and
// subscriptions finish what they hold, within [ConnDrainTimeout].
func (b *Bus) Close() error {
	if b.nc.IsClosed() {
		return nil
	}
	done := make(chan struct{})
	b.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
		return fmt.Errorf("drain NATS connection: %w", err)
	}
	select {
	case <-done:
	case <-time.After(ConnDrainTimeout + time.Second):
		b.nc.Close()
	}
	return nil
}
