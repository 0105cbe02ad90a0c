package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// The names JetStream gives a key-value bucket's stream and subjects (the
// header that marks a delete or purge is [headerKVOperation]). Only this
// package spells them: code elsewhere that reads a bucket beneath the
// KeyValue API (a batched get, an async put) goes through the functions
// below.
const (
	kvSubjectPrefix = "$KV."
	kvStreamPrefix  = "KV_"
)

// KVSubject is the subject bucket's stream stores key under: a message
// published there is a Put of key, as KeyValue.Put makes it.
func KVSubject(bucket, key string) string { return kvSubjectPrefix + bucket + "." + key }

// KVStream is the name of bucket's stream.
func KVStream(bucket string) string { return kvStreamPrefix + bucket }

// kvBatch is the most keys [KVLast] asks for in one batched get.
const kvBatch = 1000

// syncQueueLen is the buffer of a connection's synchronous subscriptions:
// a batched get's answers (at most kvBatch and an end-of-batch message)
// arrive on one (orbit's RequestMany), and nats.go's default of 65,536
// messages allocated half a megabyte per batched get, a tenth of all the
// CTR job's allocations. Nothing else of tqflow's subscribes
// synchronously; jetstream's consumers bring their own channels.
const syncQueueLen = 2 * kvBatch

// KVLast reads the current value of each of keys in bucket with batched
// direct gets, the last message of many subjects in one request
// (nats-server 2.11 and later), rather than a KeyValue.Get round trip
// each; up to kvBatch keys a request. It yields the keys that hold a
// value; deleted, purged and absent keys are left out. An error (an older
// server among them) ends the sequence; the caller may fall back to
// KeyValue.Get.
func KVLast(ctx context.Context, js jetstream.JetStream, bucket string, keys []string) iter.Seq2[KVEntry, error] {
	return func(yield func(KVEntry, error) bool) {
		for chunk := range slices.Chunk(keys, kvBatch) {
			if !kvLast(ctx, js, bucket, chunk, yield) {
				return
			}
		}
	}
}

// kvLast is one batched get of [KVLast]; it reports whether to go on.
func kvLast(ctx context.Context, js jetstream.JetStream, bucket string, keys []string, yield func(KVEntry, error) bool) bool {
	subjects := make([]string, len(keys))
	keyOf := make(map[string]string, len(keys))
	for i, k := range keys {
		subjects[i] = KVSubject(bucket, k)
		keyOf[subjects[i]] = k
	}
	msgs, err := jetstreamext.GetLastMsgsFor(ctx, js, KVStream(bucket), subjects, jetstreamext.GetLastMsgsBatchSize(len(subjects)))
	if err != nil {
		yield(KVEntry{}, err)
		return false
	}
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			return true // None of them holds a value.
		}
		if err != nil {
			yield(KVEntry{}, err)
			return false
		}
		if m.Header.Get(headerKVOperation) != "" {
			continue // Deleted or purged.
		}
		k, ok := keyOf[m.Subject]
		if !ok {
			continue
		}
		if !yield(KVEntry{Key: k, Value: m.Data}, nil) {
			return false
		}
	}
	return true
}

// KVEntry is a key and its current value, as [KVLast] reads them.
type KVEntry struct {
	Key   string
	Value []byte
}

// LoadJSON reads key of kv as JSON into a T, with the revision to pass to
// [SaveJSON]; a key that does not exist is the zero T at revision 0.
func LoadJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string) (T, uint64, error) {
	var v T
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return v, 0, nil
	}
	if err != nil {
		return v, 0, err
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, fmt.Errorf("decode: %w", err)
	}
	return v, e.Revision(), nil
}

// SaveJSON stores v as JSON under key only if its revision is still rev
// (0: the key does not exist yet), so that two writers never both move
// it: the second gets an error.
func SaveJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any, rev uint64) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = kv.Create(ctx, key, data)
	} else {
		_, err = kv.Update(ctx, key, data, rev)
	}
	return err
}
