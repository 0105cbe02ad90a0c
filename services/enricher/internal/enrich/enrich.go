package enrich

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/threatq"
	"github.com/tqflow/tqflow/schemas"
)

// Observable is a CTR observable: a CTR type and a value.
type Observable struct {
	Type, Value string
}

// CTR answers for a chunk of distinct observables in one call: for each
// one CTR has context for, its attributes (every module's rows, one per
// name and value). An observable missing from the map has no context.
type CTR interface {
	Observe(ctx context.Context, obs []Observable) (Answer, error)
}

// Answer is CTR's answer to one call.
type Answer struct {
	// Attributes holds the rows for each observable with context.
	Attributes map[Observable][]schemas.Attribute
	// ModuleErrors lists every failure of a module inside the answers of
	// the call (a relay's upstream limit or timeout), retries included.
	ModuleErrors []ModuleError
	// Incomplete says modules still failed after any retry: the answer
	// says nothing about what they know, so no observable of the call is
	// "no context" for sure, and none is cached.
	Incomplete bool
}

// ModuleError is one module's failure inside a 200 answer.
type ModuleError struct {
	Module, Code string
}

// Stats counts what an Enricher did. Safe for concurrent use.
type Stats struct {
	Received, Invalid, Unsupported, NoContext, Enriched, Unchanged, CacheHits, Asked atomic.Int64
	// Calls counts CTR calls; Incomplete the indicators left to a later
	// run because modules kept failing on them.
	Calls, Incomplete atomic.Int64

	mu           sync.Mutex
	moduleErrors map[string]int64
	refusal      error
	refusalGen   int64
}

// ModuleErrors returns the module errors seen, by module.
func (s *Stats) ModuleErrors() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.moduleErrors)
}

func (s *Stats) addModuleErrors(mes []ModuleError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.moduleErrors == nil {
		s.moduleErrors = map[string]int64{}
	}
	for _, me := range mes {
		s.moduleErrors[me.Module]++
	}
}

// Refused returns why CTR refuses every call (credentials refused, a
// scope missing), or nil while it answers.
func (s *Stats) Refused() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusal
}

// setRefusal records a refusal, or its end with nil; it reports whether
// the state changed, and returns the refusal generation after it.
func (s *Stats) setRefusal(err error) (changed bool, gen int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed = (s.refusal == nil) != (err == nil)
	s.refusal = err
	if err != nil {
		s.refusalGen++
	}
	return changed, s.refusalGen
}

func (s *Stats) refusalState() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusalGen, s.refusal
}

// Holder holds every replica's CTR calls after a 429 (the shared budget).
type Holder interface {
	Hold(ctx context.Context, d time.Duration) error
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
	// call when zero. The enricher is the one place observables are
	// de-duplicated (exactly, as sent) and chunked.
	Chunk int
	// Cache, when not nil, keeps answers across replicas and runs.
	Cache *Cache
	// Fatal reports whether a CTR error refuses every call alike (a
	// missing scope, credentials refused): consumption pauses, nothing is
	// dead-lettered, and a call is tried again every RefusedRetry. Nil
	// means no error is.
	Fatal func(error) bool
	// Blames reports whether a CTR error blames some observables of the
	// call (a 400 naming them): only then is the call split to find them.
	// Nil means none does.
	Blames func(error) bool
	// RefusedRetry is how often a refused CTR is tried again; a minute
	// when zero.
	RefusedRetry time.Duration
	// ModuleRetries is how many deliveries an indicator gets while modules
	// keep failing on it before it is settled with what the others said
	// (not cached, so a later run asks again); 5 when zero.
	ModuleRetries int
	// Holder, when set, is told of every 429's Retry-After, so that every
	// replica holds its calls.
	Holder Holder
	// Log logs the transitions into and out of a refusal, once each.
	Log *slog.Logger
	// OnRefusal, when set, is called on those transitions: with the
	// refusal, then with nil when CTR answers again (tqflow status shows
	// it from there).
	OnRefusal func(ctx context.Context, err error)
	// Instance names the job instance the writes belong to.
	Instance string
	// Status is the status name set on enriched indicators; empty leaves it.
	Status string
	// Source is the ThreatQ source the attributes are written under.
	Source string
	Stats  *Stats

	probe sync.Mutex // one call at a time while CTR refuses or before it answered
	ok    atomic.Bool
}

type item struct {
	msg *bus.Message
	ind schemas.IndicatorData
	obs Observable
}

// errIncomplete says modules failed on an observable's every try so far.
var errIncomplete = errors.New("ctr modules failed; asking again")

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
	askErr, incomplete := e.ask(ctx, ask, answers)
	batch := e.Bus.NewBatch(len(items))
	var published []int
	for _, i := range items {
		it := parsed[i]
		if err, failed := askErr[it.obs]; failed {
			errs[i] = err
			continue
		}
		if incomplete[it.obs] {
			if it.msg.Delivered < uint64(cmp.Or(e.ModuleRetries, 5)) {
				errs[i] = fmt.Errorf("observe %s: %w", it.obs.Type, errIncomplete)
				continue
			}
			// Settled with what the other modules said, not cached: a
			// later run asks again.
			e.Stats.Incomplete.Add(1)
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

// ask asks CTR about ask, a chunk per call, adding what it learns to
// answers. It returns the error of each observable it could not ask, and
// the observables modules failed on. A refusal or a rate limit stops the
// remaining chunks: they would fail alike.
func (e *Enricher) ask(ctx context.Context, ask []Observable, answers map[Observable][]schemas.Attribute) (map[Observable]error, map[Observable]bool) {
	askErr := map[Observable]error{}
	incomplete := map[Observable]bool{}
	if len(ask) == 0 {
		return askErr, incomplete
	}
	fresh := make(map[Observable][]schemas.Attribute, len(ask))
	chunk := e.Chunk
	if chunk <= 0 {
		chunk = len(ask)
	}
	var stop error // A refusal or a rate limit: ask no more.
	for part := range slices.Chunk(ask, chunk) {
		if stop != nil {
			for _, o := range part {
				askErr[o] = fmt.Errorf("observe %s: %w", o.Type, stop)
			}
			continue
		}
		callErrs := bus.Bisect(ctx, part, func(ctx context.Context, obs []Observable) error {
			got, err := e.call(ctx, obs)
			if err != nil {
				if e.Blames == nil || !e.Blames(err) {
					return notBlaming{err} // Split only for answers that blame observables.
				}
				return err
			}
			for _, o := range obs {
				if got.Incomplete {
					incomplete[o] = true
				}
				fresh[o] = got.Attributes[o] // nil: no context
			}
			return nil
		})
		for i, err := range callErrs {
			if err == nil {
				continue
			}
			if nb, ok := errors.AsType[notBlaming](err); ok {
				err = nb.err
			}
			askErr[part[i]] = fmt.Errorf("observe %s: %w", part[i].Type, err)
			delete(fresh, part[i])
			if bus.IsPause(err) || httpx.RetryAfterOf(err) > 0 {
				stop = err
			}
		}
	}
	maps.Copy(answers, fresh)
	if e.Cache != nil {
		complete := maps.Clone(fresh)
		maps.DeleteFunc(complete, func(o Observable, _ []schemas.Attribute) bool { return incomplete[o] })
		if len(complete) > 0 {
			_ = e.Cache.put(ctx, complete) // An optimisation: a failed put only costs a later call.
		}
	}
	return askErr, incomplete
}

// notBlaming wraps an error that says nothing about which observables
// are at fault, so that Bisect does not split the call.
type notBlaming struct{ err error }

func (e notBlaming) Error() string   { return e.err.Error() }
func (e notBlaming) Unwrap() error   { return e.err }
func (e notBlaming) Transient() bool { return true }

// call makes one CTR call. While CTR refuses every call, or until it has
// answered once, calls go one at a time, and a call that finds a refusal
// newer than when it started waiting does not go out at all: a refusal
// costs one call per RefusedRetry per process, not one per batch.
func (e *Enricher) call(ctx context.Context, obs []Observable) (Answer, error) {
	if !e.ok.Load() {
		gen, _ := e.Stats.refusalState()
		e.probe.Lock()
		defer e.probe.Unlock()
		if now, refusal := e.Stats.refusalState(); refusal != nil && now != gen {
			return Answer{}, bus.Pause(refusal, e.refusedRetry())
		}
	}
	e.Stats.Asked.Add(int64(len(obs)))
	e.Stats.Calls.Add(1)
	got, err := e.CTR.Observe(ctx, obs)
	switch {
	case err != nil && e.Fatal != nil && e.Fatal(err):
		e.ok.Store(false)
		if changed, _ := e.Stats.setRefusal(err); changed {
			if e.Log != nil {
				e.Log.Error("ctr refuses every call; enrichment paused until it answers", "err", err, "retry_every", e.refusedRetry())
			}
			if e.OnRefusal != nil {
				e.OnRefusal(ctx, err)
			}
		}
		return Answer{}, bus.Pause(err, e.refusedRetry())
	case err != nil:
		if ra := httpx.RetryAfterOf(err); ra > 0 && e.Holder != nil {
			_ = e.Holder.Hold(ctx, ra) // Best effort: this replica holds anyway.
		}
		return Answer{}, err
	}
	if changed, _ := e.Stats.setRefusal(nil); changed {
		if e.Log != nil {
			e.Log.Info("ctr answers again; enrichment resumed")
		}
		if e.OnRefusal != nil {
			e.OnRefusal(ctx, nil)
		}
	}
	e.ok.Store(true)
	e.Stats.addModuleErrors(got.ModuleErrors)
	return got, nil
}

func (e *Enricher) refusedRetry() time.Duration { return cmp.Or(e.RefusedRetry, time.Minute) }

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

// holds reports whether ind already is as a write of attrs would leave
// it: it carries every row of attrs and the status the enricher sets, and
// no row of ours that attrs does not hold (threatq.StaleRows, the rule the
// writer deletes by, judged on the rows' sources as the fetcher read
// them). Other feeds' rows under the same names may be there: they are
// never ours to remove. A row whose sources ThreatQ did not show (an
// older message) counts as another feed's, so such a message writes only
// when a value or the status differs.
func (e *Enricher) holds(ind schemas.IndicatorData, attrs []schemas.Attribute) bool {
	if e.Status != "" && ind.Status != e.Status {
		return false
	}
	type row struct{ name, value string }
	have := make(map[row]bool, len(ind.Attributes))
	rows := make([]threatq.Attribute, len(ind.Attributes))
	for i, a := range ind.Attributes {
		have[row{a.Name, a.Value}] = true
		rows[i] = threatq.Attribute{ID: a.ID, Name: a.Name, Value: a.Value, Sources: a.Sources}
	}
	want := make([]threatq.Attribute, len(attrs))
	for i, a := range attrs {
		if !have[row{a.Name, a.Value}] {
			return false
		}
		want[i] = threatq.Attribute{Name: a.Name, Value: a.Value}
	}
	return len(threatq.StaleRows(rows, want, e.Source)) == 0
}

// write builds the write.v1 message for an indicator CTR has context for.
// Its ID is derived from what it writes and the version of the indicator
// it was read at, so the same enrichment published twice is stored once;
// a replay adds its ID, since a replay exists to write again what was
// written before. Which rows the write replaces is the writer's to
// decide, from the rows and their sources as ThreatQ holds them then
// (threatq.StaleRows), for replays alike.
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
	// The version of the indicator read goes into the ID beside what is
	// written: the same write again after ThreatQ changed (CTR going back
	// to an earlier answer, or forgetting a module so that only stale rows
	// differ) must reach the writer, while a redelivered indicator still
	// publishes one write.
	h := sha256.New()
	_, _ = h.Write(data)
	_, _ = h.Write([]byte(ind.UpdatedAt.UTC().Format(time.RFC3339Nano)))
	sum := h.Sum(nil)
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
