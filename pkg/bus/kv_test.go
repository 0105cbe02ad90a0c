package bus_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
)

// TestKVLast: a batched read of more keys than one request carries
// yields every key that holds a value, once, and leaves out deleted and
// absent keys.
func TestKVLast(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := bustest.New(t)
	kv, err := b.KeyValue(ctx, bus.BucketCTRCache)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	var keys []string
	for i := range 2500 {
		k := fmt.Sprintf("k%04d", i)
		keys = append(keys, k)
		switch {
		case i%10 == 3:
			continue // Absent.
		case i%10 == 7:
			if _, err := kv.Put(ctx, k, []byte("old")); err != nil {
				t.Fatal(err)
			}
			if err := kv.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			continue
		}
		v := fmt.Sprint("v", i)
		if _, err := kv.Put(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	got := map[string]string{}
	for e, err := range bus.KVLast(ctx, b.JetStream(), bus.BucketCTRCache, keys) {
		if err != nil {
			t.Fatal(err)
		}
		if _, twice := got[e.Key]; twice {
			t.Errorf("key %s yielded twice", e.Key)
		}
		got[e.Key] = string(e.Value)
	}
	if !maps.Equal(got, want) {
		t.Errorf("read %d keys, want %d", len(got), len(want))
	}
}
