package export

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/misp"
)

// maxGenerations bounds how many UUID generations of one chunk are tried
// (blocklisted or foreign events) before giving up.
const maxGenerations = 5

// ours reports whether an event found under one of our UUIDs may be
// filled: created by our organisation (when known), and carrying the
// chunk's info or one of our event tags. An event of another
// organisation (synced, or another deployment that shares our seed) is
// left alone, as is one of ours that is not an export's.
func (e *Exporter) ours(ev misp.Event, day string, n int) bool {
	if e.set.OrgID != "" || e.set.OrgName != "" {
		org := ev.Orgc
		if org == nil {
			org = ev.Org
		}
		id := ev.OrgcID.String()
		if org != nil && org.ID.String() != "" {
			id = org.ID.String()
		}
		switch {
		case e.set.OrgID != "" && id != "":
			if id != e.set.OrgID {
				return false
			}
		case e.set.OrgName != "" && org != nil && org.Name != "":
			if org.Name != e.set.OrgName {
				return false
			}
		default:
			return false // Nothing says who owns it: not ours to fill.
		}
	}
	if ev.Info == e.info(day, n) {
		return true
	}
	for _, t := range ev.Tag {
		for _, want := range e.set.EventTags {
			if strings.EqualFold(t.Name, want) {
				return true
			}
		}
	}
	return false
}

// discover looks for the day's events in MISP when the day's state does
// not know them (a new day, or state lost or recreated): chunk by chunk
// from 1, an event of ours under the chunk's UUID is adopted (its
// attribute_count raises the chunk's count, so no event passes
// MaxPerEvent), one not ours moves the chunk to the next UUID generation,
// and the first chunk without an event ends the search. Done once per day
// and process.
func (e *Exporter) discover(ctx context.Context, day string) (Day, error) {
	if _, done := e.discovered.Load(day); done {
		st, _, err := e.days.get(ctx, day)
		return st, err
	}
	e.discoverMu.Lock()
	defer e.discoverMu.Unlock()
	st, _, err := e.days.get(ctx, day)
	if err != nil {
		return Day{}, err
	}
	if _, done := e.discovered.Load(day); done {
		return st, nil
	}
	gens := 0
	for n := 1; ; {
		var c Chunk
		if n <= len(st.Chunks) {
			c = st.Chunks[n-1]
			if c.Created {
				n++
				continue
			}
		} else {
			c = Chunk{N: n}
		}
		uuid := e.days.eventUUID(day, c)
		var evs []misp.Event
		err := e.retry(ctx, func() error {
			var err error
			evs, err = e.misp.SearchEvents(ctx, misp.SearchQuery{UUID: uuid, Metadata: true})
			return err
		})
		if err != nil {
			return Day{}, e.callError(fmt.Errorf("look for event %s (%s #%d): %w", uuid, day, n, err))
		}
		var found *misp.Event
		for i := range evs {
			if strings.EqualFold(evs[i].UUID, uuid) {
				found = &evs[i]
			}
		}
		switch {
		case found == nil:
			e.discovered.Store(day, true)
			return e.dayNow(ctx, day, st)
		case !e.ours(*found, day, n):
			if gens++; gens > maxGenerations {
				return Day{}, fmt.Errorf("look for event of %s #%d: %d generations are taken by events not ours", day, n, gens)
			}
			e.stats.Foreign.Add(1)
			e.log.Warn("misp event under our uuid is not ours; leaving it alone and moving the chunk to a new uuid",
				"day", day, "chunk", n, "event_uuid", uuid, "event_info", found.Info, "generation", c.Gen+1)
			if st, err = e.days.nextGen(ctx, day, n, c.Gen); err != nil {
				return Day{}, err
			}
		default:
			e.stats.Adopted.Add(1)
			e.log.Info("misp event of an earlier run found; counting its attributes",
				"day", day, "chunk", n, "event_uuid", uuid, "event_id", found.ID.String(),
				"attribute_count", int(found.AttributeCount))
			if st, err = e.days.adopt(ctx, day, n, c.Gen, found.ID.String(), int(found.AttributeCount)); err != nil {
				return Day{}, err
			}
			n++
		}
	}
}

// dayNow returns the day as stored now (st when nothing changed it).
func (e *Exporter) dayNow(ctx context.Context, day string, st Day) (Day, error) {
	now, _, err := e.days.get(ctx, day)
	if err != nil {
		return st, err
	}
	return now, nil
}

// searchChunk bounds the values of one attribute search.
const searchChunk = 500

// inAdopted looks the fresh (unclaimed) items of a day up in its adopted
// events, which an earlier run filled before its state was lost: a value
// found there is claimed for that chunk without a slot (the event's count
// already holds it) and not sent again; one MISP holds in another form
// (case or accents) is merged. It returns the items still fresh.
func (e *Exporter) inAdopted(ctx context.Context, day string, st Day, fresh []*item) ([]*item, error) {
	chunkOf := map[string]int{}
	var ids []string
	for _, c := range st.Chunks {
		if c.Adopted && c.EventID != "" {
			chunkOf[c.EventID] = c.N
			ids = append(ids, c.EventID)
		}
	}
	if len(ids) == 0 {
		return fresh, nil
	}
	byType := map[string][]*item{}
	for _, it := range fresh {
		byType[it.attr.Type] = append(byType[it.attr.Type], it)
	}
	found := map[*item]bool{}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for typ, its := range byType {
		for start := 0; start < len(its); start += searchChunk {
			part := its[start:min(start+searchChunk, len(its))]
			byKey := map[string]*item{}
			values := make([]string, len(part))
			for i, it := range part {
				values[i] = it.attr.Value
				byKey[it.key] = it
			}
			var hits []misp.Attribute
			err := e.retry(ctx, func() error {
				var err error
				hits, err = e.misp.SearchAttributes(ctx, misp.AttributeQuery{EventID: ids, Type: typ, Value: values})
				return err
			})
			if err != nil {
				return nil, e.callError(fmt.Errorf("look for %d %s values in the adopted events of %s: %w", len(values), typ, day, err))
			}
			for _, h := range hits {
				n, inDay := chunkOf[h.EventID.String()]
				it := byKey[e.days.valueKey(day, typ, h.Value)]
				if !inDay || it == nil || found[it] || h.Deleted {
					continue
				}
				exact := exactHash(h.Value)
				got, gotExact, _, err := e.days.claim(dctx, it.key, n, exact)
				if err != nil {
					return nil, err
				}
				found[it] = true
				it.chunk = got
				it.merged = !it.hold(gotExact)
				it.done = !it.merged
			}
		}
	}
	out := fresh[:0:0]
	for _, it := range fresh {
		if !found[it] {
			out = append(out, it)
		}
	}
	return out, nil
}

// touch records that an event got attributes, for [Exporter.Publish].
func (e *Exporter) touch(uuid string) {
	e.pubMu.Lock()
	e.touched[uuid] = e.set.Now()
	e.pubMu.Unlock()
}

// Publish publishes, without e-mail alerts, every event that got
// attributes and then none for quiet (all of them when quiet is 0): once
// per run, after its last chunk, as every later attribute unpublishes the
// event again (misp.md §2.6). It returns the first failure; an event that
// failed stays to be published next time.
func (e *Exporter) Publish(ctx context.Context, quiet time.Duration) error {
	now := e.set.Now()
	e.pubMu.Lock()
	var due []string
	for u, t := range e.touched {
		if now.Sub(t) >= quiet {
			due = append(due, u)
		}
	}
	e.pubMu.Unlock()
	var first error
	for _, u := range due {
		err := e.retry(ctx, func() error { return e.misp.PublishEvent(ctx, u) })
		if err != nil {
			if first == nil {
				first = fmt.Errorf("publish event %s: %w", u, err)
			}
			continue
		}
		e.stats.Published.Add(1)
		e.log.Info("misp event published", "event_uuid", u)
		e.pubMu.Lock()
		if t, ok := e.touched[u]; ok && !t.After(now) {
			delete(e.touched, u)
		}
		e.pubMu.Unlock()
	}
	return first
}
