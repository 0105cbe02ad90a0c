package load

import (
	"archive/tar"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/logging"
	"github.com/tqflow/tqflow/pkg/rules"
	"github.com/tqflow/tqflow/schemas"
)

// Attribute names written on every signature.
const (
	AttrSID       = "SID"
	AttrRevision  = "Revision"
	AttrClasstype = "Classtype"
	AttrCategory  = "Category"
	AttrReference = "Reference"
	AttrMetadata  = "Metadata"
)

// maxAttrValue is the longest attribute value write.v1 accepts.
const maxAttrValue = 10000

// maxLoggedBadLines bounds the bad lines logged one by one per file; the
// rest are counted.
const maxLoggedBadLines = 20

// ErrMemberNotFound is a ruleset.v1 message naming a file its tarball does
// not hold.
var ErrMemberNotFound = errors.New("rules file not in the ruleset tarball")

// Stats counts what the loader did; safe for concurrent use.
type Stats struct {
	// Files is the number of rules files loaded.
	Files atomic.Int64
	// Rules is the number of rules parsed (enabled and disabled).
	Rules atomic.Int64
	// Written is the number of signature writes published.
	Written atomic.Int64
	// Unchanged is the number of rules whose rev and status were already
	// written.
	Unchanged atomic.Int64
	// Forgotten is the number of sids taken out of the state because the
	// writer dead-lettered their write (see [Loader.Forget]).
	Forgotten atomic.Int64
	// Older is the number of rules left alone because a higher rev of the
	// same sid was written (from another source).
	Older atomic.Int64
	// NonStandardSkipped is the number of disabled rules not written
	// because non-standard rules are not included: rules never loaded, or
	// already written as disabled.
	NonStandardSkipped atomic.Int64
	// BadLines is the number of lines that are not valid rules.
	BadLines atomic.Int64
	// Retired is the number of signatures retired: older revisions of a
	// rule whose rev went up, and rules that left their file.
	Retired atomic.Int64
	// RetireUnknown is the number of signatures that should have been
	// retired but whose text the loader could not find (no record of the
	// file's previous version, or its tarball gone from the Object Store).
	RetireUnknown atomic.Int64
}

// Loader handles ruleset.v1 messages of one instance. Set its fields, then
// use Handle as a bus.Handler; it is safe for concurrent use.
type Loader struct {
	// Bus publishes the writes.
	Bus *bus.Bus
	// Objects is the rulesets Object Store.
	Objects jetstream.ObjectStore
	// State is the ET state bucket.
	State jetstream.KeyValue
	// Instance is the job instance; messages of another are refused.
	Instance string
	// StandardStatus and NonStandardStatus are the ThreatQ status names of
	// enabled and of disabled rules, as ThreatQ spells them.
	StandardStatus, NonStandardStatus string
	// RetiredStatus is the ThreatQ status name of signatures that are
	// retired: the previous revision of a rule whose rev went up, and a
	// rule that left the ruleset.
	RetiredStatus string
	// IncludeNonStandard loads disabled rules too. Without it, a rule
	// loaded enabled that ET later disables is still written once, with the
	// non-standard status: it is a signature this loader wrote.
	IncludeNonStandard bool
	// Source is the ThreatQ source of the signatures.
	Source string
	// SnortType and SuricataType are the ThreatQ signature type names for
	// the rules of each engine, as ThreatQ spells them. SuricataFallback
	// says SuricataType is a fallback (ThreatQ has no Suricata type); the
	// loader says so once, at the first Suricata ruleset.
	SnortType, SuricataType string
	SuricataFallback        bool
	// Stats, when set, receives counts.
	Stats *Stats
	// OnParsed, when set, is called as a rules file is parsed with the
	// lines parsed since the last call (every 1000 and at the end), for a
	// progress bar.
	OnParsed func(file string, lines int)
	// Log, when set, is used instead of the context's logger.
	Log *slog.Logger

	fallbackOnce sync.Once
}

// entry is what the state remembers of one sid.
type entry struct {
	Rev    int    `json:"r"`
	Status string `json:"s"`
	Source string `json:"o,omitempty"`
	// Disabled says whether the rule was written as ET shipped it
	// disabled. Entries saved before it was recorded lack it; see
	// [Loader.wasDisabled].
	Disabled *bool `json:"d,omitempty"`
	// File is the rules file the rule was written from, so that another
	// source bumping its rev can find the text to retire in that file's
	// last version. Entries saved before it was recorded lack it.
	File string `json:"f,omitempty"`
}

// wasDisabled reports whether e was written for a disabled rule. An entry
// that does not say is judged by its status: disabled when it has the
// non-standard status and not the standard one.
func (l *Loader) wasDisabled(e entry) bool {
	if e.Disabled != nil {
		return *e.Disabled
	}
	return e.Status == l.NonStandardStatus && e.Status != l.StandardStatus
}

// shard is one state value: sid key to entry.
type shard map[string]entry

// ShardKey returns the KV key of the state shard holding sid:
// <instance>.sids.<sid/1000>.
func ShardKey(instance string, sid int) string {
	return instance + ".sids." + strconv.Itoa(sid/1000)
}

// sidKey names a rule in its shard: its sid, prefixed by its gid when that
// is not 1.
func sidKey(gid, sid int) string {
	if gid == 1 || gid == 0 {
		return strconv.Itoa(sid)
	}
	return strconv.Itoa(gid) + ":" + strconv.Itoa(sid)
}

// Category returns the category of a rules file: its base name without
// ".rules", a ".suricata" suffix and an "emerging-" or "etpro-" prefix, in
// upper case (emerging-malware.rules gives MALWARE).
func Category(file string) string {
	b := strings.ToLower(path.Base(file))
	b = strings.TrimSuffix(b, ".rules")
	b = strings.TrimSuffix(b, ".suricata")
	for _, p := range []string{"emerging-", "etpro-"} {
		b = strings.TrimPrefix(b, p)
	}
	return strings.ToUpper(b)
}

// candidate is a rule to write if it changed.
type candidate struct {
	rule   *rules.Rule
	key    string
	status string
	// disabled is a rule ET ships commented out (non-standard).
	disabled bool
	// last is the status last written on this rule's signature (same
	// rev), empty for a signature not written before.
	last string
	// file is the rules file the rule was read from, when not the one
	// being loaded (a retired revision another source wrote).
	file string
}

// fileState is what the state remembers of one rules file of a source:
// the object its last loaded version came from, and the rev of each rule
// in it. It is what finds the rules that left the file, and the text of a
// rule's previous revision, without reading any signature back.
type fileState struct {
	Object string         `json:"o"`
	Revs   map[string]int `json:"r"`
}

// FileKey returns the KV key of the state of a rules file of a source:
// <instance>.files.<16 hex digits of sha256(source, file)>.
func FileKey(instance, source, file string) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(file))
	return instance + ".files." + hex.EncodeToString(h.Sum(nil)[:8])
}

// retirement is a signature to retire: the rule of key at rev, as the
// last version of source's rules file holds it, last written with status
// last.
type retirement struct {
	key  string
	rev  int
	last string
	// source and file name where the text is: the file being loaded, or
	// for a rule another source wrote, its file (empty when its entry is
	// older than the loader's record of files).
	source, file string
}

// better reports whether c replaces old, the same sid earlier in the same
// file: the higher rev wins, except that an enabled rule wins over a
// disabled one when non-standard rules are not included.
func (l *Loader) better(c, old candidate) bool {
	if !l.IncludeNonStandard && c.disabled != old.disabled {
		return !c.disabled
	}
	return c.rule.Rev > old.rule.Rev
}

// Handle loads the rules file m names.
func (l *Loader) Handle(ctx context.Context, m *bus.Message) error {
	var rs schemas.Ruleset
	if err := schemas.Decode(m.Data, &rs); err != nil {
		return bus.Permanent(fmt.Errorf("decode ruleset message: %w", err))
	}
	if rs.Instance != l.Instance {
		return bus.Permanent(fmt.Errorf("load %s: message of instance %q, this loader is %q", rs.File, rs.Instance, l.Instance))
	}
	log := l.logger(ctx).With("file", rs.File, "source", rs.Source, "md5", rs.MD5)
	typ, err := l.signatureType(rs.Flavor, log)
	if err != nil {
		return bus.Permanent(err)
	}
	cands, pst, err := l.read(ctx, rs, log)
	if err != nil {
		return err
	}
	fkey := FileKey(l.Instance, rs.Source, rs.File)
	prev, err := l.loadFile(ctx, fkey)
	if err != nil {
		return err
	}
	writes, retire, next, st, err := l.diff(ctx, rs, cands, prev)
	if err != nil {
		return err
	}
	retired, unknown, err := l.previous(ctx, rs, prev, retire)
	if err != nil {
		return err
	}
	writes = append(writes, retired...)
	batch := l.Bus.NewBatch(500)
	for _, c := range writes {
		o, err := l.write(rs, c, typ)
		if err != nil {
			return bus.Permanent(err)
		}
		if err := batch.Add(ctx, o); err != nil {
			return fmt.Errorf("load %s: %w", rs.File, err)
		}
	}
	if err := batch.Wait(ctx); err != nil {
		return fmt.Errorf("load %s: publish signature writes: %w", rs.File, err)
	}
	if err := l.save(ctx, next); err != nil {
		return fmt.Errorf("load %s: %w", rs.File, err)
	}
	if err := l.saveFile(ctx, fkey, rs.Object, cands); err != nil {
		return fmt.Errorf("load %s: %w", rs.File, err)
	}
	if s := l.Stats; s != nil {
		s.Retired.Add(int64(len(retired)))
		s.RetireUnknown.Add(int64(unknown))
		s.Files.Add(1)
		s.Rules.Add(int64(pst.Rules()))
		s.Written.Add(int64(len(writes)))
		s.Unchanged.Add(int64(st.unchanged))
		s.Older.Add(int64(st.older))
		s.NonStandardSkipped.Add(int64(st.skipped))
		s.BadLines.Add(int64(pst.Errors))
	}
	if unknown > 0 {
		log.Warn("signatures to retire not found in the file's previous version; they keep their status", "count", unknown)
	}
	log.Info("rules file loaded", "enabled", pst.Enabled, "disabled", pst.Disabled, "bad_lines", pst.Errors,
		"written", len(writes), "retired", len(retired), "unchanged", st.unchanged, "older", st.older, "nonstandard_skipped", st.skipped)
	return nil
}

// signatureType returns the ThreatQ type of a flavour's rules.
func (l *Loader) signatureType(flavor string, log *slog.Logger) (string, error) {
	if strings.HasPrefix(strings.ToLower(flavor), "snort") {
		return l.SnortType, nil
	}
	if l.SuricataFallback {
		l.fallbackOnce.Do(func() {
			log.Warn("ThreatQ has no Suricata signature type: Suricata rules are written with the fallback type; create a Suricata signature type in ThreatQ to have them typed as Suricata",
				"flavor", flavor, "type", l.SuricataType)
		})
	}
	if l.SuricataType == "" {
		return "", fmt.Errorf("load flavour %s: no signature type for Suricata rules", flavor)
	}
	return l.SuricataType, nil
}

// read parses the file rs names and returns the rules to consider.
func (l *Loader) read(ctx context.Context, rs schemas.Ruleset, log *slog.Logger) ([]candidate, rules.Stats, error) {
	obj, err := l.Objects.Get(ctx, rs.Object)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, rules.Stats{}, bus.Permanent(fmt.Errorf("load %s: object %s: %w", rs.File, rs.Object, err))
	}
	if err != nil {
		return nil, rules.Stats{}, fmt.Errorf("load %s: get object %s: %w", rs.File, rs.Object, err)
	}
	// Copy the object out before parsing: the object store's reader times
	// out when its consumer is slow, and parsing is slow under load.
	f, err := os.CreateTemp("", "tqflow-ruleset-*")
	if err != nil {
		_ = obj.Close()
		return nil, rules.Stats{}, fmt.Errorf("load %s: %w", rs.File, err)
	}
	defer func() { _ = f.Close(); _ = os.Remove(f.Name()) }()
	_, err = io.Copy(f, obj)
	_ = obj.Close()
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return nil, rules.Stats{}, fmt.Errorf("load %s: read object %s: %w", rs.File, rs.Object, err)
	}
	var r io.Reader = f
	if strings.HasSuffix(rs.Object, ".tar.gz") || strings.HasSuffix(rs.Object, ".tgz") {
		r, err = member(ctx, f, rs.File)
		if err != nil {
			err = fmt.Errorf("load %s from %s: %w", rs.File, rs.Object, err)
			if errors.Is(err, ErrMemberNotFound) || corrupt(err) {
				err = bus.Permanent(err)
			}
			return nil, rules.Stats{}, err
		}
	}
	p := rules.Parser{Classifications: map[string]rules.Classification{}}
	byKey := map[string]int{}
	var cands []candidate
	logged := 0
	parsed := 0
	defer func() {
		if l.OnParsed != nil && parsed > 0 {
			l.OnParsed(rs.File, parsed)
		}
	}()
	pst, err := p.ParseFile(r, rs.File, func(rule *rules.Rule, lerr error) error {
		if parsed++; parsed == 1000 && l.OnParsed != nil {
			l.OnParsed(rs.File, parsed)
			parsed = 0
		}
		if lerr != nil {
			if logged < maxLoggedBadLines {
				log.Warn("line is not a valid rule; skipped", "err", lerr)
			}
			logged++
			return nil
		}
		c := candidate{rule: rule, key: sidKey(rule.GID, rule.SID), status: l.StandardStatus, disabled: !rule.Enabled}
		if c.disabled {
			// Kept even when non-standard rules are not included: diff
			// writes the ones loaded before as enabled.
			c.status = l.NonStandardStatus
		}
		if i, ok := byKey[c.key]; ok {
			// The same sid twice in one file.
			if l.better(c, cands[i]) {
				cands[i] = c
			}
			return nil
		}
		byKey[c.key] = len(cands)
		cands = append(cands, c)
		return nil
	})
	if err != nil {
		err = fmt.Errorf("load %s from %s: %w", rs.File, rs.Object, err)
		if corrupt(err) {
			err = bus.Permanent(err)
		}
		return nil, pst, err
	}
	if logged > maxLoggedBadLines {
		log.Warn("more lines are not valid rules; not logged one by one", "bad_lines", logged)
	}
	return cands, pst, nil
}

// member returns a reader of the tar member named file, read within
// rules.Tarball's bounds and stopping when ctx ends.
func member(ctx context.Context, r io.Reader, file string) (io.Reader, error) {
	tr, err := rules.OpenTarball(ctx, r, rules.TarLimits{})
	if err != nil {
		return nil, err
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, ErrMemberNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("read tar header: %w", err)
		}
		if hdr.Name == file && hdr.Typeflag == tar.TypeReg {
			return tr, nil
		}
	}
}

// corrupt reports whether err says the stored bytes are bad, which no retry
// mends.
func corrupt(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) ||
		errors.Is(err, gzip.ErrHeader) || errors.Is(err, tar.ErrHeader) ||
		errors.Is(err, rules.ErrSparseMember) || errors.Is(err, rules.ErrMemberTooLarge) || errors.Is(err, rules.ErrArchiveTooLarge)
}

// diffStats counts the rules not written.
type diffStats struct{ unchanged, older, skipped int }

// shardState is a loaded shard with its KV revision.
type shardState struct {
	key string
	rev uint64
	m   shard
	// ours are the entries this message sets.
	ours shard
}

// diff loads the state of the candidates' shards and returns the
// candidates to write, the signatures to retire and the shards to save.
// A rule whose rev went up retires the signature of its previous
// revision; a rule of prev (the file's previous version) no longer in the
// file retires its signature, when this source wrote it at that rev.
func (l *Loader) diff(ctx context.Context, rs schemas.Ruleset, cands []candidate, prev *fileState) ([]candidate, []retirement, []*shardState, diffStats, error) {
	shards := map[string]*shardState{}
	var order []*shardState
	shardOf := func(sid int) (*shardState, error) {
		k := ShardKey(l.Instance, sid)
		sh, ok := shards[k]
		if !ok {
			sh = &shardState{key: k, ours: shard{}}
			if err := l.loadShard(ctx, sh); err != nil {
				return nil, err
			}
			shards[k] = sh
			order = append(order, sh)
		}
		return sh, nil
	}
	ourSource := func(e entry) bool { return e.Source == "" || e.Source == rs.Source }
	var st diffStats
	var writes []candidate
	var retire []retirement
	inFile := make(map[string]bool, len(cands))
	for _, c := range cands {
		inFile[c.key] = true
		sh, err := shardOf(c.rule.SID)
		if err != nil {
			return nil, nil, nil, st, err
		}
		prevE, had := sh.m[c.key]
		if c.disabled && !l.IncludeNonStandard && (!had || l.wasDisabled(prevE)) {
			// Non-standard rules are not loaded; but a rule written as
			// enabled that ET has since disabled goes on (to the
			// non-standard status), since nobody should keep alerting on
			// a rule ET withdrew.
			st.skipped++
			continue
		}
		switch {
		case !had:
		case c.rule.Rev > prevE.Rev:
			// New rule text, so a new signature: the previous revision's
			// is retired, unless it is retired already, whichever source
			// wrote it (ET Open a rev behind ET Pro, which carries the
			// same sids): its text is in that source's file.
			if prevE.Status != l.RetiredStatus {
				source, file := prevE.Source, prevE.File
				if ourSource(prevE) {
					source, file = rs.Source, rs.File
				}
				retire = append(retire, retirement{key: c.key, rev: prevE.Rev, last: prevE.Status, source: source, file: file})
			}
		case c.rule.Rev < prevE.Rev:
			st.older++
			continue
		case c.status == prevE.Status:
			st.unchanged++
			continue
		case prevE.Source != "" && prevE.Source != rs.Source:
			// Another source wrote this rev with another status: it stays.
			st.older++
			continue
		default:
			c.last = prevE.Status // Same rev, same signature: its status changes.
		}
		writes = append(writes, c)
		sh.ours[c.key] = entry{Rev: c.rule.Rev, Status: c.status, Source: rs.Source, Disabled: new(c.disabled), File: rs.File}
	}
	if prev != nil {
		gone := make([]string, 0)
		for k := range prev.Revs {
			if !inFile[k] {
				gone = append(gone, k)
			}
		}
		slices.Sort(gone)
		for _, k := range gone {
			sh, err := shardOf(sidOfKey(k))
			if err != nil {
				return nil, nil, nil, st, err
			}
			e, ok := sh.m[k]
			if !ok || e.Rev != prev.Revs[k] || !ourSource(e) || e.Status == l.RetiredStatus {
				continue
			}
			retire = append(retire, retirement{key: k, rev: e.Rev, last: e.Status, source: rs.Source, file: rs.File})
			sh.ours[k] = entry{Rev: e.Rev, Status: l.RetiredStatus, Source: rs.Source, Disabled: e.Disabled, File: rs.File}
		}
	}
	return writes, retire, order, st, nil
}

// sidOfKey returns the sid of a shard key ("sid" or "gid:sid").
func sidOfKey(k string) int {
	if i := strings.LastIndexByte(k, ':'); i >= 0 {
		k = k[i+1:]
	}
	sid, _ := strconv.Atoi(k) // Keys are written by sidKey.
	return sid
}

// loadFile returns the state of a rules file, nil when none is stored.
func (l *Loader) loadFile(ctx context.Context, key string) (*fileState, error) {
	e, err := l.State.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load rules file state %s: %w", key, err)
	}
	var fs fileState
	if err := json.Unmarshal(e.Value(), &fs); err != nil {
		return nil, bus.Permanent(fmt.Errorf("load rules file state %s: decode: %w", key, err))
	}
	return &fs, nil
}

// saveFile stores the state of a rules file loaded from object.
func (l *Loader) saveFile(ctx context.Context, key, object string, cands []candidate) error {
	fs := fileState{Object: object, Revs: make(map[string]int, len(cands))}
	for _, c := range cands {
		fs.Revs[c.key] = c.rule.Rev
	}
	data, err := json.Marshal(fs)
	if err != nil {
		return fmt.Errorf("save rules file state %s: %w", key, err)
	}
	if _, err := l.State.Put(ctx, key, data); err != nil {
		return fmt.Errorf("save rules file state %s: %w", key, err)
	}
	return nil
}

// previous returns the signatures of retire as candidates at the
// retired status, their text read from the last version of the rules file
// that holds each: prev, the file being loaded, for this source's; the
// other source's own file state for a rule it wrote. It also returns how
// many it could not find (no version recorded, its object gone, or the
// rule not in it at that rev).
func (l *Loader) previous(ctx context.Context, rs schemas.Ruleset, prev *fileState, retire []retirement) ([]candidate, int, error) {
	type where struct{ source, file string }
	groups := map[where][]retirement{}
	var order []where
	for _, r := range retire {
		w := where{r.source, r.file}
		if _, ok := groups[w]; !ok {
			order = append(order, w)
		}
		groups[w] = append(groups[w], r)
	}
	var out []candidate
	unknown := 0
	for _, w := range order {
		group := groups[w]
		fs := prev
		if w != (where{rs.Source, rs.File}) {
			fs = nil
			if w.file != "" {
				var err error
				if fs, err = l.loadFile(ctx, FileKey(l.Instance, w.source, w.file)); err != nil {
					return nil, 0, err
				}
			}
		}
		found, err := l.retireFrom(ctx, rs, w.source, w.file, fs, group)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, found...)
		unknown += len(group) - len(found)
	}
	return out, unknown, nil
}

// retireFrom reads fs's object, the last version of source's rules file,
// and returns the rules of group it holds at their rev as candidates at
// the retired status; none when fs is nil or its object is gone.
func (l *Loader) retireFrom(ctx context.Context, rs schemas.Ruleset, source, file string, fs *fileState, group []retirement) ([]candidate, error) {
	if fs == nil {
		return nil, nil
	}
	old := rs
	old.Source, old.File, old.Object = source, file, fs.Object
	cands, _, err := l.read(ctx, old, slog.New(slog.DiscardHandler))
	if errors.Is(err, jetstream.ErrObjectNotFound) || errors.Is(err, ErrMemberNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read previous version from %s: %w", fs.Object, err)
	}
	byKey := make(map[string]candidate, len(cands))
	for _, c := range cands {
		byKey[c.key] = c
	}
	var out []candidate
	for _, r := range group {
		c, ok := byKey[r.key]
		if !ok || c.rule.Rev != r.rev {
			continue
		}
		c.status, c.last = l.RetiredStatus, r.last
		if file != rs.File {
			c.file = file
		}
		out = append(out, c)
	}
	return out, nil
}

func (l *Loader) loadShard(ctx context.Context, sh *shardState) error {
	sh.m, sh.rev = shard{}, 0
	e, err := l.State.Get(ctx, sh.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load signature state %s: %w", sh.key, err)
	}
	if err := json.Unmarshal(e.Value(), &sh.m); err != nil {
		return bus.Permanent(fmt.Errorf("load signature state %s: decode: %w", sh.key, err))
	}
	sh.rev = e.Revision()
	return nil
}

// save merges each shard's new entries into the stored shard by
// compare-and-set, reloading and merging again when another loader moved
// it meanwhile. An entry stored with a higher rev is kept.
func (l *Loader) save(ctx context.Context, shards []*shardState) error {
	for _, sh := range shards {
		if len(sh.ours) == 0 {
			continue
		}
		for attempt := 0; ; attempt++ {
			for k, e := range sh.ours {
				if cur, ok := sh.m[k]; !ok || e.Rev >= cur.Rev {
					sh.m[k] = e
				}
			}
			data, err := json.Marshal(sh.m)
			if err != nil {
				return fmt.Errorf("save signature state %s: %w", sh.key, err)
			}
			if sh.rev == 0 {
				_, err = l.State.Create(ctx, sh.key, data)
			} else {
				_, err = l.State.Update(ctx, sh.key, data, sh.rev)
			}
			if err == nil {
				break
			}
			if attempt >= 10 || ctx.Err() != nil {
				return fmt.Errorf("save signature state %s: %w", sh.key, err)
			}
			if lerr := l.loadShard(ctx, sh); lerr != nil {
				return lerr
			}
		}
	}
	return nil
}

// write builds the write.v1 message of a candidate.
func (l *Loader) write(rs schemas.Ruleset, c candidate, typ string) (bus.Outgoing, error) {
	r := c.rule
	name := r.Msg
	if strings.TrimSpace(name) == "" {
		name = "sid:" + strconv.Itoa(r.SID)
	}
	attrs := []schemas.Attribute{
		{Name: AttrSID, Value: strconv.Itoa(r.SID)},
		{Name: AttrRevision, Value: strconv.Itoa(r.Rev)},
	}
	add := func(n, v string) {
		v = strings.TrimSpace(v)
		if v == "" {
			return
		}
		if len(v) > maxAttrValue {
			v = v[:maxAttrValue]
		}
		attrs = append(attrs, schemas.Attribute{Name: n, Value: v})
	}
	add(AttrClasstype, r.Classtype)
	add(AttrCategory, Category(cmp.Or(c.file, rs.File)))
	for _, ref := range r.References {
		add(AttrReference, ref.Type+","+ref.Value)
	}
	seen := map[string]bool{}
	for _, kv := range r.Metadata {
		v := strings.TrimSpace(kv.Key + " " + kv.Value)
		if !seen[v] {
			seen[v] = true
			add(AttrMetadata, v)
		}
	}
	w := schemas.Write{
		Schema: schemas.WriteV1, Kind: schemas.KindSignature, Instance: l.Instance,
		Signature: &schemas.SignatureWrite{
			Name: name, Value: r.Raw, Type: typ, Status: c.status, LastStatus: c.last, Source: l.Source, Attributes: attrs,
		},
	}
	if err := w.Validate(); err != nil {
		return bus.Outgoing{}, fmt.Errorf("build write for %s:%d (sid %d): %w", r.File, r.Line, r.SID, err)
	}
	data, err := json.Marshal(w)
	if err != nil {
		return bus.Outgoing{}, fmt.Errorf("build write for sid %d: %w", r.SID, err)
	}
	return bus.Outgoing{Subject: bus.SubjectWriteSignature, ID: WriteID(l.Instance, c.key, r.Rev, rs.MD5, data), Data: data}, nil
}

// WriteID returns a signature write's deterministic message ID, derived
// from its content and its ruleset: <instance>:sig:<sid>:<rev>:<sha256 of
// the ruleset md5 and the payload, 16 hex digits>. A retry of the same
// ruleset repeats the ID, so the stream drops the copy; a later ruleset
// that writes the same content again (a rule re-enabled, its status back
// as it was) is not taken for a duplicate within the stream's window.
func WriteID(instance, sid string, rev int, rulesetMD5 string, payload []byte) string {
	h := sha256.New()
	h.Write([]byte(rulesetMD5))
	h.Write([]byte{0})
	h.Write(payload)
	sum := h.Sum(nil)
	return instance + ":sig:" + sid + ":" + strconv.Itoa(rev) + ":" + hex.EncodeToString(sum[:8])
}

func (l *Loader) logger(ctx context.Context) *slog.Logger {
	if l.Log != nil {
		return l.Log
	}
	return logging.FromContext(ctx)
}

// MatchName returns the name in available equal to want, ignoring case
// (ThreatQ spells "Non-malicious" and "Non-Malicious" both ways), as
// available spells it.
func MatchName(available []string, want string) (string, bool) {
	want = strings.TrimSpace(want)
	i := slices.IndexFunc(available, func(a string) bool { return strings.EqualFold(strings.TrimSpace(a), want) })
	if i < 0 {
		return "", false
	}
	return available[i], true
}
