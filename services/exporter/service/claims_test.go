package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
)

// TestClaimTTLOnABucketFromBefore starts from a day state bucket made as
// before claims expired (no per-key TTLs) and holding a day: applying the
// topology updates it in place, the day is still there, and the exporter
// then writes every claim with EXPORTER_CLAIM_TTL as its Nats-TTL and
// every day key without one.
func TestClaimTTLOnABucketFromBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := bustest.Server(t)
	nc, err := srv.Connect("old")
	if err != nil {
		t.Fatal(err)
	}
	old, err := bus.New(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Close() })
	oldKV, err := old.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bus.BucketMISPDays, Description: "MISP day and chunk state per instance",
		History: 5, Storage: jetstream.FileStorage, Replicas: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	const oldDay = `{"chunks":[{"n":1,"claimed":1,"created":true,"event_id":"7"}]}`
	if _, err := oldKV.Create(ctx, instance+".2025-01-14", []byte(oldDay)); err != nil {
		t.Fatal(err)
	}
	if _, err := oldKV.Create(ctx, instance+".2025-01-14.v.00000000000000000000000000000000", []byte("1")); err != nil {
		t.Fatal(err)
	}

	b := bustest.Connect(t, srv) // Applies the topology to the bucket above.
	kv, err := b.KeyValue(ctx, bus.BucketMISPDays)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.LimitMarkerTTL() != bus.KeyMarkerTTL || st.History() != 5 {
		t.Fatalf("bucket after the topology: history %d, limit marker TTL %s; want 5 and %s", st.History(), st.LimitMarkerTTL(), bus.KeyMarkerTTL)
	}
	if e, err := kv.Get(ctx, instance+".2025-01-14"); err != nil || string(e.Value()) != oldDay {
		t.Fatalf("day written before the update: %v, %v", e, err)
	}

	_, url := newMISP(t, mispsim.Options{Seed: 4})
	inds := generate(40, 0, day1)
	publish(t, b, inds)
	cfg := testConfig(url)
	cfg.ClaimTTL = 72 * time.Hour
	run(t, b, cfg, int64(len(inds)), time.Minute)

	stream, err := b.JetStream().Stream(ctx, bus.KVStream(bus.BucketMISPDays))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	claims, days := 0, 0
	for k := range keys.Keys() {
		m, err := stream.GetLastMsgForSubject(ctx, bus.KVSubject(bus.BucketMISPDays, k))
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		ttl := m.Header.Get(jetstream.MsgTTLHeader)
		switch {
		case !strings.HasPrefix(k, instance+".2025-01-15"):
			// Written before the update, as they were.
		case strings.Contains(k, ".v."):
			claims++
			if ttl != "72h0m0s" {
				t.Errorf("claim %s: Nats-TTL %q, want 72h0m0s", k, ttl)
			}
		default:
			days++
			if ttl != "" {
				t.Errorf("day key %s: Nats-TTL %q, want none", k, ttl)
			}
		}
	}
	if claims != len(inds) || days != 1 {
		t.Errorf("%d claims and %d day keys for 2025-01-15, want %d and 1", claims, days, len(inds))
	}
}
