package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
)

// dlqOptions are dlq's flags.
type dlqOptions struct {
	stream, consumer string
	all, dryRun      bool
}

// filter returns the dead-letter subject the options select.
func (o dlqOptions) filter() string {
	stream, consumer := o.stream, o.consumer
	if stream == "" {
		stream = "*"
	}
	if consumer == "" {
		consumer = "*"
	}
	return bus.DeadLetterSubject(stream, consumer)
}

// dlqCommand lists, shows and redrives dead letters.
//
// A redrive publishes the dead letter's original payload and headers on
// its original subject, with the message ID "redrive:<dead letter seq>"
// and a Tqflow-Redrive header, and then deletes the dead letter from the
// DEADLETTER stream. Deleted rather than marked: the stream is what
// "dlq list", "tqflow status" and the dead-letter dashboards count, so
// what is left there is exactly what still needs an operator; a mark would
// need a second store to keep in step. Nothing is lost: the original stays
// in its own stream until MaxAge, and the redriven copy says where it came
// from. If a redrive dies between the publish and the delete, running it
// again is safe: the stream drops the second copy as a duplicate of its ID
// (within the duplicate window), and the delete then happens. A redriven
// message that fails again is dead-lettered again, under a new sequence.
// Every consumer of the original subject sees the copy; consumers are
// idempotent.
func dlqCommand(stdout io.Writer) app.Command {
	var fs *flag.FlagSet
	var o dlqOptions
	return app.Command{
		Name:    "dlq",
		Summary: "list, show and redrive dead letters",
		Usage: "tqflow dlq list [--stream S] [--consumer C]\n" +
			"       tqflow dlq show SEQ\n" +
			"       tqflow dlq redrive SEQ|--all [--stream S] [--consumer C] [--dry-run]",
		Flags: func(f *flag.FlagSet) {
			fs = f
			f.StringVar(&o.stream, "stream", "", "only dead letters from this stream (INDICATORS, RULESETS, WRITES)")
			f.StringVar(&o.consumer, "consumer", "", "only dead letters of this consumer")
			f.BoolVar(&o.all, "all", false, "redrive: every dead letter the filters select")
			f.BoolVar(&o.dryRun, "dry-run", false, "redrive: say what would be redriven, change nothing")
		},
		Run: func(ctx context.Context, env *app.Env) error {
			args, err := parseFlagsAnywhere(fs, env.Args)
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			if err != nil {
				return err
			}
			if len(args) == 0 {
				return app.UsageError{Err: errors.New("dlq: want list, show SEQ or redrive SEQ|--all")}
			}
			action, rest := args[0], args[1:]
			var seqs []uint64
			switch {
			case action == "list" && len(rest) == 0:
			case (action == "show" && len(rest) == 1) || (action == "redrive" && len(rest) == 1 && !o.all):
				seq, err := strconv.ParseUint(rest[0], 10, 64)
				if err != nil || seq == 0 {
					return app.UsageError{Err: fmt.Errorf("dlq %s %q: want a dead letter's sequence number (see dlq list)", action, rest[0])}
				}
				seqs = []uint64{seq}
			case action == "redrive" && len(rest) == 0 && o.all:
			default:
				return app.UsageError{Err: fmt.Errorf("dlq %s: want list, show SEQ or redrive SEQ|--all", strings.Join(args, " "))}
			}
			for _, tok := range []string{o.stream, o.consumer} {
				if tok != "" && !bus.ValidToken(tok) {
					return app.UsageError{Err: fmt.Errorf("dlq: %q is not a stream or consumer name", tok)}
				}
			}
			b, err := connectOps(ctx, env, "dlq")
			if err != nil {
				return err
			}
			defer func() { _ = b.Close() }()
			switch action {
			case "list":
				return dlqList(ctx, b.JetStream(), o, stdout)
			case "show":
				return dlqShow(ctx, b.JetStream(), seqs[0], stdout)
			}
			return dlqRedrive(ctx, b, o, seqs, stdout)
		},
	}
}

// deadLetter is a dead letter and where it is stored.
type deadLetter struct {
	Seq uint64
	bus.DeadLetter
}

// listDeadLetters returns the dead letters o's filters select, oldest
// first.
func listDeadLetters(ctx context.Context, js jetstream.JetStream, o dlqOptions) ([]deadLetter, error) {
	var out []deadLetter
	err := scan(ctx, js, bus.StreamDeadLetter, jetstream.OrderedConsumerConfig{FilterSubjects: []string{o.filter()}},
		func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
			dl := deadLetter{Seq: md.Sequence.Stream}
			if err := json.Unmarshal(m.Data(), &dl.DeadLetter); err != nil {
				return false, fmt.Errorf("decode dead letter %d: %w", dl.Seq, err)
			}
			out = append(out, dl)
			return true, nil
		})
	return out, err
}

func dlqList(ctx context.Context, js jetstream.JetStream, o dlqOptions, w io.Writer) error {
	dls, err := listDeadLetters(ctx, js, o)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tFAILED AT\tCONSUMER\tSUBJECT\tREASON\tDELIVERIES\tERROR")
	for _, dl := range dls {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", dl.Seq, when(dl.FailedAt), dl.Stream+"/"+dl.Consumer,
			dl.Subject, dl.Reason, dl.Deliveries, oneLine(dl.Error, 100))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	return nil
}

// oneLine returns s on one line, cut to at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// getDeadLetter reads the dead letter stored at seq.
func getDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) (deadLetter, error) {
	s, err := js.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		return deadLetter{}, fmt.Errorf("look up stream %s: %w", bus.StreamDeadLetter, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return deadLetter{}, fmt.Errorf("dead letter %d not found: already redriven, or never one (see tqflow dlq list)", seq)
	}
	if err != nil {
		return deadLetter{}, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	dl := deadLetter{Seq: seq}
	if err := json.Unmarshal(raw.Data, &dl.DeadLetter); err != nil {
		return deadLetter{}, fmt.Errorf("decode dead letter %d: %w", seq, err)
	}
	return dl, nil
}

func dlqShow(ctx context.Context, js jetstream.JetStream, seq uint64, w io.Writer) error {
	dl, err := getDeadLetter(ctx, js, seq)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "dead letter:\t%d\n", dl.Seq)
	fmt.Fprintf(tw, "failed at:\t%s\n", when(dl.FailedAt))
	fmt.Fprintf(tw, "reason:\t%s\n", dl.Reason)
	fmt.Fprintf(tw, "error:\t%s\n", dl.Error)
	fmt.Fprintf(tw, "deliveries:\t%d\n", dl.Deliveries)
	fmt.Fprintf(tw, "stream:\t%s (seq %d)\n", dl.Stream, dl.Sequence)
	fmt.Fprintf(tw, "consumer:\t%s\n", dl.Consumer)
	fmt.Fprintf(tw, "subject:\t%s\n", dl.Subject)
	fmt.Fprintf(tw, "message id:\t%s\n", dl.MsgID)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write dead letter: %w", err)
	}
	if len(dl.Header) > 0 {
		fmt.Fprintln(w, "headers:")
		keys := make([]string, 0, len(dl.Header))
		for k := range dl.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			for _, v := range dl.Header[k] {
				fmt.Fprintf(w, "  %s: %s\n", k, v)
			}
		}
	}
	fmt.Fprintf(w, "payload (%d bytes):\n", len(dl.Data))
	var pretty bytes.Buffer
	if json.Valid(dl.Data) && json.Indent(&pretty, dl.Data, "  ", "  ") == nil {
		fmt.Fprintf(w, "  %s\n", pretty.Bytes())
	} else {
		fmt.Fprintf(w, "  %q\n", dl.Data)
	}
	return nil
}

// dlqRedrive redrives the dead letters at seqs, or with none given, every
// one o's filters select.
func dlqRedrive(ctx context.Context, b *bus.Bus, o dlqOptions, seqs []uint64, w io.Writer) error {
	js := b.JetStream()
	var dls []deadLetter
	if len(seqs) == 0 {
		var err error
		if dls, err = listDeadLetters(ctx, js, o); err != nil {
			return err
		}
	}
	for _, seq := range seqs {
		dl, err := getDeadLetter(ctx, js, seq)
		if err != nil {
			return err
		}
		if (o.stream != "" && dl.Stream != o.stream) || (o.consumer != "" && dl.Consumer != o.consumer) {
			return app.UsageError{Err: fmt.Errorf("dead letter %d is %s/%s's, not what --stream and --consumer select", seq, dl.Stream, dl.Consumer)}
		}
		dls = append(dls, dl)
	}
	s, err := js.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", bus.StreamDeadLetter, err)
	}
	verb := "redriven"
	if o.dryRun {
		verb = "would redrive"
	}
	n := 0
	for _, dl := range dls {
		id := redriveID(dl.Seq)
		if !o.dryRun {
			h := copyHeader(dl.Header)
			h.Set(bus.HeaderRedrive, strconv.FormatUint(dl.Seq, 10))
			if err := b.Publish(ctx, bus.Outgoing{Subject: dl.Subject, ID: id, Data: dl.Data, Header: h}); err != nil {
				return fmt.Errorf("redrive dead letter %d: %w", dl.Seq, err)
			}
			if err := s.DeleteMsg(ctx, dl.Seq); err != nil {
				return fmt.Errorf("delete redriven dead letter %d (redrive it again to retry; the copy is stored once): %w", dl.Seq, err)
			}
		}
		n++
		fmt.Fprintf(w, "%s %d: %s (%s/%s, message id %s)\n", verb, dl.Seq, dl.Subject, dl.Stream, dl.Consumer, id)
	}
	fmt.Fprintf(w, "%s: %d\n", verb, n)
	return nil
}

// redriveID is the message ID of a redriven dead letter: the same for
// every redrive of it, so that the stream stores it once.
func redriveID(seq uint64) string { return "redrive:" + strconv.FormatUint(seq, 10) }
