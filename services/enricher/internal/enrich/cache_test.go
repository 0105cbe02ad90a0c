package enrich

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/schemas"
)

func TestCache(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	kv, err := b.KeyValue(ctx, bus.BucketCTRCache)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cache{KV: kv, JS: b.JetStream()}
	answers := map[Observable][]schemas.Attribute{}
	var obs []Observable
	for i := range 1200 { // More than one batched get.
		o := Observable{Type: "ip", Value: fmt.Sprintf("192.0.2.%d/%d", i%256, i)}
		obs = append(obs, o)
		switch i % 3 {
		case 0:
			answers[o] = []schemas.Attribute{{Name: "Disposition", Value: fmt.Sprint("Malicious ", i)}}
		case 1:
			answers[o] = nil // No context: cached too.
		}
	}
	if err := c.put(ctx, answers); err != nil {
		t.Fatal(err)
	}
	// A later answer replaces an earlier one; a deleted key is a miss.
	replaced := obs[0]
	answers[replaced] = []schemas.Attribute{{Name: "Disposition", Value: "Clean"}}
	if err := c.put(ctx, map[Observable][]schemas.Attribute{replaced: answers[replaced]}); err != nil {
		t.Fatal(err)
	}
	deleted := obs[3]
	if err := kv.Delete(ctx, cacheKey(deleted)); err != nil {
		t.Fatal(err)
	}
	delete(answers, deleted)

	got := c.get(ctx, obs)
	if !reflect.DeepEqual(got, answers) {
		t.Errorf("get returned %d answers, want %d", len(got), len(answers))
		for o, want := range answers {
			if g, ok := got[o]; !ok || !reflect.DeepEqual(g, want) {
				t.Errorf("%v: got %v (present %v), want %v", o, g, ok, want)
			}
		}
		for o := range got {
			if _, ok := answers[o]; !ok {
				t.Errorf("%v: got %v, want a miss", o, got[o])
			}
		}
	}

	// The batched get itself works against this server: no fallback.
	one := map[Observable][]schemas.Attribute{}
	if err := c.getBatch(ctx, obs[:batchGet], one); err != nil {
		t.Fatalf("batched get: %v", err)
	}
	none := map[Observable][]schemas.Attribute{}
	if err := c.getBatch(ctx, []Observable{{Type: "ip", Value: "never cached"}}, none); err != nil || len(none) != 0 {
		t.Errorf("batched get of an absent key: %v, %v; want no error, nothing", none, err)
	}
}
