package export_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/exporter/internal/export"
)

const testKey = "0123456789abcdefghijABCDEFGHIJ0123456789"

// message is an indicator.v1 message of an IP address updated at noon UTC
// on 2025-01-15.
func message(t *testing.T, id int64, ip string) *bus.Message {
	t.Helper()
	data, err := json.Marshal(schemas.Indicator{Schema: schemas.IndicatorV1, Job: schemas.JobMISP, Instance: "t",
		Indicator: schemas.IndicatorData{ID: id, Value: ip, Type: "IP Address", Status: "Active", Score: 5,
			UpdatedAt: time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Message{Subject: bus.IndicatorSubject(schemas.JobMISP, "t"), Data: data, Delivered: 1}
}

// stateMsgs returns the last message of every key of the day state
// bucket, by key.
func stateMsgs(t *testing.T, b *bus.Bus) map[string]*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	kv, err := b.KeyValue(ctx, bus.BucketMISPDays)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.JetStream().Stream(ctx, bus.KVStream(bus.BucketMISPDays))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*jetstream.RawStreamMsg{}
	for k := range keys.Keys() {
		m, err := st.GetLastMsgForSubject(ctx, bus.KVSubject(bus.BucketMISPDays, k))
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		out[k] = m
	}
	return out
}

// TestClaimsExpireDaysStay gives claims a two-second lifetime: they carry
// it as their Nats-TTL and disappear, the day key has none and stays, and
// a value seen again after its claim expired takes a fresh slot of the day
// (in the last chunk, possibly a second event for it), never a slot past
// MaxPerEvent.
func TestClaimsExpireDaysStay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim := mispsim.New(mispsim.Options{Seed: 1, Keys: []string{testKey}})
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(hs.Close)
	client, err := misp.New(misp.Config{URL: hs.URL, Key: config.Secret(testKey), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := bustest.New(t)
	kv, err := b.KeyValue(ctx, bus.BucketMISPDays)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := export.New(client, kv, export.Settings{Instance: "t", MaxPerEvent: 2, ClaimTTL: 2 * time.Second}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	handle := func(ms ...*bus.Message) {
		t.Helper()
		for i, err := range ex.Handle(ctx, ms) {
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
	}
	handle(message(t, 1, "192.0.2.1"), message(t, 2, "192.0.2.2"), message(t, 3, "192.0.2.3"))

	msgs := stateMsgs(t, b)
	claims := 0
	for k, m := range msgs {
		ttl := m.Header.Get(jetstream.MsgTTLHeader)
		switch {
		case strings.Contains(k, ".v."):
			claims++
			if ttl != "2s" {
				t.Errorf("claim %s: Nats-TTL %q, want 2s", k, ttl)
			}
		case ttl != "":
			t.Errorf("day key %s: Nats-TTL %q, want none", k, ttl)
		}
	}
	if claims != 3 || len(msgs) != 4 {
		t.Fatalf("%d keys, %d of them claims; want 4 and 3", len(msgs), claims)
	}

	left := 0
	if !testkit.Wait(func() bool {
		left = 0
		for k := range msgs {
			if !strings.Contains(k, ".v.") {
				continue
			}
			_, err := kv.Get(ctx, k)
			switch {
			case err == nil:
				left++
			case !errors.Is(err, jetstream.ErrKeyNotFound):
				t.Fatalf("read %s: %v", k, err)
			}
		}
		return left == 0
	}, 20*time.Second) {
		t.Fatalf("%d claims still there 20s after a 2s TTL", left)
	}
	day, err := ex.Day(ctx, "2025-01-15")
	if err != nil {
		t.Fatal(err)
	}
	if len(day.Chunks) != 2 || day.Chunks[0].Claimed != 2 || day.Chunks[1].Claimed != 1 {
		t.Fatalf("day after the claims expired: %+v, want 2 chunks holding 2 and 1", day.Chunks)
	}

	// A replay of the day: each value is new again and takes the next
	// slot, the last one of chunk 2, then chunk 3.
	handle(message(t, 1, "192.0.2.1"))
	handle(message(t, 2, "192.0.2.2"))
	day, err = ex.Day(ctx, "2025-01-15")
	if err != nil {
		t.Fatal(err)
	}
	if len(day.Chunks) != 3 || day.Chunks[1].Claimed != 2 || day.Chunks[2].Claimed != 1 {
		t.Fatalf("day after the replay: %+v, want 3 chunks holding 2, 2 and 1", day.Chunks)
	}
	total := 0
	for _, c := range day.Chunks {
		n := len(sim.Attributes(ex.EventUUID("2025-01-15", c)))
		if n > 2 {
			t.Errorf("event #%d holds %d attributes, over MaxPerEvent 2", c.N, n)
		}
		total += n
	}
	if total != 5 {
		t.Errorf("the day's events hold %d attributes, want 5 (two values in two events each)", total)
	}
	for k, m := range stateMsgs(t, b) {
		if strings.Contains(k, ".v.") && m.Header.Get(jetstream.MsgTTLHeader) != "2s" {
			t.Errorf("claim %s written again: Nats-TTL %q, want 2s", k, m.Header.Get(jetstream.MsgTTLHeader))
		}
	}
}

// TestClaimTTLUnderASecondRefused checks New's own floor: NATS counts
// TTLs in seconds.
func TestClaimTTLUnderASecondRefused(t *testing.T) {
	t.Parallel()
	kv, err := bustest.New(t).KeyValue(context.Background(), bus.BucketMISPDays)
	if err != nil {
		t.Fatal(err)
	}
	client, err := misp.New(misp.Config{URL: "https://misp.example.org", Key: config.Secret(testKey)})
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{-time.Hour, 500 * time.Millisecond} {
		if _, err := export.New(client, kv, export.Settings{Instance: "t", ClaimTTL: ttl}, nil, nil, nil); err == nil ||
			!strings.Contains(err.Error(), "claim ttl") {
			t.Errorf("claim ttl %s: error %v, want one naming the claim ttl", ttl, err)
		}
	}
}
