package bus

import (
	"context"
	"errors"
	"iter"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// The names JetStream gives a key-value bucket's stream and subjects, and
// the header that marks a delete or purge. Only this package spells them:
// code elsewhere that reads a bucket beneath the KeyValue API (a batched
// get, an async put) goes through the functions below.
const (
	kvSubjectPrefix = "$KV."
	kvStreamPrefix  = "KV_"
	kvOperationHdr  = "KV-Operation"
)

// KVSubject is the subject bucket's stream stores key under: a message
// published there is a Put of key, as KeyValue.Put makes it.
func KVSubject(bucket, key string) string { return kvSubjectPrefix + bucket + "." + key }

// KVStream is the name of bucket's stream.
func KVStream(bucket string) string { return kvStreamPrefix + bucket }

// KVLast reads the current value of each of keys in bucket with batched
// direct gets, the last message of many subjects in one request
// (nats-server 2.11 and later), rather than a KeyValue.Get round trip
// each. It yields the keys that hold a value; deleted, purged and absent
// keys are left out. An error (an older server among them) ends the
// sequence; the caller may fall back to KeyValue.Get.
func KVLast(ctx context.Context, js jetstream.JetStream, bucket string, keys []string) iter.Seq2[KVEntry, error] {
	return func(yield func(KVEntry, error) bool) {
		if len(keys) == 0 {
			return
		}
		subjects := make([]string, len(keys))
		keyOf := make(map[string]string, len(keys))
		for i, k := range keys {
			subjects[i] = KVSubject(bucket, k)
			keyOf[subjects[i]] = k
		}
		msgs, err := jetstreamext.GetLastMsgsFor(ctx, js, KVStream(bucket), subjects, jetstreamext.GetLastMsgsBatchSize(len(subjects)))
		if err != nil {
			yield(KVEntry{}, err)
			return
		}
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				return // None of them holds a value.
			}
			if err != nil {
				yield(KVEntry{}, err)
				return
			}
			if m.Header.Get(kvOperationHdr) != "" {
				continue // Deleted or purged.
			}
			k, ok := keyOf[m.Subject]
			if !ok {
				continue
			}
			if !yield(KVEntry{Key: k, Value: m.Data}, nil) {
				return
			}
		}
	}
}

// KVEntry is a key and its current value, as [KVLast] reads them.
type KVEntry struct {
	Key   string
	Value []byte
}
