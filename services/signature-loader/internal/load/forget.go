package load

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/tqflow/tqflow/pkg/bus"
)

// The state records a sid as written when its write is published, not
// when the writer has written it: a write the writer dead-letters would be
// skipped as unchanged by every later run. Forget reads the writer's dead
// letters and removes such sids from the state, so that the next run
// writes them again (writes are idempotent, so a dead letter redriven
// meanwhile costs one repeated write at most).

// WriterDeadLetters is the subject of the writer's dead letters (the
// writer's durable is "writer"; services do not import each other).
var WriterDeadLetters = bus.DeadLetterSubject(bus.StreamWrites, "writer")

// Forget handles one of the writer's dead letters: a signature write of
// this instance is forgotten from the state, if the state still holds the
// rev that was dead-lettered. Anything else is left alone.
func (l *Loader) Forget(ctx context.Context, m *bus.Message) error {
	var dl bus.DeadLetter
	if err := json.Unmarshal(m.Data, &dl); err != nil {
		return bus.Permanent(fmt.Errorf("decode the writer's dead letter: %w", err))
	}
	if dl.Subject != bus.SubjectWriteSignature {
		return nil
	}
	key, sid, rev, ok := parseWriteID(l.Instance, dl.MsgID)
	if !ok {
		return nil // Another instance's, or not a loader's write.
	}
	sh := &shardState{key: ShardKey(l.Instance, sid)}
	for attempt := 0; ; attempt++ {
		if err := l.loadShard(ctx, sh); err != nil {
			return err
		}
		e, had := sh.m[key]
		if !had || e.Rev != rev || sh.rev == 0 {
			return nil // Already forgotten, or a later rev written since.
		}
		delete(sh.m, key)
		data, err := json.Marshal(sh.m)
		if err != nil {
			return fmt.Errorf("forget sid %s: %w", key, err)
		}
		_, err = l.State.Update(ctx, sh.key, data, sh.rev)
		if err == nil {
			l.logger(ctx).Warn("signature write dead-lettered by the writer; the next run writes it again",
				"sid", key, "rev", rev, "dlq_seq", m.Sequence)
			if s := l.Stats; s != nil {
				s.Forgotten.Add(1)
			}
			return nil
		}
		if attempt >= 10 || ctx.Err() != nil {
			return fmt.Errorf("forget sid %s in %s: %w", key, sh.key, err)
		}
		// Another loader moved the shard: read it again.
	}
}

// parseWriteID reads a [WriteID] of instance: the sid key (sid or
// gid:sid), the sid and the rev.
func parseWriteID(instance, id string) (key string, sid, rev int, ok bool) {
	rest, ok := strings.CutPrefix(id, instance+":sig:")
	if !ok {
		return "", 0, 0, false
	}
	i := strings.LastIndexByte(rest, ':') // Before the hash.
	if i < 0 {
		return "", 0, 0, false
	}
	rest = rest[:i]
	i = strings.LastIndexByte(rest, ':') // Before the rev.
	if i < 0 {
		return "", 0, 0, false
	}
	rev, err := strconv.Atoi(rest[i+1:])
	if err != nil {
		return "", 0, 0, false
	}
	key = rest[:i]
	s := key
	if _, after, found := strings.Cut(key, ":"); found {
		s = after
	}
	sid, err = strconv.Atoi(s)
	if err != nil {
		return "", 0, 0, false
	}
	return key, sid, rev, true
}
