package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
}

// Connect dials the NATS server or cluster of c.URL, retrying until ctx
// ends while the server is not up yet (compose start-up order), and
// reconnecting for ever once connected.
func Connect(ctx context.Context, c Config, log *slog.Logger) (*Bus, error) {
	if c.URL == "" {
		return nil, errors.New("connect to NATS: no URL (set NATS_URL, or run with the embedded server)")
	}
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DrainTimeout(ConnDrainTimeout),
		nats.RetryOnFailedConnect(true),
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	opts = append(opts, logHandlers(log)...)
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("connect to NATS at %s: %w", nats.ErrNoServers, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return New(nc, log)
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

func logHandlers(log *slog.Logger) []nats.Option {
	if log == nil {
		return nil
	}
	return []nats.Option{
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
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
		}),
	}
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
