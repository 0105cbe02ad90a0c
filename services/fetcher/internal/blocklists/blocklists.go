// Package blocklists is the fetcher's ET IP-list job: for every list in
// ET_BLOCK_LISTS (fwrules/emerging-Block-IPs.txt,
// blockrules/compromised-ips.txt, the two lists ThreatQ's own Proofpoint
// ET OSINT feed reads) it tells with a conditional GET whether the list
// changed, and when its bytes did, it parses it (pkg/et.ParseIPList) and
// publishes on tq.writes.indicator one write.v1 per address that joined
// the list, with the configured status, and one per address that left
// it, with the expiry status. Unchanged addresses are not written again.
//
// The list last applied is kept in the rulesets Object Store under its
// md5, and its md5 and the server's validators in the ET state bucket:
// the next run diffs the new list against it. The state moves only after
// the stream has stored every write, so a failed run is done again, with
// the same message IDs, next time.
package blocklists

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/et"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/fetcher/internal/etfetch"
)

// MaxListSize caps the size of an IP list read into memory; ET's lists
// are tens of kilobytes.
const MaxListSize = 64 << 20

// ErrListTooLarge is an IP list larger than MaxListSize.
var ErrListTooLarge = errors.New("IP list too large")

// capBuffer is a bytes.Buffer that refuses to grow past max.
type capBuffer struct {
	bytes.Buffer
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrListTooLarge, b.max)
	}
	return b.Buffer.Write(p)
}

// maxLoggedBadLines bounds the bad lines logged one by one per list; the
// rest are counted.
const maxLoggedBadLines = 20

// Client is what the job needs of an ET client; *et.Client implements it.
type Client interface {
	etfetch.Client
	// Lists returns the IP lists to fetch.
	Lists() []et.Source
}

var _ Client = (*et.Client)(nil)

// State is what the job keeps in KV per instance and list.
type State struct {
	// ET is what pkg/et needs to tell a change next time.
	ET et.State `json:"et"`
	// MD5 is the md5 of the list last applied; Object its Object Store
	// name.
	MD5    string `json:"md5,omitempty"`
	Object string `json:"object,omitempty"`
	// Entries is how many addresses it holds.
	Entries int `json:"entries"`
	// At is when the run stored this state.
	At time.Time `json:"at"`
}

// Job runs the IP lists of one instance. Set its fields, then call
// RunOnce; it is not safe for concurrent runs (the fetcher lease gives one
// runner per instance).
type Job struct {
	// Client downloads from ET.
	Client Client
	// Bus publishes the writes.
	Bus *bus.Bus
	// State is the bus.BucketETState bucket.
	State jetstream.KeyValue
	// Objects is the bus.ObjectRulesets store.
	Objects jetstream.ObjectStore
	// Instance names the job instance.
	Instance string
	// Status is the ThreatQ status of an address on a list; ExpiredStatus
	// that of an address that left it; Source the ThreatQ source of both.
	Status, ExpiredStatus, Source string
	// MaxSize caps a list's size in bytes; MaxListSize when 0.
	MaxSize int
	// Now returns the time; time.Now when nil.
	Now func() time.Time
	// Log receives progress; discarded when nil.
	Log *slog.Logger
}

// Report is what a run did for one list.
type Report struct {
	List et.Source
	// Method is how the change was detected; Changed is true when the
	// list was downloaded.
	Method  et.Method
	Changed bool
	// MD5 is the md5 of the list downloaded.
	MD5 string
	// Entries is how many addresses the list holds; Added and Removed how
	// many joined and left it since the list last applied.
	Entries, Added, Removed int
	// BadLines counts the lines that are not addresses; Bad holds the
	// first of them, with file and line.
	BadLines int
	Bad      []*et.LineError
	// Published is how many writes the stream stored, Duplicates how many
	// of those it already had.
	Published, Duplicates int
	// Err is the list's error, nil on success; the state of a list that
	// failed is left as it was.
	Err error
}

// StateKey returns the KV key of an instance's state for a list:
// <instance>.list.<dir>.<file>.
func StateKey(instance string, list et.Source) string {
	p, _ := list.List()
	return instance + ".list." + strings.ReplaceAll(p, "/", ".")
}

// ObjectName returns the Object Store name of a list with the given md5.
func ObjectName(md5 string) string { return "iplist-" + md5 + ".txt" }

// MsgID returns a write's deterministic message ID:
// <instance>:list:<list path>:<state revision>:<md5 of the list>:<status>:<value>.
// The KV revision of the state the run started from makes a retry of the
// same change repeat its IDs, while a later change back to an earlier list
// (the same md5 again) does not collide with the first.
func MsgID(instance, path string, rev uint64, md5, status, value string) string {
	return instance + ":list:" + path + ":" + strconv.FormatUint(rev, 10) + ":" + md5 + ":" + status + ":" + value
}

// Validate reports what is missing to run.
func (j *Job) Validate() error {
	var errs []error
	if j.Status == "" {
		errs = append(errs, errors.New("ET_BLOCK_LIST_STATUS: want a ThreatQ indicator status"))
	}
	if j.ExpiredStatus == "" {
		errs = append(errs, errors.New("ET_BLOCK_LIST_EXPIRED_STATUS: want a ThreatQ indicator status"))
	}
	if j.Status != "" && j.Status == j.ExpiredStatus {
		errs = append(errs, fmt.Errorf("ET_BLOCK_LIST_EXPIRED_STATUS is %q, as ET_BLOCK_LIST_STATUS: an address that leaves a list would not show it", j.ExpiredStatus))
	}
	if j.Source == "" {
		errs = append(errs, errors.New("ET_BLOCK_LIST_SOURCE: want a ThreatQ source name"))
	}
	return errors.Join(errs...)
}

// RunOnce checks every list and writes what changed. It goes on after a
// list fails and returns the failures joined; each is also in its report.
func (j *Job) RunOnce(ctx context.Context) ([]Report, error) {
	var reps []Report
	var errs []error
	for _, l := range j.Client.Lists() {
		r := j.runList(ctx, l)
		if r.Err != nil {
			errs = append(errs, r.Err)
			j.log().Error("et ip list failed; its state is unchanged", "list", string(l), "err", r.Err)
		}
		reps = append(reps, r)
	}
	return reps, errors.Join(errs...)
}

func (j *Job) runList(ctx context.Context, list et.Source) Report {
	rep := Report{List: list}
	path, _ := list.List()
	log := j.log().With("instance", j.Instance, "list", path)
	key := StateKey(j.Instance, list)
	prev, rev, err := etfetch.LoadState[State](ctx, j.State, key)
	if err != nil {
		rep.Err = err
		return rep
	}
	body := capBuffer{max: cmp.Or(j.MaxSize, MaxListSize)}
	res, err := etfetch.Fetch(ctx, j.Client, list, etfetch.Last{ET: prev.ET, MD5: prev.MD5, Object: prev.Object}, false,
		func() (io.Writer, error) { return &body, nil })
	rep.Method, rep.Changed = res.Method, res.Changed
	if err != nil {
		rep.Err = err
		return rep
	}
	if !res.Changed {
		log.Info("et ip list unchanged", "method", string(res.Method), "md5", prev.MD5)
		return rep
	}
	art := res.Artefact
	rep.MD5 = art.MD5
	if res.Same {
		log.Info("et ip list downloaded but unchanged", "md5", art.MD5)
		next := prev
		next.ET, next.At = art.State, j.now().UTC()
		rep.Entries = prev.Entries
		rep.Err = etfetch.SaveState(ctx, j.State, key, next, rev)
		return rep
	}
	cur, err := et.ParseIPList(bytes.NewReader(body.Bytes()), path)
	if err != nil {
		rep.Err = fmt.Errorf("et: read ip list %s (md5 %s): %w", path, art.MD5, err)
		return rep
	}
	rep.Entries, rep.BadLines = len(cur.Entries), cur.BadCount
	rep.Bad = cur.Bad[:min(len(cur.Bad), maxLoggedBadLines)]
	for _, b := range rep.Bad {
		log.Warn("bad line in et ip list, skipped", "file", b.File, "line", b.Line, "text", b.Text, "err", b.Err)
	}
	if cur.BadCount > len(rep.Bad) {
		log.Warn("more bad lines in et ip list, not logged one by one", "file", path, "bad_lines", cur.BadCount)
	}
	old, err := j.previous(ctx, prev, path, log)
	if err != nil {
		rep.Err = err
		return rep
	}
	added, removed := diff(old, cur.Entries)
	if len(removed) > 0 {
		// An address that left this list but is on another one stays as
		// it is: the other list still vouches for it.
		held, err := j.held(ctx, list)
		if err != nil {
			rep.Err = err
			return rep
		}
		kept := removed[:0]
		for _, e := range removed {
			if !held[e.Value] {
				kept = append(kept, e)
			}
		}
		removed = kept
	}
	rep.Added, rep.Removed = len(added), len(removed)
	object := ObjectName(art.MD5)
	if _, err := etfetch.PutObject(ctx, j.Objects, object, "ET IP list", bytes.NewReader(body.Bytes())); err != nil {
		rep.Err = fmt.Errorf("et: store ip list %s (md5 %s): %w", path, art.MD5, err)
		return rep
	}
	if err := j.publish(ctx, path, rev, art.MD5, added, removed, &rep); err != nil {
		rep.Err = fmt.Errorf("et: write ip list %s (md5 %s): %w", path, art.MD5, err)
		return rep
	}
	next := State{ET: art.State, MD5: art.MD5, Object: object, Entries: len(cur.Entries), At: j.now().UTC()}
	if err := etfetch.SaveState(ctx, j.State, key, next, rev); err != nil {
		rep.Err = err
		return rep
	}
	log.Info("et ip list written", "md5", art.MD5, "entries", rep.Entries, "added", rep.Added, "removed", rep.Removed,
		"bad_lines", rep.BadLines, "published", rep.Published, "duplicates", rep.Duplicates)
	return rep
}

// previous returns the addresses of the list last applied: none on the
// first run, and none (with a warning: removals cannot be told) when its
// object is gone.
func (j *Job) previous(ctx context.Context, prev State, path string, log *slog.Logger) ([]et.IPEntry, error) {
	if prev.Object == "" {
		return nil, nil
	}
	r, err := j.Objects.Get(ctx, prev.Object)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		log.Warn("the et ip list last applied is gone from the object store: addresses that left the list since are not expired",
			"object", prev.Object)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("et: read previous ip list %s (%s): %w", path, prev.Object, err)
	}
	defer func() { _ = r.Close() }()
	l, err := et.ParseIPList(r, path)
	if err != nil {
		return nil, fmt.Errorf("et: read previous ip list %s (%s): %w", path, prev.Object, err)
	}
	return l.Entries, nil
}

// held returns the addresses of the other lists, as last applied.
func (j *Job) held(ctx context.Context, except et.Source) (map[string]bool, error) {
	out := map[string]bool{}
	for _, l := range j.Client.Lists() {
		if l == except {
			continue
		}
		path, _ := l.List()
		st, _, err := etfetch.LoadState[State](ctx, j.State, StateKey(j.Instance, l))
		if err != nil {
			return nil, err
		}
		es, err := j.previous(ctx, st, path, j.log())
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			out[e.Value] = true
		}
	}
	return out, nil
}

// diff returns the entries of cur not in old, in cur's order, and those of
// old not in cur, in old's order.
func diff(old, cur []et.IPEntry) (added, removed []et.IPEntry) {
	in := make(map[string]bool, len(old))
	for _, e := range old {
		in[e.Value] = true
	}
	now := make(map[string]bool, len(cur))
	for _, e := range cur {
		now[e.Value] = true
		if !in[e.Value] {
			added = append(added, e)
		}
	}
	for _, e := range old {
		if !now[e.Value] {
			removed = append(removed, e)
		}
	}
	return added, removed
}

// publish sends one write per address added (Status) and removed
// (ExpiredStatus) and waits for every ack.
func (j *Job) publish(ctx context.Context, path string, rev uint64, md5 string, added, removed []et.IPEntry, rep *Report) error {
	batch := j.Bus.NewBatch(500)
	send := func(e et.IPEntry, status string) error {
		w := schemas.Write{
			Schema: schemas.WriteV1, Kind: schemas.KindIndicator, Instance: j.Instance,
			Indicator: &schemas.IndicatorWrite{
				Value: e.Value, Type: e.Type, Status: status, Source: j.Source, Attributes: []schemas.Attribute{},
			},
		}
		if err := w.Validate(); err != nil {
			return fmt.Errorf("build write for %s: %w", e.Value, err)
		}
		data, err := json.Marshal(w)
		if err != nil {
			return fmt.Errorf("build write for %s: %w", e.Value, err)
		}
		return batch.Add(ctx, bus.Outgoing{Subject: bus.SubjectWriteIndicator, ID: MsgID(j.Instance, path, rev, md5, status, e.Value), Data: data})
	}
	for _, e := range added {
		if err := send(e, j.Status); err != nil {
			return err
		}
	}
	for _, e := range removed {
		if err := send(e, j.ExpiredStatus); err != nil {
			return err
		}
	}
	err := batch.Wait(ctx)
	rep.Published, rep.Duplicates = batch.Stored()
	return err
}

func (j *Job) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

func (j *Job) log() *slog.Logger {
	if j.Log != nil {
		return j.Log
	}
	return slog.New(slog.DiscardHandler)
}
