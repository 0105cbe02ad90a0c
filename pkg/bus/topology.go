package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	StreamIndicators = "INDICATORS"
	StreamRulesets   = "RULESETS"
	StreamWrites     = "WRITES"
	StreamDeadLetter = "DEADLETTER"
)

// Subjects of the writes stream.
const (
	SubjectWriteIndicator = "tq.writes.indicator"
	SubjectWriteSignature = "tq.writes.signature"
)

// Key-value buckets and the object store.
const (
	// BucketCheckpoints holds each fetcher instance's checkpoint.
	BucketCheckpoints = "tqflow_checkpoints"
	// BucketLeases holds the fetcher leases: one active fetcher per instance.
	BucketLeases = "tqflow_leases"
	// BucketCTRCache caches CTR results per observable, with a TTL.
	BucketCTRCache = "tqflow_ctr_cache"
	// BucketCTRBudget holds the org-wide CTR request budget every enricher
	// replica draws from (and the hold after a 429).
	BucketCTRBudget = "tqflow_ctr_budget"
	// BucketMISPDays holds each MISP instance's day and chunk state.
	BucketMISPDays = "tqflow_misp_days"
	// BucketETState holds each ET instance's last md5 and sid to rev map.
	BucketETState = "tqflow_et_state"
	// ObjectRulesets holds downloaded ruleset tarballs, keyed by md5.
	ObjectRulesets = "tqflow_rulesets"
)

// LeaseTTL is how long a fetcher lease lives unrenewed: a fetcher that
// dies is replaced by a standby within it.
const LeaseTTL = 30 * time.Second

// KeyMarkerTTL is how long a bucket with per-key TTLs keeps the marker the
// server leaves where a key expired. It is the server's minimum: nothing
// watches those markers, and the server raises every key's TTL to at least
// the marker's.
const KeyMarkerTTL = time.Second

// IndicatorSubject returns the subject of a job instance's indicators,
// tq.indicators.<job>.<instance>.
func IndicatorSubject(job, instance string) string {
	return "tq.indicators." + job + "." + instance
}

// RulesetSubject returns the subject of an ET instance's rulesets.
func RulesetSubject(instance string) string { return "et.rulesets." + instance }

// DeadLetterSubject returns the subject of the dead letters of one consumer.
func DeadLetterSubject(stream, consumer string) string {
	return "dlq." + stream + "." + consumer
}

// ValidToken reports whether s can stand as one token of a subject, a
// consumer name or a KV key: letters, digits, '-' and '_' only.
func ValidToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Topology is every stream, bucket and object store tqflow uses, sized by
// a [Config].
type Topology struct {
	Streams      []jetstream.StreamConfig
	Buckets      []jetstream.KeyValueConfig
	ObjectStores []jetstream.ObjectStoreConfig
}

// NewTopology returns the topology for c.
func NewTopology(c Config) Topology {
	stream := func(name, desc string, subjects ...string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    subjects,
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Discard:     jetstream.DiscardOld,
			MaxAge:      c.MaxAge,
			MaxBytes:    c.MaxBytes,
			Duplicates:  c.Duplicates,
			Replicas:    c.Replicas,
		}
	}
	bucket := func(name, desc string, history uint8, ttl time.Duration) jetstream.KeyValueConfig {
		return jetstream.KeyValueConfig{
			Bucket:      name,
			Description: desc,
			History:     history,
			TTL:         ttl,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
		}
	}
	keyTTLs := func(kc jetstream.KeyValueConfig) jetstream.KeyValueConfig {
		kc.LimitMarkerTTL = KeyMarkerTTL
		return kc
	}
	return Topology{
		Streams: []jetstream.StreamConfig{
			stream(StreamIndicators, "ThreatQ indicators to enrich or export", "tq.indicators.>"),
			stream(StreamRulesets, "ET rules files, pointing into the object store", "et.rulesets.>"),
			stream(StreamWrites, "writes for ThreatQ", "tq.writes.>"),
			stream(StreamDeadLetter, "messages that could not be processed", "dlq.>"),
		},
		Buckets: []jetstream.KeyValueConfig{
			bucket(BucketCheckpoints, "fetcher checkpoints per instance", 5, 0),
			bucket(BucketLeases, "fetcher leases: one active fetcher per instance", 1, LeaseTTL),
			bucket(BucketCTRCache, "CTR results per observable", 1, cmp.Or(c.CTRCacheTTL, DefaultCTRCacheTTL)),
			bucket(BucketCTRBudget, "CTR request budget shared by every enricher", 1, 0),
			// Per-key TTLs: the exporter's value claims expire
			// (EXPORTER_CLAIM_TTL), its day keys do not. Adding this to a
			// bucket made without it is an update the server accepts.
			keyTTLs(bucket(BucketMISPDays, "MISP day and chunk state per instance", 5, 0)),
			bucket(BucketETState, "ET ruleset state per instance", 1, 0),
		},
		ObjectStores: []jetstream.ObjectStoreConfig{{
			Bucket:      ObjectRulesets,
			Description: "downloaded ruleset tarballs, by md5",
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			MaxBytes:    -1,
		}},
	}
}

// Ensure creates or updates everything in t. It is idempotent and safe to
// run from several replicas at once.
//
// Each request gets a short deadline and is tried again: on a fresh
// cluster, several workers creating the same streams at the same moment
// can leave a request without an answer, and waiting for it would hold a
// worker for the whole start-up timeout.
func (t Topology) Ensure(ctx context.Context, js jetstream.JetStream) error {
	for _, sc := range t.Streams {
		if err := retry(ctx, func(ctx context.Context) error { _, err := js.CreateOrUpdateStream(ctx, sc); return err }); err != nil {
			return fmt.Errorf("create stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range t.Buckets {
		if err := retry(ctx, func(ctx context.Context) error { _, err := js.CreateOrUpdateKeyValue(ctx, kc); return err }); err != nil {
			return fmt.Errorf("create key-value bucket %s: %w", kc.Bucket, err)
		}
	}
	for _, oc := range t.ObjectStores {
		if err := retry(ctx, func(ctx context.Context) error { _, err := js.CreateOrUpdateObjectStore(ctx, oc); return err }); err != nil {
			return fmt.Errorf("create object store %s: %w", oc.Bucket, err)
		}
	}
	return nil
}

// ensureAttempt bounds one topology request.
const ensureAttempt = 10 * time.Second

// unanswered reports whether err means the request got no answer, or the
// cluster was not ready for it: worth asking again, unlike a refusal such
// as a configuration conflict.
func unanswered(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 503 {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoHeartbeat)
}

// retry calls fn with a deadline of ensureAttempt until it succeeds or ctx
// ends, backing off between attempts, and returns the last error.
func retry(ctx context.Context, fn func(context.Context) error) error {
	wait := 200 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, ensureAttempt)
		err := fn(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !unanswered(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// ConsumerName returns the durable name of a worker kind's consumer for
// one job instance, e.g. "enricher-ctr-default". Replicas of a worker share
// it and so share the work.
func ConsumerName(parts ...string) string { return strings.Join(parts, "-") }
