package rulesets

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/et"
	"github.com/tqflow/tqflow/pkg/rules"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/fetcher/internal/blocklists"
	"github.com/tqflow/tqflow/services/fetcher/internal/etfetch"
)

// ErrBadArchive is a downloaded ruleset that is not a readable gzipped tar
// (truncated or corrupt although its md5 matched, or with no md5 to check).
var ErrBadArchive = errors.New("unreadable ruleset archive")

// ErrNoRulesFiles is a ruleset tarball holding no *.rules file.
var ErrNoRulesFiles = errors.New("no rules files in the ruleset")

// Client is what the job needs of an ET client; *et.Client implements it.
type Client interface {
	etfetch.Client
	// Sources returns the sources to fetch.
	Sources() []et.Source
	// Flavor returns the ruleset flavour.
	Flavor() string
}

var _ Client = (*et.Client)(nil)

// State is what the job keeps in KV per instance and source.
type State struct {
	// ET is what pkg/et needs to tell a change next time.
	ET et.State `json:"et"`
	// Object is the Object Store name of the artefact.
	Object string `json:"object,omitempty"`
	// Files is how many ruleset.v1 messages the run published.
	Files int `json:"files,omitempty"`
	// Selection is the ET_RULESETS selection the messages were published
	// for; a different one makes the next run publish again.
	Selection string `json:"selection,omitempty"`
	// At is when the run stored this state.
	At time.Time `json:"at"`
}

// Fetcher runs the ET job of one instance. Its fields are set by [New]
// or, in tests, directly.
type Fetcher struct {
	// Client downloads from ET.
	Client Client
	// Bus publishes the ruleset.v1 messages.
	Bus *bus.Bus
	// State is the bus.BucketETState bucket.
	State jetstream.KeyValue
	// Objects is the bus.ObjectRulesets store.
	Objects jetstream.ObjectStore
	// Instance names the job instance.
	Instance string
	// Select chooses the rules files of a tarball to publish.
	Select Selection
	// TempDir holds downloads while they are verified; os.TempDir when "".
	TempDir string
	// Now returns the time; time.Now when nil.
	Now func() time.Time
	// Log receives progress; discarded when nil.
	Log *slog.Logger
	// Lists, when set, runs the IP lists of ET_BLOCK_LISTS after the
	// rulesets, in the same run.
	Lists *blocklists.Job
}

// New builds the ET job of instance from c.
func New(ctx context.Context, c Config, instance string, b *bus.Bus, log *slog.Logger) (*Fetcher, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("et job: %w", err)
	}
	if !bus.ValidToken(instance) {
		return nil, fmt.Errorf("et job: instance %q: want 1 to 64 letters, digits, - or _", instance)
	}
	client, err := et.New(c.ET)
	if err != nil {
		return nil, fmt.Errorf("et job: %w", err)
	}
	kv, err := b.KeyValue(ctx, bus.BucketETState)
	if err != nil {
		return nil, fmt.Errorf("et job: %w", err)
	}
	objs, err := b.ObjectStore(ctx, bus.ObjectRulesets)
	if err != nil {
		return nil, fmt.Errorf("et job: %w", err)
	}
	f := &Fetcher{
		Client: client, Bus: b, State: kv, Objects: objs, Instance: instance,
		Select: NewSelection(c.Rulesets), Log: log,
	}
	if len(client.Lists()) > 0 {
		j := c.lists()
		j.Client, j.Bus, j.State, j.Objects, j.Instance, j.Log = client, b, kv, objs, instance, log
		f.Lists = j
	}
	return f, nil
}

// Report is what one run did.
type Report struct {
	// Sources has one entry per configured source, in order.
	Sources []SourceReport
	// Lists has one entry per IP list of ET_BLOCK_LISTS, in order.
	Lists []blocklists.Report
	// Elapsed is how long the run took.
	Elapsed time.Duration
}

// Published returns how many ruleset.v1 messages the run published.
func (r Report) Published() int {
	n := 0
	for _, s := range r.Sources {
		n += s.Published
	}
	return n
}

// SourceReport is what a run did for one source.
type SourceReport struct {
	Source et.Source
	// Method is how the change was detected.
	Method et.Method
	// Changed is true when the source was downloaded.
	Changed bool
	// MD5 and Size describe the artefact downloaded.
	MD5  string
	Size int64
	// Object is the Object Store name of the artefact; Stored is true when
	// this run put it there (false when it was there already).
	Object string
	Stored bool
	// Files is how many rules files the artefact holds; Selected how many
	// ET_RULESETS chose; Published how many messages the stream stored,
	// Duplicates how many of those it already had.
	Files, Selected, Published, Duplicates int
	// Unmatched lists ET_RULESETS entries that matched no file.
	Unmatched []string
	// Err is the source's error, nil on success. The state of a source
	// that failed is left as it was.
	Err error
}

// StateKey returns the KV key of an instance's state for src:
// <instance>.fetch.<source>, the ':' of a block-rules source replaced
// by '.'.
func StateKey(instance string, src et.Source) string {
	return instance + ".fetch." + strings.ReplaceAll(string(src), ":", ".")
}

// MsgID returns a ruleset.v1 message's deterministic ID:
// <instance>:<md5>:<file>.
func MsgID(instance, md5, file string) string { return instance + ":" + md5 + ":" + file }

// RunOnce checks every source and publishes what changed. It goes on after
// a source fails, and returns the failures joined; each is also in the
// report.
func (f *Fetcher) RunOnce(ctx context.Context) (Report, error) {
	start := f.now()
	var rep Report
	var errs []error
	for _, src := range f.Client.Sources() {
		sr := f.runSource(ctx, src)
		if sr.Err != nil {
			errs = append(errs, sr.Err)
			f.log().Error("et source failed; its state is unchanged", "source", string(src), "err", sr.Err)
		}
		rep.Sources = append(rep.Sources, sr)
	}
	if f.Lists != nil {
		if f.Lists.Now == nil {
			f.Lists.Now = f.Now
		}
		lrs, err := f.Lists.RunOnce(ctx)
		rep.Lists = lrs
		if err != nil {
			errs = append(errs, err)
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, errors.Join(errs...)
}

func (f *Fetcher) runSource(ctx context.Context, src et.Source) SourceReport {
	sr := SourceReport{Source: src}
	log := f.log().With("instance", f.Instance, "source", string(src))
	key := StateKey(f.Instance, src)
	prev, rev, err := etfetch.LoadState[State](ctx, f.State, key)
	if err != nil {
		sr.Err = err
		return sr
	}
	reselect := prev.Object != "" && prev.Selection != f.Select.String()
	var tmp *os.File
	defer func() {
		if tmp != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	res, err := etfetch.Fetch(ctx, f.Client, src, etfetch.Last{ET: prev.ET, MD5: prev.ET.MD5, Object: prev.Object}, reselect,
		func() (io.Writer, error) {
			var err error
			if tmp, err = os.CreateTemp(f.TempDir, "tqflow-et-*"); err != nil {
				return nil, fmt.Errorf("et: download %s: create temporary file: %w", src, err)
			}
			return tmp, nil
		})
	sr.Method, sr.Changed = res.Method, res.Changed
	if err != nil {
		sr.Err = err
		return sr
	}
	if !res.Changed {
		log.Info("et ruleset unchanged", "method", string(res.Method), "md5", prev.ET.MD5)
		return sr
	}
	if reselect {
		log.Info("ET_RULESETS changed since the last run: publishing the ruleset again", "was", prev.Selection, "now", f.Select.String())
	}
	art := res.Artefact
	sr.MD5, sr.Size = art.MD5, art.Size
	if res.Same {
		log.Info("et ruleset downloaded but unchanged", "md5", art.MD5)
		sr.Object = prev.Object
		next := prev
		next.ET, next.At = art.State, f.now().UTC()
		sr.Err = etfetch.SaveState(ctx, f.State, key, next, rev)
		return sr
	}
	_, isBlock := src.File()
	var files []string
	if isBlock {
		file, _ := src.File()
		files = []string{file}
		sr.Object = art.MD5 + ".rules"
	} else {
		files, err = listRulesFiles(ctx, tmp, art.Size)
		if err != nil {
			sr.Err = fmt.Errorf("et: read %s ruleset (md5 %s): %w", src, art.MD5, err)
			return sr
		}
		sr.Object = art.MD5 + ".tar.gz"
	}
	sr.Files = len(files)
	var selected []string
	for _, file := range files {
		if ok, _ := f.Select.Match(file); ok || isBlock {
			selected = append(selected, file)
		}
	}
	if !isBlock {
		sr.Unmatched = f.Select.Unmatched(files)
		if len(sr.Unmatched) > 0 {
			log.Warn("ET_RULESETS entries match no rules file of the ruleset", "unmatched", sr.Unmatched, "files", len(files))
		}
	}
	sr.Selected = len(selected)
	if sr.Stored, err = etfetch.PutObject(ctx, f.Objects, sr.Object, "ET ruleset", tmp); err != nil {
		sr.Err = fmt.Errorf("et: store %s ruleset (md5 %s): %w", src, art.MD5, err)
		return sr
	}
	if err := f.publish(ctx, src, art, sr.Object, selected, &sr); err != nil {
		sr.Err = err
		return sr
	}
	next := State{ET: art.State, Object: sr.Object, Files: len(selected), Selection: f.Select.String(), At: f.now().UTC()}
	if err := etfetch.SaveState(ctx, f.State, key, next, rev); err != nil {
		sr.Err = err
		return sr
	}
	log.Info("et ruleset published", "md5", art.MD5, "size", art.Size, "verified", art.Verified,
		"files", sr.Files, "selected", sr.Selected, "published", sr.Published, "duplicates", sr.Duplicates)
	return sr
}

// publish sends one ruleset.v1 per file and waits for every ack.
func (f *Fetcher) publish(ctx context.Context, src et.Source, art et.Artefact, object string, files []string, sr *SourceReport) error {
	at := f.now().UTC()
	batch := f.Bus.NewBatch(256)
	subject := bus.RulesetSubject(f.Instance)
	for _, file := range files {
		m := schemas.Ruleset{
			Schema: schemas.RulesetV1, Instance: f.Instance, Source: string(src), Flavor: f.Client.Flavor(),
			MD5: art.MD5, Object: object, File: file, Files: len(files), FetchedAt: &at,
		}
		if err := m.Validate(); err != nil {
			return fmt.Errorf("et: publish %s %s: %w", src, file, err)
		}
		data, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("et: publish %s %s: %w", src, file, err)
		}
		if err := batch.Add(ctx, bus.Outgoing{Subject: subject, ID: MsgID(f.Instance, art.MD5, file), Data: data}); err != nil {
			return fmt.Errorf("et: publish %s rulesets: %w", src, err)
		}
	}
	err := batch.Wait(ctx)
	sr.Published, sr.Duplicates = batch.Stored()
	if err != nil {
		return fmt.Errorf("et: publish %s rulesets: %w", src, err)
	}
	return nil
}

// listRulesFiles reads the whole gzipped tar (so that a truncated or
// corrupt archive is refused before anything is published) and returns the
// paths of its *.rules members, in archive order. emerging-all.rules, a
// copy of every other file, is left out. The archive is read within
// rules.Tarball's bounds (no sparse member, no member or total over the
// caps) and stops when ctx ends.
func listRulesFiles(ctx context.Context, tmp *os.File, size int64) ([]string, error) {
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind download: %w", err)
	}
	tr, err := rules.OpenTarball(ctx, io.LimitReader(tmp, size), rules.TarLimits{})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadArchive, err)
	}
	var files []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w after %d rules files: %w", ErrBadArchive, len(files), err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return nil, fmt.Errorf("%w: member %s: %w", ErrBadArchive, hdr.Name, err)
		}
		base := path.Base(hdr.Name)
		if hdr.Typeflag == tar.TypeReg && strings.HasSuffix(base, ".rules") && base != "emerging-all.rules" {
			files = append(files, hdr.Name)
		}
	}
	if err := tr.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadArchive, err)
	}
	if len(files) == 0 {
		return nil, ErrNoRulesFiles
	}
	return files, nil
}

func (f *Fetcher) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Fetcher) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.New(slog.DiscardHandler)
}
