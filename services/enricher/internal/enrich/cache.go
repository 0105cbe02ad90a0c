package enrich

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/schemas"
)

// Cache keeps CTR's answer per observable in a KV bucket whose entries
// expire (the bucket's TTL), shared by every enricher replica. "No context"
// is cached too: asking again would spend the same rate limit for the same
// answer.
type Cache struct {
	KV jetstream.KeyValue
	// Parallel bounds concurrent KV calls; 32 when zero.
	Parallel int
}

type cached struct {
	Attributes []schemas.Attribute `json:"attributes,omitempty"`
}

func cacheKey(o Observable) string {
	h := sha256.Sum256([]byte(o.Value))
	return o.Type + "." + hex.EncodeToString(h[:16])
}

// get returns the cached answers for obs: present keys only; a nil slice
// value means "no context". Lookup failures count as misses.
func (c *Cache) get(ctx context.Context, obs []Observable) map[Observable][]schemas.Attribute {
	out := make(map[Observable][]schemas.Attribute, len(obs))
	var mu sync.Mutex
	c.each(obs, func(o Observable) {
		e, err := c.KV.Get(ctx, cacheKey(o))
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
	return out
}

// put stores answers; failures are returned joined but are not fatal to
// the caller: the cache is an optimisation.
func (c *Cache) put(ctx context.Context, answers map[Observable][]schemas.Attribute) error {
	obs := make([]Observable, 0, len(answers))
	for o := range answers {
		obs = append(obs, o)
	}
	var mu sync.Mutex
	var errs []error
	c.each(obs, func(o Observable) {
		data, _ := json.Marshal(cached{Attributes: answers[o]})
		if _, err := c.KV.Put(ctx, cacheKey(o), data); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	return errors.Join(errs...)
}

func (c *Cache) each(obs []Observable, fn func(Observable)) {
	n := c.Parallel
	if n <= 0 {
		n = 32
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, o := range obs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(o)
		})
	}
	wg.Wait()
}
