package fetch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrLeaseHeld is returned by [Lease.Acquire] while another fetcher holds
// the lease.
var ErrLeaseHeld = errors.New("lease held by another fetcher")

// Lease makes one fetcher per job instance the active one. It lives in a KV
// bucket whose entries expire (the bucket's TTL): the holder renews it at a
// third of that, and a fetcher that dies loses it within one TTL.
type Lease struct {
	KV     jetstream.KeyValue
	Key    string
	Holder string
	// Every is how often the holder renews; a third of the bucket TTL.
	Every time.Duration

	rev uint64
}

// Acquire takes the lease, or returns ErrLeaseHeld (wrapped, naming the
// holder).
func (l *Lease) Acquire(ctx context.Context) error {
	rev, err := l.KV.Create(ctx, l.Key, []byte(l.Holder))
	if err == nil {
		l.rev = rev
		return nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("acquire lease %s: %w", l.Key, err)
	}
	e, gerr := l.KV.Get(ctx, l.Key)
	if gerr != nil {
		return fmt.Errorf("acquire lease %s: %w", l.Key, gerr)
	}
	if string(e.Value()) != l.Holder {
		return fmt.Errorf("acquire lease %s: %w: %s", l.Key, ErrLeaseHeld, e.Value())
	}
	// Ours already (a restart within the TTL): renew it.
	l.rev = e.Revision()
	return l.Renew(ctx)
}

// Renew extends the lease; it fails if someone else took it.
func (l *Lease) Renew(ctx context.Context) error {
	rev, err := l.KV.Update(ctx, l.Key, []byte(l.Holder), l.rev)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.Key, err)
	}
	l.rev = rev
	return nil
}

// Hold renews the lease until ctx ends, and calls lost (once) if it cannot.
func (l *Lease) Hold(ctx context.Context, lost func(error)) {
	t := time.NewTicker(l.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.Renew(ctx); err != nil {
				if ctx.Err() == nil {
					lost(err)
				}
				return
			}
		}
	}
}

// Release gives the lease up, so a standby fetcher can take over at once.
// A renewal cut short by its context may still have been applied, leaving
// the revision Release knows behind: it then reads the lease again and
// gives it up if it is still this holder's.
func (l *Lease) Release(ctx context.Context) error {
	err := l.KV.Delete(ctx, l.Key, jetstream.LastRevision(l.rev))
	if err == nil {
		return nil
	}
	e, gerr := l.KV.Get(ctx, l.Key)
	switch {
	case errors.Is(gerr, jetstream.ErrKeyNotFound), errors.Is(gerr, jetstream.ErrKeyDeleted):
		return nil // Gone already (expired).
	case gerr != nil:
		return fmt.Errorf("release lease %s: %w", l.Key, errors.Join(err, gerr))
	case string(e.Value()) != l.Holder:
		return nil // Another fetcher's now: nothing of ours to give up.
	}
	if err := l.KV.Delete(ctx, l.Key, jetstream.LastRevision(e.Revision())); err != nil {
		return fmt.Errorf("release lease %s: %w", l.Key, err)
	}
	return nil
}
