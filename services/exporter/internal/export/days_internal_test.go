package export

import (
	"context"
	"sync"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
)

// TestReserveUnderContention has many writers, on two connections, reserve
// slots of one day at once: every slot is handed out once, no chunk
// overflows, and chunks are opened in order, once each.
func TestReserveUnderContention(t *testing.T) {
	t.Parallel()
	srv := bustest.Server(t)
	var ds []*days
	for range 2 {
		kv, err := bustest.Connect(t, srv).KeyValue(context.Background(), bus.BucketMISPDays)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, &days{kv: kv, instance: "t", max: 100})
	}
	const writers, each, size = 8, 10, 7
	var mu sync.Mutex
	perChunk := map[int]int{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range each {
				allocs, _, err := ds[w%2].reserve(context.Background(), "2025-01-15", size)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, a := range allocs {
					perChunk[a.Chunk] += a.Count
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st, _, err := ds[0].get(context.Background(), "2025-01-15")
	if err != nil {
		t.Fatal(err)
	}
	total := writers * each * size // 560: five full chunks and 60.
	if len(st.Chunks) != 6 {
		t.Fatalf("%d chunks, want 6: %+v", len(st.Chunks), st.Chunks)
	}
	sum := 0
	for i, c := range st.Chunks {
		if c.N != i+1 || c.Claimed > 100 || c.Claimed != perChunk[c.N] {
			t.Errorf("chunk %+v: handed out %d", c, perChunk[c.N])
		}
		sum += c.Claimed
	}
	if sum != total {
		t.Errorf("%d slots claimed, want %d", sum, total)
	}
}

// TestClaimFirstWins checks that a value is claimed once: a later claimant
// learns the first one's chunk.
func TestClaimFirstWins(t *testing.T) {
	t.Parallel()
	kv, err := bustest.New(t).KeyValue(context.Background(), bus.BucketMISPDays)
	if err != nil {
		t.Fatal(err)
	}
	d := &days{kv: kv, instance: "t", max: 100}
	k := d.valueKey("2025-01-15", "ip-dst", "192.0.2.1")
	tests := []struct {
		name    string
		chunk   int
		wantN   int
		wantOur bool
	}{
		{name: "first", chunk: 2, wantN: 2, wantOur: true},
		{name: "second", chunk: 3, wantN: 2, wantOur: false},
	}
	for _, tt := range tests { // In order: the second depends on the first.
		n, _, ours, err := d.claim(context.Background(), k, tt.chunk, exactHash("192.0.2.1"))
		if err != nil || n != tt.wantN || ours != tt.wantOur {
			t.Errorf("%s: claim = %d, %v, %v; want %d, %v", tt.name, n, ours, err, tt.wantN, tt.wantOur)
		}
	}
	if n, exact, err := d.lookup(context.Background(), k); err != nil || n != 2 || exact != exactHash("192.0.2.1") {
		t.Errorf("lookup = %d, %q, %v; want 2", n, exact, err)
	}
	if d.valueKey("2025-01-15", "filename", "Invoice.exe") != d.valueKey("2025-01-15", "filename", "invoicé.EXE") {
		t.Error("case and accent variants have different claim keys; MISP takes them for one value")
	}
	if d.valueKey("2025-01-15", "filename", "a.exe") == d.valueKey("2025-01-15", "filename", "b.exe") {
		t.Error("distinct values share a claim key")
	}
}
