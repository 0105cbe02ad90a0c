package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
)

// replayOptions are replay's flags, resolved.
type replayOptions struct {
	subject      string
	since, until time.Time
	dryRun       bool
	// id is the replay's ID; a new one when empty.
	id string
}

// replayResult counts what a replay did.
type replayResult struct {
	ID     string
	Stream string
	// Read is how many messages of the range were read; Skipped of those
	// were earlier replays' copies, not replayed again.
	Read, Skipped int
	// Replayed were published (or would be, on a dry run); Stored of them
	// the stream acknowledged, Duplicates of those it already had.
	Replayed, Stored, Duplicates int
}

// replayCommand re-publishes a time range of a subject so that the
// workers process it again.
//
// Each copy goes on its original subject with the original payload and
// headers, a Tqflow-Replay header holding the replay's ID, and the message
// ID "<original id>:replay:<replay id>": new to the stream, so it is
// stored, yet the same for a second run of the same replay (--id), so an
// interrupted replay can be run again without doubling. Copies made by an
// earlier replay are skipped, so replaying a range twice processes each
// original twice, not four times. A replay is a backfill: the enricher
// asks CTR again rather than its cache, and the writer replaces what
// ThreatQ holds now under the names it writes (the copy's view of the
// indicator is old); where nothing changed, ThreatQ is left as it was.
func replayCommand(stdout, stderr io.Writer) app.Command {
	var subject, since, until, id string
	var dryRun bool
	return app.Command{
		Name:    "replay",
		Summary: "re-publish a time range of a subject so the workers process it again",
		Usage:   "tqflow replay --subject S --since T [--until T] [--dry-run] [--id ID]   (T: RFC 3339, YYYY-MM-DD or a duration before now, e.g. 24h)",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&subject, "subject", "", "subject to replay, e.g. tq.indicators.ctr.default (wildcards allowed)")
			fs.StringVar(&since, "since", "", "start of the range, inclusive: RFC 3339, YYYY-MM-DD (UTC) or a duration before now (24h, 7d)")
			fs.StringVar(&until, "until", "", "end of the range, exclusive (default: now)")
			fs.BoolVar(&dryRun, "dry-run", false, "list and count what would be replayed, publish nothing")
			fs.StringVar(&id, "id", "", "replay ID (default: a new one); give an interrupted replay's ID to run it again without doubling")
		},
		Run: func(ctx context.Context, env *app.Env) error {
			o, err := resolveReplay(subject, since, until, id, dryRun, env.Args, time.Now())
			if err != nil {
				return err
			}
			b, err := connectOps(ctx, env, "replay")
			if err != nil {
				return err
			}
			defer func() { _ = b.Close() }()
			p := &progress{since: o.since, until: o.until,
				bar: app.NewProgress(stderr, env.Log, app.ProgressOptions{What: "replay", Unit: "percent", Total: 100})}
			res, err := replay(ctx, b, o, stdout, p)
			printReplay(stdout, o, res)
			return err
		},
	}
}

// resolveReplay checks replay's flags and reports every problem at once.
func resolveReplay(subject, since, until, id string, dryRun bool, args []string, now time.Time) (replayOptions, error) {
	o := replayOptions{subject: subject, dryRun: dryRun, id: id, until: now}
	var errs []error
	if len(args) > 0 {
		errs = append(errs, fmt.Errorf("replay: unexpected arguments %q", args))
	}
	switch {
	case subject == "":
		errs = append(errs, errors.New("--subject: required"))
	case strings.HasPrefix(subject, "dlq."):
		errs = append(errs, fmt.Errorf("--subject %s: dead letters are redriven (tqflow dlq redrive), not replayed", subject))
	case strings.ContainsAny(subject, " \t"):
		errs = append(errs, fmt.Errorf("--subject %q: want a NATS subject", subject))
	}
	if since == "" {
		errs = append(errs, errors.New("--since: required"))
	} else if t, err := parseWhen(since, now); err != nil {
		errs = append(errs, fmt.Errorf("--since %w", err))
	} else {
		o.since = t
	}
	if until != "" {
		if t, err := parseWhen(until, now); err != nil {
			errs = append(errs, fmt.Errorf("--until %w", err))
		} else {
			o.until = t
		}
	}
	if !o.since.IsZero() && !o.until.After(o.since) {
		errs = append(errs, fmt.Errorf("--until (%s) is not after --since (%s)", when(o.until), when(o.since)))
	}
	if id != "" && !bus.ValidToken(id) {
		errs = append(errs, fmt.Errorf("--id %q: want 1 to 64 letters, digits, - or _", id))
	}
	if err := errors.Join(errs...); err != nil {
		return o, app.UsageError{Err: err}
	}
	if o.id == "" {
		o.id = strconv.FormatInt(now.UnixNano(), 36)
	}
	return o, nil
}

// replay reads o's range of o.subject from its stream and re-publishes it
// (on a dry run, lists it on w instead). p, when not nil, shows progress.
func replay(ctx context.Context, b *bus.Bus, o replayOptions, w io.Writer, p *progress) (replayResult, error) {
	res := replayResult{ID: o.id}
	js := b.JetStream()
	stream, err := js.StreamNameBySubject(ctx, o.subject)
	if err != nil {
		return res, fmt.Errorf("find the stream of %s: %w", o.subject, err)
	}
	res.Stream = stream
	since := o.since
	batch := b.NewBatch(256)
	var tw *tabwriter.Writer
	if o.dryRun {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tSTORED AT\tSUBJECT\tMESSAGE ID")
	}
	err = scan(ctx, js, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{o.subject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	}, func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		if !md.Timestamp.Before(o.until) {
			return false, nil
		}
		res.Read++
		p.update(md.Timestamp, res.Read)
		h := m.Headers()
		if h.Get(bus.HeaderReplay) != "" {
			res.Skipped++
			return true, nil
		}
		orig := h.Get(jetstream.MsgIDHeader)
		if orig == "" {
			orig = stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
		}
		id := orig + ":replay:" + o.id
		res.Replayed++
		if o.dryRun {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", md.Sequence.Stream, when(md.Timestamp), m.Subject(), orig)
			return true, nil
		}
		out := copyHeader(h)
		out.Set(bus.HeaderReplay, o.id)
		return true, batch.Add(ctx, bus.Outgoing{Subject: m.Subject(), ID: id, Data: m.Data(), Header: out})
	})
	p.done(res.Read)
	if tw != nil {
		if ferr := tw.Flush(); ferr != nil {
			err = errors.Join(err, fmt.Errorf("write replay list: %w", ferr))
		}
	}
	if !o.dryRun {
		// Wait even after a failed read: what was sent is reported.
		werr := batch.Wait(context.WithoutCancel(ctx))
		res.Stored, res.Duplicates = batch.Stored()
		err = errors.Join(err, werr)
	}
	if err != nil {
		return res, fmt.Errorf("replay %s: %w", o.subject, err)
	}
	return res, nil
}

func printReplay(w io.Writer, o replayOptions, r replayResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "replay\t%s\n", r.ID)
	fmt.Fprintf(tw, "subject\t%s (stream %s)\n", o.subject, r.Stream)
	fmt.Fprintf(tw, "range\t%s to %s\n", when(o.since), when(o.until))
	fmt.Fprintf(tw, "read\t%d\n", r.Read)
	fmt.Fprintf(tw, "skipped (earlier replays)\t%d\n", r.Skipped)
	if o.dryRun {
		fmt.Fprintf(tw, "would replay (dry run)\t%d\n", r.Replayed)
	} else {
		fmt.Fprintf(tw, "replayed\t%d\n", r.Replayed)
		fmt.Fprintf(tw, "stored\t%d\n", r.Stored-r.Duplicates)
		fmt.Fprintf(tw, "duplicates (already replayed with this ID)\t%d\n", r.Duplicates)
	}
	_ = tw.Flush()
}

// progress shows how far a replay is through its time range, by the time
// of the last message read: a bar on a terminal, log lines otherwise. A
// nil *progress shows nothing.
type progress struct {
	since, until time.Time
	bar          *app.Progress
}

func (p *progress) update(at time.Time, n int) {
	if p == nil {
		return
	}
	frac := min(max(float64(at.Sub(p.since))/float64(p.until.Sub(p.since)), 0), 1)
	p.bar.Describe(fmt.Sprintf("replay: %d messages", n))
	p.bar.Set(int64(frac * 100))
}

func (p *progress) done(n int) {
	if p == nil {
		return
	}
	p.bar.Describe(fmt.Sprintf("replay: %d messages", n))
	p.bar.Set(100)
	p.bar.Done()
}
