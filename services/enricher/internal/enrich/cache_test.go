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
	c := &Cache{KV: kv, JS: b.JetStream(), Scope: "https://visibility.amp.cisco.com client-a"}
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
	if err := kv.Delete(ctx, c.cacheKey(deleted)); err != nil {
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

// TestCacheScoped: answers cached under one CTR host and client are not
// served to another (issue 13: a second instance with other credentials
// got every answer from the first's cache), and values are exact.
func TestCacheScoped(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	kv, err := b.KeyValue(ctx, bus.BucketCTRCache)
	if err != nil {
		t.Fatal(err)
	}
	us := &Cache{KV: kv, JS: b.JetStream(), Scope: "https://visibility.amp.cisco.com client-a"}
	eu := &Cache{KV: kv, JS: b.JetStream(), Scope: "https://visibility.eu.amp.cisco.com client-a"}
	other := &Cache{KV: kv, JS: b.JetStream(), Scope: "https://visibility.amp.cisco.com client-b"}
	o := Observable{Type: "url", Value: "http://x.example/A"}
	if err := us.put(ctx, map[Observable][]schemas.Attribute{o: {{Name: "Disposition", Value: "Malicious"}}}); err != nil {
		t.Fatal(err)
	}
	if got := us.get(ctx, []Observable{o}); len(got) != 1 {
		t.Fatalf("own answer not found: %v", got)
	}
	for name, c := range map[string]*Cache{"other region": eu, "other client": other} {
		if got := c.get(ctx, []Observable{o}); len(got) != 0 {
			t.Errorf("%s read %v from another scope's cache", name, got)
		}
	}
	if got := us.get(ctx, []Observable{{Type: "url", Value: "http://x.example/a"}}); len(got) != 0 {
		t.Errorf("a URL differing in case read %v", got)
	}
}
