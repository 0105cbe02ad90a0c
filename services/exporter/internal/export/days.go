package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/misp"
)

// maxCASAttempts bounds the compare-and-set retries of one state change.
// Each conflict means another writer succeeded, so running out means heavy
// contention: the batch is retried later.
const maxCASAttempts = 100

// ErrContention says a day's state kept changing under a compare-and-set
// for maxCASAttempts attempts.
var ErrContention = errors.New("export: day state contention")

// Day is a day's state, stored as JSON under "<instance>.<day>".
type Day struct {
	// Chunks are the day's events, chunk 1 first. Only the last one takes
	// new attributes.
	Chunks []Chunk `json:"chunks"`
}

// Chunk is one event of a day.
type Chunk struct {
	// N numbers the chunk from 1.
	N int `json:"n"`
	// Gen is the generation of the event UUID: 0 at first, raised when
	// MISP refuses the UUID because the event was deleted (blocklisted).
	Gen int `json:"gen,omitempty"`
	// Claimed counts the attribute slots handed out; never more than the
	// exporter's MaxPerEvent.
	Claimed int `json:"claimed"`
	// Created says the event exists in MISP, so replicas need not add it.
	Created bool `json:"created,omitempty"`
	// EventID is MISP's id of the event, once created.
	EventID string `json:"event_id,omitempty"`
	// Adopted says the event was found in MISP, made by an earlier run
	// whose state is gone: values arriving for the day are looked up in it
	// before they are given a slot, and Claimed was raised to its
	// attribute_count.
	Adopted bool `json:"adopted,omitempty"`
}

// Alloc is a run of slots reserved in one chunk.
type Alloc struct {
	Chunk, Count int
}

// days reads and changes day state in the bucket.
type days struct {
	kv       jetstream.KeyValue
	instance string
	// seed makes event UUIDs this export's own (misp.Seed).
	seed string
	max  int
	// claimTTL is the per-key TTL of claim keys. Day keys have none.
	claimTTL time.Duration
}

func (d *days) dayKey(day string) string { return d.instance + "." + day }

// valueKey is the claim key of a (type, normalised value) on a day. The
// value is taken as MISP's duplicate rule sees it (misp.FoldKey: case and
// accents ignored), so that two values MISP takes for one share a claim
// and go to the same chunk, where MISP keeps one of them.
func (d *days) valueKey(day, mispType, value string) string {
	h := sha256.New()
	h.Write([]byte(mispType))
	h.Write([]byte{0})
	h.Write(misp.FoldKey(value))
	return d.instance + "." + day + ".v." + hex.EncodeToString(h.Sum(nil)[:16])
}

// exactHash names a value exactly as it is (not folded), for a claim to
// record which of the values sharing its key MISP holds.
func exactHash(value string) string {
	h := sha256.Sum256([]byte(value))
	return hex.EncodeToString(h[:8])
}

// eventUUID is the UUID of a chunk's event in its generation.
func (d *days) eventUUID(day string, c Chunk) string {
	seed := d.seed
	if c.Gen > 0 {
		seed += "|g" + strconv.Itoa(c.Gen+1)
	}
	return misp.EventUUID(seed, day, c.N)
}

// get reads a day; a day never written is empty, revision 0.
func (d *days) get(ctx context.Context, day string) (Day, uint64, error) {
	e, err := d.kv.Get(ctx, d.dayKey(day))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return Day{}, 0, nil
	case err != nil:
		return Day{}, 0, fmt.Errorf("read day %s: %w", day, err)
	}
	var out Day
	if err := json.Unmarshal(e.Value(), &out); err != nil {
		return Day{}, 0, fmt.Errorf("decode day %s: %w", day, err)
	}
	return out, e.Revision(), nil
}

// change applies fn to the day's state and stores it with compare-and-set,
// retrying on conflict. fn may be called several times; it returns false
// when there is nothing to write.
func (d *days) change(ctx context.Context, day string, fn func(*Day) bool) (Day, error) {
	for range maxCASAttempts {
		st, rev, err := d.get(ctx, day)
		if err != nil {
			return Day{}, err
		}
		if !fn(&st) {
			return st, nil
		}
		b, err := json.Marshal(st)
		if err != nil {
			return Day{}, fmt.Errorf("encode day %s: %w", day, err)
		}
		if rev == 0 {
			// No TTL, ever: an expired day key would start the day's slot
			// count again at zero while its events still hold their
			// attributes, and a new value could then go to a chunk
			// already full, past MaxPerEvent.
			_, err = d.kv.Create(ctx, d.dayKey(day), b)
		} else {
			_, err = d.kv.Update(ctx, d.dayKey(day), b, rev)
		}
		switch {
		case err == nil:
			return st, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // Another replica wrote first: read again.
		default:
			return Day{}, fmt.Errorf("write day %s: %w", day, err)
		}
	}
	return Day{}, fmt.Errorf("write day %s: %w", day, ErrContention)
}

// reserve hands out n slots of the day: what is left in the last chunk,
// then new chunks of up to max slots each.
func (d *days) reserve(ctx context.Context, day string, n int) ([]Alloc, Day, error) {
	var allocs []Alloc
	st, err := d.change(ctx, day, func(st *Day) bool {
		allocs = allocs[:0]
		left := n
		for left > 0 {
			if len(st.Chunks) == 0 || st.Chunks[len(st.Chunks)-1].Claimed >= d.max {
				st.Chunks = append(st.Chunks, Chunk{N: len(st.Chunks) + 1})
			}
			c := &st.Chunks[len(st.Chunks)-1]
			take := min(d.max-c.Claimed, left)
			c.Claimed += take
			left -= take
			allocs = append(allocs, Alloc{Chunk: c.N, Count: take})
		}
		return n > 0
	})
	if err != nil {
		return nil, Day{}, fmt.Errorf("reserve %d slots: %w", n, err)
	}
	return allocs, st, nil
}

// created records that chunk n's event (of generation gen) exists.
func (d *days) created(ctx context.Context, day string, n, gen int, id string) (Day, error) {
	return d.change(ctx, day, func(st *Day) bool {
		if n > len(st.Chunks) || st.Chunks[n-1].Gen != gen || st.Chunks[n-1].Created {
			return false
		}
		st.Chunks[n-1].Created, st.Chunks[n-1].EventID = true, id
		return true
	})
}

// nextGen moves chunk n to the next UUID generation, unless another
// replica already did, and returns the day.
func (d *days) nextGen(ctx context.Context, day string, n, gen int) (Day, error) {
	return d.change(ctx, day, func(st *Day) bool {
		if n == len(st.Chunks)+1 && gen == 0 {
			st.Chunks = append(st.Chunks, Chunk{N: n, Gen: 1})
			return true
		}
		if n > len(st.Chunks) || st.Chunks[n-1].Gen != gen {
			return false
		}
		st.Chunks[n-1] = Chunk{N: n, Gen: gen + 1, Claimed: st.Chunks[n-1].Claimed}
		return true
	})
}

// adopt records that chunk n's event (of generation gen) was found in
// MISP holding count attributes: the chunk counts at least that many slots
// taken. A chunk beyond the state's last is added.
func (d *days) adopt(ctx context.Context, day string, n, gen int, id string, count int) (Day, error) {
	return d.change(ctx, day, func(st *Day) bool {
		if n == len(st.Chunks)+1 {
			st.Chunks = append(st.Chunks, Chunk{N: n, Gen: gen})
		}
		if n > len(st.Chunks) || st.Chunks[n-1].Gen != gen {
			return false
		}
		c := &st.Chunks[n-1]
		if c.Created && c.Adopted && c.Claimed >= count && c.EventID == id {
			return false
		}
		c.Created, c.Adopted, c.EventID = true, true, id
		c.Claimed = max(c.Claimed, count)
		return true
	})
}

// forget records that chunk n's event is gone (not found in MISP), so
// that it is added again.
func (d *days) forget(ctx context.Context, day string, n, gen int) (Day, error) {
	return d.change(ctx, day, func(st *Day) bool {
		if n > len(st.Chunks) || st.Chunks[n-1].Gen != gen || !st.Chunks[n-1].Created {
			return false
		}
		st.Chunks[n-1].Created, st.Chunks[n-1].EventID = false, ""
		return true
	})
}

// claimValue is what a claim key holds: "<chunk>:<exactHash>" (claims
// written before MISP's folding was known hold "<chunk>" alone).
func claimValue(n int, exact string) []byte { return []byte(strconv.Itoa(n) + ":" + exact) }

// lookup returns the chunk a claim holds and the exact hash of the value
// it was made for ("" for an old claim), or 0 when the value is not
// claimed yet.
func (d *days) lookup(ctx context.Context, key string) (int, string, error) {
	e, err := d.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, "", nil
	case err != nil:
		return 0, "", fmt.Errorf("read claim %s: %w", key, err)
	}
	num, exact, _ := strings.Cut(string(e.Value()), ":")
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		return 0, "", fmt.Errorf("read claim %s: value %q is not a chunk number", key, e.Value())
	}
	return n, exact, nil
}

// claim records that the value of key, exactly the value named by exact,
// goes to chunk n, unless another claimant was first: it returns the chunk
// and exact hash that hold the claim and whether it is ours. The claim
// expires after claimTTL.
func (d *days) claim(ctx context.Context, key string, n int, exact string) (int, string, bool, error) {
	_, err := d.kv.Create(ctx, key, claimValue(n, exact), jetstream.KeyTTL(d.claimTTL))
	if err == nil {
		return n, exact, true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, "", false, fmt.Errorf("claim %s: %w", key, err)
	}
	got, gotExact, err := d.lookup(ctx, key)
	if err != nil {
		return 0, "", false, err
	}
	if got == 0 {
		return 0, "", false, fmt.Errorf("claim %s: %w", key, ErrContention)
	}
	return got, gotExact, false, nil
}
