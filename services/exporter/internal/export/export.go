package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/schemas"
)

// MaxPerEvent is the most attributes one day-event takes (the seed
// connector's 25,000, about half of what a MISP at recommended PHP settings
// can still fetch).
const MaxPerEvent = 25_000

// Claim lifetimes. A claim expires DefaultClaimTTL after it was written
// unless Settings say otherwise; see the package documentation for what an
// expired claim means.
const (
	// DefaultClaimTTL is how long a value's claim on a day lives.
	DefaultClaimTTL = 30 * 24 * time.Hour
	// MinClaimTTL is the shortest claim lifetime the service accepts: a
	// claim must outlive its day (at most 25 hours long, in any time zone)
	// and that day's late redeliveries, or a value still arriving for the
	// day would be claimed again, into a later chunk.
	MinClaimTTL = 48 * time.Hour
)

// MISP is what the exporter needs of a MISP instance. *misp.Client
// implements it.
type MISP interface {
	// AddEvent creates an event; a UUID already taken returns the event
	// that has it, whoever owns it.
	AddEvent(ctx context.Context, ev misp.Event) (misp.Event, error)
	// AddAttributes adds attributes to an event (id or UUID), sorting each
	// into saved, already there, merged or rejected.
	AddAttributes(ctx context.Context, event string, attrs []misp.Attribute) (misp.AddResult, error)
	// SearchEvents finds events (here: by UUID, metadata only).
	SearchEvents(ctx context.Context, q misp.SearchQuery) ([]misp.Event, error)
	// SearchAttributes finds attributes by event, type and values.
	SearchAttributes(ctx context.Context, q misp.AttributeQuery) ([]misp.Attribute, error)
	// PublishEvent publishes an event without e-mail alerts.
	PublishEvent(ctx context.Context, idOrUUID string) error
}

var _ MISP = (*misp.Client)(nil)

// DayFrom says which time of an indicator decides its day.
type DayFrom string

// Day rules.
const (
	// DayFromUpdatedAt takes the indicator's updated_at (the default).
	DayFromUpdatedAt DayFrom = "updated_at"
	// DayFromPublished takes the time the fetcher published the message
	// (the stream's timestamp): "the day it was exported", as the seed
	// connector did, and still the same on every redelivery.
	DayFromPublished DayFrom = "published"
)

// Settings say what the exporter sends. The zero value of each field but
// Instance has a default.
type Settings struct {
	// Instance names the job instance: KV keys derive from it.
	Instance string
	// Seed makes the event UUIDs this export's own (misp.Seed of the MISP
	// URL, the ThreatQ URL and the instance, or an operator's override):
	// two deployments with different seeds never share an event. Instance
	// when empty.
	Seed string
	// OrgID and OrgName are the API user's organisation (/users/view/me).
	// An event found under one of our UUIDs is filled only when its
	// creator organisation is this one (and its info or a tag is ours);
	// otherwise the chunk moves to the next UUID generation. Unchecked
	// when both are empty.
	OrgID, OrgName string
	// ResendAfter is how long to wait before resending attributes after a
	// 504, a client time-out or a 5xx on /attributes/add: PHP goes on
	// saving the batch after the proxy gave up, and a resend racing it
	// gets a 500 from the uuid unique key (misp.md correction 5). Use
	// MISP's max_execution_time (MISP_TIMEOUT); 5 minutes when zero.
	ResendAfter time.Duration
	// Location is the time zone days are cut in; UTC when nil.
	Location *time.Location
	// DayFrom picks the time that decides an indicator's day.
	DayFrom DayFrom
	// InfoPrefix starts each event's info: "<prefix> <YYYY-MM-DD> #<n>".
	InfoPrefix string
	// MaxPerEvent caps attributes per event; [MaxPerEvent] when zero.
	MaxPerEvent int
	// ClaimTTL is how long a value's claim on a day lives (the NATS
	// per-key TTL of its key); [DefaultClaimTTL] when zero. New accepts
	// anything from a second (the server's granularity), for tests; the
	// service keeps it at least [MinClaimTTL].
	ClaimTTL time.Duration
	// SendSize is the most attributes per /attributes/add call; 1000 when
	// zero. A 413 halves it for that call.
	SendSize int
	// Parallel bounds the concurrent MISP calls and KV operations of one
	// batch; 4 when zero (KV operations use 16 times as many).
	Parallel int
	// Distribution, ThreatLevel and Analysis go on every event (misp.md
	// §6.1): defaults "0", "4" and "2".
	Distribution, ThreatLevel, Analysis string
	// EventTags go on every event (e.g. "tlp:amber", an exporter tag).
	EventTags []string
	// ToIDsThreshold, when set, makes to_ids "score >= threshold"; nil
	// keeps MISP's default for the type.
	ToIDsThreshold *float64
	// ScoreTag adds the tag threatq:score="<floor(score)>" to each
	// attribute (MISP drops it unless the tag exists or the user may create
	// tags).
	ScoreTag bool
	// MinScore skips (acknowledges without exporting) indicators scored
	// below it: a guard behind the fetcher's own selection.
	MinScore float64
	// SkipLossy skips the ThreatQ types MISP has no type for instead of
	// sending them as "text" in "Other".
	SkipLossy bool
	// DisableCorrelation sets disable_correlation on every attribute,
	// which makes bulk inserts cheaper for MISP.
	DisableCorrelation bool
	// Types, when set, is the instance's describeTypes: an attribute whose
	// type or category the instance does not allow is dead-lettered
	// without being sent.
	Types *misp.DescribeTypes
	// Now is the clock [Exporter.Publish] measures quiet time with;
	// time.Now when nil.
	Now func() time.Time
}

func (s *Settings) setDefaults() {
	if s.Location == nil {
		s.Location = time.UTC
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.DayFrom == "" {
		s.DayFrom = DayFromUpdatedAt
	}
	if s.InfoPrefix == "" {
		s.InfoPrefix = "ThreatQ export"
	}
	if s.MaxPerEvent <= 0 {
		s.MaxPerEvent = MaxPerEvent
	}
	if s.ClaimTTL == 0 {
		s.ClaimTTL = DefaultClaimTTL
	}
	if s.SendSize <= 0 {
		s.SendSize = 1000
	}
	if s.Parallel <= 0 {
		s.Parallel = 4
	}
	if s.Distribution == "" {
		s.Distribution = misp.DistributionOrganisation
	}
	if s.ThreatLevel == "" {
		s.ThreatLevel = misp.ThreatLevelUndefined
	}
	if s.Analysis == "" {
		s.Analysis = misp.AnalysisCompleted
	}
	if s.Seed == "" {
		s.Seed = s.Instance
	}
	if s.ResendAfter <= 0 {
		s.ResendAfter = 5 * time.Minute
	}
}

// Stats counts what an Exporter did, by indicator message. Safe for
// concurrent use.
type Stats struct {
	// Received counts messages handled (a redelivery counts again).
	Received atomic.Int64
	// Invalid counts messages that do not decode, or whose value MISP would
	// refuse (dead-lettered).
	Invalid atomic.Int64
	// Unsupported counts indicators of a type MISP has no place for, or a
	// lossy type when those are skipped (acknowledged, not exported).
	Unsupported atomic.Int64
	// BelowScore counts indicators under MinScore (acknowledged).
	BelowScore atomic.Int64
	// Saved counts attributes MISP stored.
	Saved atomic.Int64
	// Existing counts attributes MISP already held (a retry or re-run).
	Existing atomic.Int64
	// Merged counts values MISP took for another value of the same event,
	// type and category (its duplicate rule ignores case and accents): the
	// exact value is not in MISP; the one it was merged with is.
	Merged atomic.Int64
	// Adopted counts events found in MISP under our UUIDs and used (an
	// earlier run's, its state lost).
	Adopted atomic.Int64
	// Foreign counts events found under our UUIDs that are not ours
	// (another organisation's, or not an export's): left alone.
	Foreign atomic.Int64
	// Published counts events published.
	Published atomic.Int64
	// Rejected counts attributes MISP refused (dead-lettered).
	Rejected atomic.Int64
	// Claimed counts values claimed for a day for the first time.
	Claimed atomic.Int64
	// Events counts events this exporter added.
	Events atomic.Int64
	// Requests counts MISP calls.
	Requests atomic.Int64
}

// Exporter handles batches of indicator.v1 messages. Make one with [New].
type Exporter struct {
	misp  MISP
	days  *days
	set   Settings
	stats *Stats
	log   *slog.Logger
	// fatal is told of an error no retry can fix (a refused key).
	fatal func(error)

	mu   sync.Mutex // Serialises event creation in this process.
	refs sync.Map   // "<day>#<n>" → eventRef of an event known to exist
	// discovered holds the days whose events were looked for in MISP;
	// discoverMu makes one batch at a time look.
	discovered sync.Map
	discoverMu sync.Mutex

	// sendSize is the current most attributes per call: SendSize, halved
	// after a call that timed out (the batch was too slow for MISP), grown
	// back by an eighth after each call that went through.
	sendSize atomic.Int64

	pubMu   sync.Mutex
	touched map[string]time.Time // event UUID → last save, until published
}

// New returns an Exporter that keeps day state in kv (the
// tqflow_misp_days bucket). fatal, when not nil, is called with errors no
// retry can fix (MISP refused the key or the permission): the caller stops
// consuming. stats may be nil.
func New(m MISP, kv jetstream.KeyValue, s Settings, stats *Stats, log *slog.Logger, fatal func(error)) (*Exporter, error) {
	s.setDefaults()
	var errs []error
	if m == nil {
		errs = append(errs, errors.New("no MISP client"))
	}
	if kv == nil {
		errs = append(errs, errors.New("no key-value bucket"))
	}
	if !bus.ValidToken(s.Instance) {
		errs = append(errs, fmt.Errorf("instance %q: want 1 to 64 letters, digits, - or _", s.Instance))
	}
	if s.MaxPerEvent > MaxPerEvent {
		errs = append(errs, fmt.Errorf("max per event %d: want at most %d", s.MaxPerEvent, MaxPerEvent))
	}
	if s.ClaimTTL < time.Second {
		errs = append(errs, fmt.Errorf("claim ttl %s: want at least 1s", s.ClaimTTL))
	}
	if s.DayFrom != DayFromUpdatedAt && s.DayFrom != DayFromPublished {
		errs = append(errs, fmt.Errorf("day from %q: want %s or %s", s.DayFrom, DayFromUpdatedAt, DayFromPublished))
	}
	if t := s.ToIDsThreshold; t != nil && (math.IsNaN(*t) || *t < 0 || *t > 10) {
		errs = append(errs, fmt.Errorf("to_ids threshold %v: want 0 to 10", *t))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configure exporter: %w", err)
	}
	if stats == nil {
		stats = &Stats{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fatal == nil {
		fatal = func(error) {}
	}
	ex := &Exporter{
		misp: m, days: &days{kv: kv, instance: s.Instance, seed: s.Seed, max: s.MaxPerEvent, claimTTL: s.ClaimTTL},
		set: s, stats: stats, log: log, fatal: fatal, touched: map[string]time.Time{},
	}
	ex.sendSize.Store(int64(s.SendSize))
	return ex, nil
}

// Day returns a day's state as stored, for tools and tests.
func (e *Exporter) Day(ctx context.Context, day string) (Day, error) {
	st, _, err := e.days.get(ctx, day)
	return st, err
}

// EventUUID returns the UUID of a day's chunk n in its current generation.
func (e *Exporter) EventUUID(day string, c Chunk) string { return e.days.eventUUID(day, c) }

// DayOf returns the day (YYYY-MM-DD) an indicator belongs to.
func (e *Exporter) DayOf(ind schemas.IndicatorData, published time.Time) string {
	t := ind.UpdatedAt
	if e.set.DayFrom == DayFromPublished && !published.IsZero() {
		t = published
	}
	return t.In(e.set.Location).Format(time.DateOnly)
}

// item is one (day, type, normalised value) of a batch, with the messages
// that carry it.
type item struct {
	msgs  []int
	day   string
	key   string
	exact string // exactHash of attr.Value
	attr  misp.Attribute
	chunk int
	err   error
	// variants are messages of the batch whose values MISP takes for
	// this one's (same claim key, another exact value): merged.
	variants []variant
	// merged says MISP holds another value for this item's key: nothing
	// is sent, its messages count as merged.
	merged bool
	// done says MISP already holds exactly this value (found in an
	// adopted event): nothing is sent.
	done bool
}

// variant is a message whose value shares an item's claim key.
type variant struct {
	msg   int
	value string
}

// hold makes the item stand for the value MISP (or the day's claim) holds,
// named by its exact hash: when that is one of the item's variants, the
// variant becomes the item's value and the others its variants. It
// reports whether the item's value is now the one held; if not, the item
// is merged.
func (it *item) hold(held string) bool {
	if held == "" || held == it.exact {
		return true
	}
	for i, v := range it.variants {
		if exactHash(v.value) != held {
			continue
		}
		rest := append([]variant(nil), it.variants[:i]...)
		rest = append(rest, it.variants[i+1:]...)
		for _, m := range it.msgs {
			rest = append(rest, variant{m, it.attr.Value})
		}
		var same []int
		for _, r := range rest {
			if r.value == v.value {
				same = append(same, r.msg)
			}
		}
		it.msgs = append([]int{v.msg}, same...)
		it.variants = it.variants[:0]
		for _, r := range rest {
			if r.value != v.value {
				it.variants = append(it.variants, r)
			}
		}
		it.attr.Value, it.exact = v.value, held
		return true
	}
	return false
}

// Handle is a [bus.BatchHandler].
func (e *Exporter) Handle(ctx context.Context, ms []*bus.Message) []error {
	errs := make([]error, len(ms))
	items, byDay := e.parse(ms, errs)
	if len(items) == 0 {
		return errs
	}
	e.assign(ctx, items, byDay)
	e.send(ctx, byDay)
	for _, it := range items {
		if it.err == nil {
			e.stats.Merged.Add(int64(len(it.variants)))
			continue
		}
		for _, i := range it.msgs {
			errs[i] = it.err
		}
		for _, v := range it.variants {
			errs[v.msg] = it.err
		}
	}
	return errs
}

// parse decodes, maps and normalises the batch into items, one per
// distinct (day, type, value), and groups them by day.
func (e *Exporter) parse(ms []*bus.Message, errs []error) ([]*item, map[string][]*item) {
	var items []*item
	byKey := map[string]*item{}
	byDay := map[string][]*item{}
	for i, m := range ms {
		e.stats.Received.Add(1)
		var in schemas.Indicator
		if err := schemas.Decode(m.Data, &in); err != nil {
			e.stats.Invalid.Add(1)
			errs[i] = bus.Permanent(err)
			continue
		}
		ind := in.Indicator
		if ind.Score < e.set.MinScore {
			e.stats.BelowScore.Add(1)
			continue
		}
		mp, ok := misp.MapType(ind.Type, ind.Value)
		if !ok || (mp.Lossy && e.set.SkipLossy) {
			e.stats.Unsupported.Add(1)
			continue
		}
		value, err := misp.Normalize(mp.Type, ind.Value)
		if err != nil {
			e.stats.Invalid.Add(1)
			errs[i] = bus.Permanent(fmt.Errorf("normalise %s value of indicator %d: %w", ind.Type, ind.ID, err))
			continue
		}
		if t := e.set.Types; t != nil && !t.Allowed(mp.Type, mp.Category) {
			e.stats.Invalid.Add(1)
			errs[i] = bus.Permanent(fmt.Errorf("map indicator %d: the MISP instance does not allow type %s in category %s", ind.ID, mp.Type, mp.Category))
			continue
		}
		day := e.DayOf(ind, m.Published)
		key := e.days.valueKey(day, mp.Type, value)
		if it := byKey[key]; it != nil {
			if it.attr.Value == value {
				it.msgs = append(it.msgs, i)
			} else {
				it.variants = append(it.variants, variant{i, value})
			}
			continue
		}
		it := &item{msgs: []int{i}, day: day, key: key, exact: exactHash(value), attr: e.attribute(mp, ind, value)}
		byKey[key] = it
		items = append(items, it)
		byDay[day] = append(byDay[day], it)
	}
	return items, byDay
}

// attribute builds the attribute for an indicator, without its UUID (which
// depends on the chunk).
func (e *Exporter) attribute(mp misp.Mapping, ind schemas.IndicatorData, value string) misp.Attribute {
	score := strconv.FormatFloat(ind.Score, 'f', -1, 64)
	a := misp.Attribute{
		Type: mp.Type, Category: mp.Category, Value: value, ToIDs: mp.ToIDs,
		Distribution:       misp.DistributionInherit,
		Comment:            "ThreatQ score: " + score,
		DisableCorrelation: e.set.DisableCorrelation,
	}
	if mp.Lossy {
		a.Comment += "; ThreatQ type: " + ind.Type
	}
	if t := e.set.ToIDsThreshold; t != nil {
		a.ToIDs = ind.Score >= *t
	}
	if e.set.ScoreTag {
		a.Tag = []misp.Tag{{Name: `threatq:score="` + strconv.Itoa(int(math.Floor(ind.Score))) + `"`}}
	}
	return a
}

// parallel calls fn(i) for i in [0, n) with at most p at once.
func parallel(n, p int, fn func(i int)) {
	sem := make(chan struct{}, p)
	var wg bus.Group // A helper's panic reaches the runner's recover.
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

// assign gives every item its chunk: the chunk of an earlier claim of its
// value that day, or a freshly reserved slot.
func (e *Exporter) assign(ctx context.Context, items []*item, byDay map[string][]*item) {
	kvPar := 16 * e.set.Parallel
	parallel(len(items), kvPar, func(i int) {
		it := items[i]
		var exact string
		it.chunk, exact, it.err = e.days.lookup(ctx, it.key)
		it.merged = it.chunk > 0 && !it.hold(exact)
	})
	for day, its := range byDay {
		var fresh []*item
		for _, it := range its {
			if it.err == nil && it.chunk == 0 {
				fresh = append(fresh, it)
			}
		}
		if len(fresh) == 0 {
			continue
		}
		st, err := e.discover(ctx, day)
		if err == nil {
			fresh, err = e.inAdopted(ctx, day, st, fresh)
		}
		if err != nil {
			for _, it := range fresh {
				it.err = err
			}
			continue
		}
		if len(fresh) == 0 {
			continue
		}
		// From here on a stop must not interrupt: slots reserved but never
		// claimed would be lost to the chunk.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		allocs, _, err := e.days.reserve(dctx, day, len(fresh))
		if err != nil {
			cancel()
			for _, it := range fresh {
				it.err = err
			}
			continue
		}
		k := 0
		for _, a := range allocs {
			for range a.Count {
				fresh[k].chunk = a.Chunk
				k++
			}
		}
		parallel(len(fresh), kvPar, func(i int) {
			it := fresh[i]
			got, exact, ours, err := e.days.claim(dctx, it.key, it.chunk, it.exact)
			switch {
			case err != nil:
				it.chunk, it.err = 0, err
			case !ours:
				// Another replica claimed the value meanwhile: our slot
				// stays unused, the value goes where the claim says.
				it.chunk = got
				it.merged = !it.hold(exact)
			default:
				e.stats.Claimed.Add(1)
			}
		})
		cancel()
	}
}

// group is the items of one day's chunk.
type group struct {
	day   string
	chunk int
	items []*item
}

// send ensures each chunk's event exists and adds its attributes.
func (e *Exporter) send(ctx context.Context, byDay map[string][]*item) {
	var groups []*group
	for day, its := range byDay {
		byChunk := map[int]*group{}
		for _, it := range its {
			switch {
			case it.err != nil:
				continue
			case it.merged:
				e.stats.Merged.Add(int64(len(it.msgs)))
				continue
			case it.done:
				e.stats.Existing.Add(1)
				continue
			}
			g := byChunk[it.chunk]
			if g == nil {
				g = &group{day: day, chunk: it.chunk}
				byChunk[it.chunk] = g
				groups = append(groups, g)
			}
			g.items = append(g.items, it)
		}
	}
	type piece struct {
		g     *group
		items []*item
	}
	var pieces []piece
	size := int(e.sendSize.Load())
	for _, g := range groups {
		for start := 0; start < len(g.items); start += size {
			pieces = append(pieces, piece{g, g.items[start:min(start+size, len(g.items))]})
		}
	}
	parallel(len(pieces), e.set.Parallel, func(i int) {
		p := pieces[i]
		if err := e.sendPiece(ctx, p.g.day, p.g.chunk, p.items); err != nil {
			for _, it := range p.items {
				it.err = err
			}
		}
	})
}

// sendPiece adds one call's worth of attributes to a chunk's event,
// creating the event first where needed. A 413 halves the call; an event
// that turns out to be gone is added again once.
func (e *Exporter) sendPiece(ctx context.Context, day string, n int, its []*item) error {
	for attempt := 0; ; attempt++ {
		ev, err := e.ensureEvent(ctx, day, n)
		if err != nil {
			return err
		}
		attrs := make([]misp.Attribute, len(its))
		for i, it := range its {
			a := it.attr
			a.UUID = misp.AttributeUUID(ev.uuid, a.Type, a.Value)
			attrs[i] = a
		}
		var res misp.AddResult
		err = e.retry(ctx, func() error {
			var err error
			res, err = e.misp.AddAttributes(ctx, ev.uuid, attrs)
			return err
		})
		switch {
		case err == nil:
			if cur := e.sendSize.Load(); cur < int64(e.set.SendSize) {
				e.sendSize.CompareAndSwap(cur, min(int64(e.set.SendSize), cur+max(cur/8, 1)))
			}
			e.stats.Saved.Add(int64(len(res.Saved)))
			e.stats.Existing.Add(int64(len(res.Existing)))
			e.stats.Merged.Add(int64(len(res.Merged)))
			e.stats.Rejected.Add(int64(len(res.Rejected)))
			if len(res.Saved) > 0 {
				e.touch(ev.uuid)
			}
			for _, r := range res.Rejected {
				it := its[r.Index]
				it.err = bus.Permanent(fmt.Errorf("add %s attribute to event %s: MISP refused it: %s", it.attr.Type, ev.uuid, r.Reason()))
			}
			return nil
		case mayStillBeSaving(err):
			e.shrinkSendSize(len(its))
			// A proxy's 504, our own time-out or a PHP failure: the worker
			// may still be saving this batch. Resending now would race it
			// (and lose a batch to the uuid unique key's 500): hand the
			// messages back for after MISP's max_execution_time, when what
			// was saved comes back as existing.
			return bus.Transient(fmt.Errorf("add %d attributes to event %s, resending in %s: %w",
				len(attrs), ev.uuid, e.set.ResendAfter, err), e.set.ResendAfter)
		case errors.Is(err, misp.ErrTooLarge) && len(its) > 1:
			// Too large for a proxy: halve.
			mid := len(its) / 2
			for _, half := range [][]*item{its[:mid], its[mid:]} {
				if err := e.sendPiece(ctx, day, n, half); err != nil {
					for _, it := range half {
						it.err = err
					}
				}
			}
			return nil
		case errors.Is(err, misp.ErrNotFound) && attempt == 0:
			// The event is gone (deleted, or the state is from another
			// MISP): add it again, under a new UUID if it is blocklisted.
			e.refs.Delete(refKey(day, n))
			if _, ferr := e.days.forget(ctx, day, n, ev.gen); ferr != nil {
				return ferr
			}
			continue
		case errors.Is(err, misp.ErrNotFound):
			// Gone again: another batch is moving the chunk to its next
			// event right now. Never the values' fault: try again shortly.
			return bus.Transient(fmt.Errorf("add %d attributes to event %s, gone again: %w", len(attrs), ev.uuid, err), time.Second)
		}
		return e.callError(fmt.Errorf("add %d attributes to event %s: %w", len(attrs), ev.uuid, err))
	}
}

// shrinkSendSize makes later calls at most half of a call of used
// attributes that timed out.
func (e *Exporter) shrinkSendSize(used int) {
	want := int64(max(used/2, 1))
	for {
		cur := e.sendSize.Load()
		if cur <= want || e.sendSize.CompareAndSwap(cur, want) {
			return
		}
	}
}

// retry makes a MISP call, and makes it again, up to twice, after a short
// pause when it fails transiently (a 503 blip, a refused connection):
// cheaper than handing the whole batch back to the runner. A failure
// after which MISP may still be working on the call (a 504, a time-out, a
// 500) is not retried here, nor a failure that asks for a long wait.
func (e *Exporter) retry(ctx context.Context, call func() error) error {
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		e.stats.Requests.Add(1)
		err := call()
		if err == nil || attempt == 2 || !httpx.IsTransient(err) || mayStillBeSaving(err) ||
			httpx.RetryAfterOf(err) > 2*time.Second || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(max(delay, httpx.RetryAfterOf(err)))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay *= 2
	}
}

// mayStillBeSaving reports whether a failed call may still be running on
// MISP's side: a proxy's 504, a 500 (PHP died, or a uuid unique key hit
// by a worker still saving an earlier copy of the batch), or our own
// time-out (the request may have reached PHP).
func mayStillBeSaving(err error) bool {
	var se *httpx.StatusError
	if errors.As(err, &se) {
		return se.StatusCode == http.StatusGatewayTimeout || se.StatusCode == http.StatusInternalServerError
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// callError classifies a failed MISP call: a refused key or permission
// stops the exporter (the messages are retried after a restart); anything
// else is returned for the runner to retry or dead-letter.
func (e *Exporter) callError(err error) error {
	if errors.Is(err, misp.ErrAuth) || errors.Is(err, misp.ErrForbidden) {
		e.fatal(err)
		return bus.Transient(err, time.Minute)
	}
	return err
}

// eventRef is a chunk's event as known now.
type eventRef struct {
	uuid string
	gen  int
}

// ensureEvent returns the event of a day's chunk n, adding it to MISP
// first unless the day's state (or this process) knows it exists. A
// blocklisted UUID (the event was deleted) moves the chunk to the next
// generation.
func (e *Exporter) ensureEvent(ctx context.Context, day string, n int) (eventRef, error) {
	ck := refKey(day, n)
	if r, ok := e.refs.Load(ck); ok {
		return r.(eventRef), nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.refs.Load(ck); ok {
		return r.(eventRef), nil
	}
	st, _, err := e.days.get(ctx, day)
	if err != nil {
		return eventRef{}, err
	}
	for range 5 {
		if n > len(st.Chunks) {
			return eventRef{}, fmt.Errorf("find chunk %d of day %s: the day has %d chunks", n, day, len(st.Chunks))
		}
		c := st.Chunks[n-1]
		ref := eventRef{uuid: e.days.eventUUID(day, c), gen: c.Gen}
		if c.Created {
			e.refs.Store(ck, ref)
			return ref, nil
		}
		var ev misp.Event
		err := e.retry(ctx, func() error {
			var err error
			ev, err = e.misp.AddEvent(ctx, e.event(day, ref.uuid, n))
			return err
		})
		switch {
		case err == nil && !e.ours(ev, day, n):
			e.stats.Foreign.Add(1)
			e.log.Warn("misp event under our uuid is not ours; leaving it alone and moving the chunk to a new uuid",
				"day", day, "chunk", n, "event_uuid", ref.uuid, "event_info", ev.Info, "generation", c.Gen+1)
			if st, err = e.days.nextGen(ctx, day, n, c.Gen); err != nil {
				return eventRef{}, err
			}
			continue
		case err == nil:
			e.stats.Events.Add(1)
			e.log.Info("misp event ready", "day", day, "chunk", n, "event_uuid", ref.uuid, "event_id", ev.ID.String(),
				"attribute_count", int(ev.AttributeCount))
			if ev.AttributeCount > 0 {
				// Another replica's or an earlier run's: count what it holds.
				if _, err := e.days.adopt(ctx, day, n, c.Gen, ev.ID.String(), int(ev.AttributeCount)); err != nil {
					return eventRef{}, err
				}
			}
			if _, err := e.days.created(ctx, day, n, c.Gen, ev.ID.String()); err != nil {
				return eventRef{}, err
			}
			e.refs.Store(ck, ref)
			return ref, nil
		case errors.Is(err, misp.ErrEventBlocked) && !errors.Is(err, misp.ErrForbidden):
			e.log.Warn("misp event uuid blocklisted (event deleted); moving the chunk to a new uuid",
				"day", day, "chunk", n, "event_uuid", ref.uuid, "generation", c.Gen+1)
			if st, err = e.days.nextGen(ctx, day, n, c.Gen); err != nil {
				return eventRef{}, err
			}
			continue
		}
		return eventRef{}, e.callError(fmt.Errorf("add event %s (%s #%d): %w", ref.uuid, day, n, err))
	}
	return eventRef{}, fmt.Errorf("add event for %s #%d: every generation tried is blocklisted or not ours", day, n)
}

func refKey(day string, n int) string { return day + "#" + strconv.Itoa(n) }

// info is the info of a day's chunk n event.
func (e *Exporter) info(day string, n int) string {
	return e.set.InfoPrefix + " " + day + " #" + strconv.Itoa(n)
}

// event builds a chunk's event.
func (e *Exporter) event(day, uuid string, n int) misp.Event {
	ev := misp.Event{
		UUID:          uuid,
		Info:          e.info(day, n),
		Date:          day,
		Distribution:  misp.NumStr(e.set.Distribution),
		ThreatLevelID: misp.NumStr(e.set.ThreatLevel),
		Analysis:      misp.NumStr(e.set.Analysis),
		Published:     false,
	}
	for _, t := range e.set.EventTags {
		ev.Tag = append(ev.Tag, misp.Tag{Name: t})
	}
	return ev
}
