package enrich

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/schemas"
)

// Observable is a CTR observable: a CTR type and a value.
type Observable struct {
	Type, Value string
}

// CTR answers for a batch of observables: for each one CTR has context
// for, its attributes, one value per name. An observable missing from the
// map has no context. Implementations split the batch into API calls.
type CTR interface {
	Observe(ctx context.Context, obs []Observable) (map[Observable][]schemas.Attribute, error)
}

// Stats counts what an Enricher did. Safe for concurrent use.
type Stats struct {
	Received, Invalid, Unsupported, NoContext, Enriched, Unchanged, CacheHits, Asked atomic.Int64
}

// Enricher handles batches of indicator.v1 messages.
type Enricher struct {
	Bus *bus.Bus
	CTR CTR
	// TypeFor maps a ThreatQ indicator type to a CTR observable type; false
	// for types CTR does not support, which are skipped and counted.
	TypeFor func(threatqType string) (string, bool)
	// Chunk is the most observables asked of CTR in one call (its batch
	// size): a call that fails, a 429 say, fails only its own; all in one
	// call when zero.
	Chunk int
	// Cache, when not nil, keeps answers across replicas and runs.
	Cache *Cache
	// Instance names the job instance the writes belong to.
	Instance string
	// Status is the status name set on enriched indicators; empty leaves it.
	Status string
	// Source is the ThreatQ source the attributes are written under.
	Source string
	Stats  *Stats
}

type item struct {
	msg *bus.Message
	ind schemas.IndicatorData
	obs Observable
}

// Handle is a [bus.BatchHandler].
func (e *Enricher) Handle(ctx context.Context, ms []*bus.Message) []error {
	errs := make([]error, len(ms))
	var items []int // indexes into ms of messages to ask CTR about
	parsed := make([]item, len(ms))
	for i, m := range ms {
		e.Stats.Received.Add(1)
		var in schemas.Indicator
		if err := schemas.Decode(m.Data, &in); err != nil {
			e.Stats.Invalid.Add(1)
			errs[i] = bus.Permanent(err)
			continue
		}
		t, ok := e.TypeFor(in.Indicator.Type)
		if !ok {
			e.Stats.Unsupported.Add(1)
			continue
		}
		parsed[i] = item{msg: m, ind: in.Indicator, obs: Observable{Type: t, Value: in.Indicator.Value}}
		items = append(items, i)
	}
	if len(items) == 0 {
		return errs
	}
	answers, ask := e.lookup(ctx, parsed, items)
	// Ask CTR about every miss of the batch, a chunk per call; a permanent
	// failure (a 400 for the whole call) is narrowed down to the
	// observables at fault.
	askErr := map[Observable]error{}
	if len(ask) > 0 {
		fresh := make(map[Observable][]schemas.Attribute, len(ask))
		chunk := e.Chunk
		if chunk <= 0 {
			chunk = len(ask)
		}
		var limited error // A rate limit: ask no more until it passes.
		for part := range slices.Chunk(ask, chunk) {
			if limited != nil {
				for _, o := range part {
					askErr[o] = fmt.Errorf("observe %s: %w", o.Type, limited)
				}
				continue
			}
			callErrs := bus.Bisect(ctx, part, func(ctx context.Context, obs []Observable) error {
				e.Stats.Asked.Add(int64(len(obs)))
				got, err := e.CTR.Observe(ctx, obs)
				if err != nil {
					return err
				}
				for _, o := range obs {
					fresh[o] = got[o] // nil: no context
				}
				return nil
			})
			for i, err := range callErrs {
				if err != nil {
					askErr[part[i]] = fmt.Errorf("observe %s: %w", part[i].Type, err)
					delete(fresh, part[i])
					if httpx.RetryAfterOf(err) > 0 {
						limited = err
					}
				}
			}
		}
		for o, a := range fresh {
			answers[o] = a
		}
		if e.Cache != nil && len(fresh) > 0 {
			_ = e.Cache.put(ctx, fresh) // An optimisation: a failed put only costs a later call.
		}
	}
	batch := e.Bus.NewBatch(len(items))
	var published []int
	for _, i := range items {
		it := parsed[i]
		if err, failed := askErr[it.obs]; failed {
			errs[i] = err
			continue
		}
		attrs := answers[it.obs]
		if len(attrs) == 0 {
			e.Stats.NoContext.Add(1)
			continue
		}
		if e.holds(it.ind, attrs) {
			// Already as CTR says (typically our own write coming back
			// because it changed the status): writing would change nothing.
			e.Stats.Unchanged.Add(1)
			continue
		}
		out, err := e.write(it.ind, attrs, it.msg.Replay())
		if err != nil {
			errs[i] = bus.Permanent(err)
			continue
		}
		if err := batch.Add(ctx, out); err != nil {
			errs[i] = err
			continue
		}
		published = append(published, i)
	}
	// Ack nothing before the writes are stored: a lost write would be a
	// lost enrichment.
	if err := batch.Wait(ctx); err != nil {
		for _, i := range published {
			errs[i] = fmt.Errorf("publish write: %w", err)
		}
		return errs
	}
	e.Stats.Enriched.Add(int64(len(published)))
	return errs
}

// lookup returns the cached answers and the distinct observables to ask
// CTR about. A replayed message is never answered from the cache: a
// replay is a backfill, run to ask CTR again what it knows now.
func (e *Enricher) lookup(ctx context.Context, parsed []item, items []int) (map[Observable][]schemas.Attribute, []Observable) {
	uniq := make([]Observable, 0, len(items))
	seen := make(map[Observable]bool, len(items))
	var replayed map[Observable]bool
	for _, i := range items {
		o := parsed[i].obs
		if parsed[i].msg.Replay() != "" {
			if replayed == nil {
				replayed = map[Observable]bool{}
			}
			replayed[o] = true
		}
		if !seen[o] {
			seen[o] = true
			uniq = append(uniq, o)
		}
	}
	answers := map[Observable][]schemas.Attribute{}
	if e.Cache != nil {
		cached := uniq
		if replayed != nil {
			cached = slices.DeleteFunc(slices.Clone(uniq), func(o Observable) bool { return replayed[o] })
		}
		answers = e.Cache.get(ctx, cached)
		e.Stats.CacheHits.Add(int64(len(answers)))
	}
	ask := slices.DeleteFunc(uniq, func(o Observable) bool { _, ok := answers[o]; return ok })
	return answers, ask
}

// holds reports whether ind already carries every row of attrs and the
// status the enricher sets. Other rows under the same names may be there:
// other feeds' rows, which are never ours to remove (threatq.StaleRows).
// TODO(tq): a row of ours CTR no longer reports, under a name it no
// longer gives, is only removed at the next write that changes
// something: indicator.v1 does not carry the rows' sources (issue 9).
func (e *Enricher) holds(ind schemas.IndicatorData, attrs []schemas.Attribute) bool {
	if e.Status != "" && ind.Status != e.Status {
		return false
	}
	type row struct{ name, value string }
	have := make(map[row]bool, len(ind.Attributes))
	for _, a := range ind.Attributes {
		have[row{a.Name, a.Value}] = true
	}
	for _, a := range attrs {
		if !have[row{a.Name, a.Value}] {
			return false
		}
	}
	return true
}

// write builds the write.v1 message for an indicator CTR has context for.
// Its ID is derived from what it writes, so the same enrichment published
// twice is stored once; a replay adds its ID, since a replay exists to
// write again what was written before. Which rows the write replaces is
// the writer's to decide, from the rows and their sources as ThreatQ
// holds them then (threatq.StaleRows), for replays alike.
func (e *Enricher) write(ind schemas.IndicatorData, attrs []schemas.Attribute, replay string) (bus.Outgoing, error) {
	w := schemas.Write{
		Schema:   schemas.WriteV1,
		Kind:     schemas.KindIndicator,
		Instance: e.Instance,
		Indicator: &schemas.IndicatorWrite{
			ID: ind.ID, Value: ind.Value, Type: ind.Type, Status: e.Status, FetchedStatus: ind.Status, Source: e.Source,
			Attributes: attrs,
		},
	}
	data, err := json.Marshal(w)
	if err != nil {
		return bus.Outgoing{}, fmt.Errorf("encode write for indicator %d: %w", ind.ID, err)
	}
	if err := w.Validate(); err != nil {
		return bus.Outgoing{}, fmt.Errorf("write for indicator %d: %w", ind.ID, err)
	}
	sum := sha256.Sum256(data)
	return bus.Outgoing{
		Subject: bus.SubjectWriteIndicator,
		ID:      "w:" + e.Instance + ":" + strconv.FormatInt(ind.ID, 10) + ":" + hex.EncodeToString(sum[:12]) + replaySuffix(replay),
		Data:    data,
	}, nil
}

func replaySuffix(replay string) string {
	if replay == "" {
		return ""
	}
	return ":replay:" + replay
}
