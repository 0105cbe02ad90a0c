package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
)

// statusReport is what tqflow status shows.
type statusReport struct {
	Streams     []streamStatus     `json:"streams"`
	Checkpoints []checkpointStatus `json:"checkpoints"`
	DeadLetters []deadLetterCount  `json:"dead_letters"`
	// CTRRefused lists the instances whose CTR refuses every call.
	CTRRefused []ctrRefusal `json:"ctr_refused,omitempty"`
}

type ctrRefusal struct {
	Instance string    `json:"instance"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
}

type streamStatus struct {
	Name      string           `json:"name"`
	Messages  uint64           `json:"messages"`
	Bytes     uint64           `json:"bytes"`
	First     time.Time        `json:"first,omitzero"`
	Last      time.Time        `json:"last,omitzero"`
	Consumers []consumerStatus `json:"consumers"`
}

type consumerStatus struct {
	Name string `json:"name"`
	// Pending is the consumer's lag: messages not delivered yet.
	Pending     uint64    `json:"pending"`
	AckPending  int       `json:"ack_pending"`
	Redelivered int       `json:"redelivered"`
	LastActive  time.Time `json:"last_active,omitzero"`
}

// checkpointStatus mirrors the fetcher's checkpoint (JSON in
// tqflow_checkpoints under "<job>.<instance>"), which is internal to the
// fetcher's module.
type checkpointStatus struct {
	Job       string    `json:"job"`
	Instance  string    `json:"instance"`
	Through   time.Time `json:"through,omitzero"`
	RunID     string    `json:"run_id"`
	Published int       `json:"published"`
	At        time.Time `json:"at,omitzero"`
}

type deadLetterCount struct {
	Subject string `json:"subject"`
	Count   uint64 `json:"count"`
}

func statusCommand(stdout io.Writer) app.Command {
	var asJSON bool
	return app.Command{
		Name:    "status",
		Summary: "show streams, consumers and their lag, last runs and dead letters",
		Usage:   "tqflow status [--json]",
		Flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON instead of tables")
		},
		Run: func(ctx context.Context, env *app.Env) error {
			b, err := connectOps(ctx, env, "status")
			if err != nil {
				return err
			}
			defer func() { _ = b.Close() }()
			r, err := collectStatus(ctx, b.JetStream())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return fmt.Errorf("write status: %w", err)
				}
				return nil
			}
			return printStatus(stdout, r)
		},
	}
}

// collectStatus asks the server for every tqflow stream (the key-value
// buckets' and object stores' streams left out), its consumers, the
// checkpoints and the dead letters per subject.
func collectStatus(ctx context.Context, js jetstream.JetStream) (statusReport, error) {
	var r statusReport
	streams := js.ListStreams(ctx)
	for si := range streams.Info() {
		name := si.Config.Name
		if strings.HasPrefix(name, "KV_") || strings.HasPrefix(name, "OBJ_") {
			continue
		}
		r.Streams = append(r.Streams, streamStatus{
			Name: name, Messages: si.State.Msgs, Bytes: si.State.Bytes,
			First: si.State.FirstTime, Last: si.State.LastTime,
		})
	}
	if err := streams.Err(); err != nil {
		return r, fmt.Errorf("list streams: %w", err)
	}
	slices.SortFunc(r.Streams, func(a, b streamStatus) int { return strings.Compare(a.Name, b.Name) })
	for i := range r.Streams {
		st := &r.Streams[i]
		s, err := js.Stream(ctx, st.Name)
		if err != nil {
			return r, fmt.Errorf("look up stream %s: %w", st.Name, err)
		}
		cl := s.ListConsumers(ctx)
		for ci := range cl.Info() {
			cs := consumerStatus{Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered}
			for _, t := range []*time.Time{ci.Delivered.Last, ci.AckFloor.Last} {
				if t != nil && t.After(cs.LastActive) {
					cs.LastActive = *t
				}
			}
			st.Consumers = append(st.Consumers, cs)
		}
		if err := cl.Err(); err != nil {
			return r, fmt.Errorf("list consumers of %s: %w", st.Name, err)
		}
		slices.SortFunc(st.Consumers, func(a, b consumerStatus) int { return strings.Compare(a.Name, b.Name) })
		if st.Name == bus.StreamDeadLetter && st.Messages > 0 {
			info, err := s.Info(ctx, jetstream.WithSubjectFilter("dlq.>"))
			if err != nil {
				return r, fmt.Errorf("count dead letters: %w", err)
			}
			for subj, n := range info.State.Subjects {
				r.DeadLetters = append(r.DeadLetters, deadLetterCount{Subject: subj, Count: n})
			}
			slices.SortFunc(r.DeadLetters, func(a, b deadLetterCount) int { return strings.Compare(a.Subject, b.Subject) })
		}
	}
	cps, err := loadCheckpoints(ctx, js)
	if err != nil {
		return r, err
	}
	r.Checkpoints = cps
	r.CTRRefused = loadCTRRefusals(ctx, js)
	return r, nil
}

// loadCTRRefusals reads what the enrichers recorded while CTR refuses
// every call (enrichersvc.RefusalKey); nothing when the bucket is absent.
func loadCTRRefusals(ctx context.Context, js jetstream.JetStream) []ctrRefusal {
	kv, err := js.KeyValue(ctx, bus.BucketCTRBudget)
	if err != nil {
		return nil
	}
	lister, err := kv.ListKeys(ctx, jetstream.MetaOnly())
	if err != nil {
		return nil
	}
	defer func() { _ = lister.Stop() }()
	var out []ctrRefusal
	for key := range lister.Keys() {
		inst, ok := strings.CutPrefix(key, "refused.")
		if !ok {
			continue
		}
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue
		}
		var rf enrichersvc.Refusal
		if json.Unmarshal(e.Value(), &rf) == nil {
			out = append(out, ctrRefusal{Instance: inst, Reason: rf.Reason, Since: rf.Since})
		}
	}
	slices.SortFunc(out, func(a, b ctrRefusal) int { return strings.Compare(a.Instance, b.Instance) })
	return out
}

func loadCheckpoints(ctx context.Context, js jetstream.JetStream) ([]checkpointStatus, error) {
	kv, err := js.KeyValue(ctx, bus.BucketCheckpoints)
	if err != nil {
		return nil, fmt.Errorf("open key-value bucket %s: %w", bus.BucketCheckpoints, err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	var out []checkpointStatus
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load checkpoint %s: %w", key, err)
		}
		var cp checkpointStatus
		if err := json.Unmarshal(e.Value(), &cp); err != nil {
			return nil, fmt.Errorf("decode checkpoint %s: %w", key, err)
		}
		cp.Job, cp.Instance, _ = strings.Cut(key, ".")
		out = append(out, cp)
	}
	slices.SortFunc(out, func(a, b checkpointStatus) int {
		return strings.Compare(a.Job+"."+a.Instance, b.Job+"."+b.Instance)
	})
	return out, nil
}

// printStatus writes r as four tables.
func printStatus(w io.Writer, r statusReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\tFIRST\tLAST")
	for _, s := range r.Streams {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", s.Name, s.Messages, s.Bytes, when(s.First), when(s.Last))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "STREAM\tCONSUMER\tPENDING (LAG)\tACK PENDING\tREDELIVERED\tLAST ACTIVE")
	for _, s := range r.Streams {
		for _, c := range s.Consumers {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, c.Name, c.Pending, c.AckPending, c.Redelivered, when(c.LastActive))
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "JOB\tINSTANCE\tTHROUGH\tLAST RUN\tRUN ID\tPUBLISHED")
	for _, c := range r.Checkpoints {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", c.Job, c.Instance, when(c.Through), when(c.At), c.RunID, c.Published)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "DEAD LETTERS\tCOUNT")
	for _, d := range r.DeadLetters {
		fmt.Fprintf(tw, "%s\t%d\n", d.Subject, d.Count)
	}
	if len(r.DeadLetters) == 0 {
		fmt.Fprintln(tw, "(none)\t0")
	}
	if len(r.CTRRefused) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "CTR REFUSES EVERY CALL\tSINCE\tREASON (fix the API client; enrichment resumes by itself)")
		for _, c := range r.CTRRefused {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Instance, when(c.Since), c.Reason)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}
