package enrich

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/schemas"
)

// Cache keeps CTR's answer per observable in a KV bucket whose entries
// expire (the bucket's TTL), shared by every enricher replica. "No context"
// is cached too: asking again would spend the same rate limit for the same
// answer.
type Cache struct {
	KV jetstream.KeyValue
	// JS publishes the answers to the bucket's stream.
	JS jetstream.JetStream
	// Parallel bounds concurrent lookups; 32 when zero.
	Parallel int
	// Scope names what answers (the CTR host and API client, see
	// ctr.Config.Scope): it is part of every key, so that an instance with
	// other credentials, organisation or region never reads this one's
	// answers.
	Scope string
}

type cached struct {
	Attributes []schemas.Attribute `json:"attributes,omitempty"`
}

// cacheKey is "<scope hash>.<type>.<value hash>": the value exactly as
// sent (two URLs that differ in case are two entries).
func (c *Cache) cacheKey(o Observable) string {
	sh := sha256.Sum256([]byte(c.Scope))
	h := sha256.Sum256([]byte(o.Value))
	return hex.EncodeToString(sh[:8]) + "." + o.Type + "." + hex.EncodeToString(h[:16])
}

// subject is the subject the bucket's stream stores o's entry under.
func (c *Cache) subject(o Observable) string { return bus.KVSubject(c.KV.Bucket(), c.cacheKey(o)) }

// batchGet is the most keys asked of the server in one batched get; the
// server answers at most 1,024 messages per request.
const batchGet = 500

// get returns the cached answers for obs: present keys only; a nil slice
// value means "no context". Lookup failures count as misses.
//
// The keys are read with batched direct gets, the last message of many
// subjects in one request (nats-server 2.11 and later), rather than a KV
// Get round trip each; against an older server, each key is got alone.
func (c *Cache) get(ctx context.Context, obs []Observable) map[Observable][]schemas.Attribute {
	out := make(map[Observable][]schemas.Attribute, len(obs))
	for chunk := range slices.Chunk(obs, batchGet) {
		if err := c.getBatch(ctx, chunk, out); err != nil {
			c.getEach(ctx, slices.DeleteFunc(slices.Clone(chunk), func(o Observable) bool { _, ok := out[o]; return ok }), out)
		}
	}
	return out
}

// getBatch reads obs with one batched direct get into out.
func (c *Cache) getBatch(ctx context.Context, obs []Observable, out map[Observable][]schemas.Attribute) error {
	keys := make([]string, len(obs))
	byKey := make(map[string]Observable, len(obs))
	for i, o := range obs {
		keys[i] = c.cacheKey(o)
		byKey[keys[i]] = o
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for e, err := range bus.KVLast(ctx, c.JS, c.KV.Bucket(), keys) {
		if err != nil {
			return err
		}
		var v cached
		if json.Unmarshal(e.Value, &v) != nil {
			continue
		}
		out[byKey[e.Key]] = v.Attributes
	}
	return nil
}

// getEach reads obs with one KV Get each, in parallel, into out.
func (c *Cache) getEach(ctx context.Context, obs []Observable, out map[Observable][]schemas.Attribute) {
	var mu sync.Mutex
	c.each(obs, func(o Observable) {
		e, err := c.KV.Get(ctx, c.cacheKey(o))
		if err != nil {
			return
		}
		var v cached
		if json.Unmarshal(e.Value(), &v) != nil {
			return
		}
		mu.Lock()
		out[o] = v.Attributes
		mu.Unlock()
	})
}

// put stores answers as KV Put does, a message on $KV.<bucket>.<key> (the
// bucket's stream keeps the last per subject), but publishes them all
// before waiting for the acknowledgements, rather than one Put round trip
// each. No message ID: a later answer for the same key must replace the
// earlier one, not be dropped as its duplicate. Failures are returned
// joined but are not fatal to the caller: the cache is an optimisation.
func (c *Cache) put(ctx context.Context, answers map[Observable][]schemas.Attribute) error {
	futures := make([]jetstream.PubAckFuture, 0, len(answers))
	var errs []error
	for o, attrs := range answers {
		data, _ := json.Marshal(cached{Attributes: attrs})
		f, err := c.JS.PublishAsync(c.subject(o), data)
		if err != nil {
			errs = append(errs, err)
			break
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, err)
		case <-ctx.Done():
			return errors.Join(append(errs, ctx.Err())...)
		}
	}
	return errors.Join(errs...)
}

func (c *Cache) each(obs []Observable, fn func(Observable)) {
	n := c.Parallel
	if n <= 0 {
		n = 32
	}
	sem := make(chan struct{}, n)
	var wg bus.Group // A helper's panic reaches the runner's recover.
	for _, o := range obs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(o)
		})
	}
	wg.Wait()
}
