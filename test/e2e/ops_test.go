package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/schemas"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	"github.com/tqflow/tqflow/services/tqflow/cli"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
	writersvc "github.com/tqflow/tqflow/services/writer/service"
)

// The operator commands (tqflow replay, tqflow dlq) end to end: run
// through cli.MainEnv exactly as the binary runs them, connected by
// NATS_URL like an operator's shell, against a pipeline that has run.

// newOpsHarness is newHarness with a NATS server that also listens on a
// loopback port, so that the tqflow command connects to it by URL. (The
// harness's in-process-only server stays idle.)
func newOpsHarness(t *testing.T, o sandbox.Options) *harness {
	t.Helper()
	h := newHarness(t, o)
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(), ServerName: "ops", Port: -1}, nil)
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	h.srv = srv
	return h
}

// tqflow runs the tqflow command with args against the harness's NATS
// server and returns its exit status, stdout and stderr.
func (h *harness) tqflow(args ...string) (code int, stdout, stderr string) {
	h.t.Helper()
	environ := []string{
		"NATS_URL=" + h.srv.ClientURL(),
		// The streams' limits as bustest.Connect set them: the command's
		// topology check must find them as they are.
		"NATS_STREAM_MAX_AGE=1h", "NATS_DUPLICATE_WINDOW=2m",
	}
	var out, errOut bytes.Buffer
	code = cli.MainEnv(args, environ, &out, &errOut)
	return code, out.String(), errOut.String()
}

// settled is a message a worker settled.
type settled struct {
	consumer string
	outcome  bus.Outcome
	id       string
	header   nats.Header
	data     []byte
}

// work runs the pipeline's workers, without a fetch, until every consumer
// has nothing pending, and returns the messages they settled.
func (h *harness) work() []settled {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := pipeline.New(ctx, h.config(nil), pipeline.Buses{Default: h.connect()}, h.logger())
	if err != nil {
		h.t.Fatal(err)
	}
	var mu sync.Mutex
	var out []settled
	p.Observe(func(st bus.Settlement) {
		mu.Lock()
		defer mu.Unlock()
		m := st.Message
		out = append(out, settled{consumer: st.Spec.Name, outcome: st.Outcome, id: m.ID(), header: m.Header, data: m.Data})
	})
	wctx, stop := context.WithCancel(ctx)
	wait := p.StartWorkers(wctx)
	derr := p.WaitDrained(ctx)
	stop()
	if err := errors.Join(derr, wait()); err != nil {
		h.t.Fatalf("workers: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return out
}

// streamState returns the state of one stream.
func streamState(t *testing.T, b *bus.Bus, name string) jetstream.StreamState {
	t.Helper()
	ctx := context.Background()
	s, err := b.JetStream().Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// number returns the number after label on its own line of a command's
// table output ("stored    12").
func number(t *testing.T, out, label string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `\s+(\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q line in the output:\n%s", label, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// ctrSays is what CTR knows of each of ids, from the simulator's own
// knowledge base: the attributes the pipeline must write (none when CTR
// knows nothing).
func (h *harness) ctrSays(ids ...int64) map[int64][]attr {
	h.t.Helper()
	out := map[int64][]attr{}
	for _, id := range ids {
		in, _ := h.sb.ThreatQ.Indicator(id)
		t, _ := sandbox.CTRType(in.Type)
		for _, a := range h.sb.CTR.Attributes(ctrsim.Observable{Type: t, Value: in.Value}) {
			out[id] = append(out[id], attr{a.Name, a.Value})
		}
	}
	return out
}

// change is a ledger entry as the tests compare them.
type change struct{ op, object, name, value string }

func changesOf(entries []sim.Entry) map[change]int {
	out := map[change]int{}
	for _, e := range entries {
		out[change{e.Op, e.Object, e.Name, e.Value}]++
	}
	return out
}

// rewrite returns what writing attrs and the status Review to an
// indicator that holds rows and status must change in ThreatQ: each row it
// lacks added, our source added to another feed's row of the same name
// and value, each row of ours alone that attrs does not hold removed
// (never another feed's), the status set if it differs.
func rewrite(id int64, rows []tqsim.Attribute, status string, attrs []attr) map[change]int {
	obj := "indicator/" + strconv.FormatInt(id, 10)
	out := map[change]int{}
	wanted := map[attr]bool{}
	for _, a := range attrs {
		wanted[a] = true
		i := slices.IndexFunc(rows, func(r tqsim.Attribute) bool { return r.Name == a.name && r.Value == a.value })
		switch {
		case i < 0:
			out[change{"attribute.add", obj, a.name, a.value}]++
		case !slices.Contains(rows[i].Sources, enrichersvc.DefaultSource):
			out[change{"attribute.source.add", obj, a.name, a.value}]++
		}
	}
	for _, r := range rows {
		if slices.Equal(r.Sources, []string{enrichersvc.DefaultSource}) && !wanted[attr{r.Name, r.Value}] {
			out[change{"attribute.delete", obj, r.Name, r.Value}]++
		}
	}
	if status != "Review" {
		out[change{"status.set", obj, "status", "Review"}]++
	}
	return out
}

// holds reports whether an indicator as read already carries every row of
// attrs and the status Review: the enricher then writes nothing.
func holds(in tqsim.Indicator, attrs []attr) bool {
	if in.Status != "Review" {
		return false
	}
	for _, a := range attrs {
		if !slices.ContainsFunc(in.Attributes, func(r tqsim.Attribute) bool { return r.Name == a.name && r.Value == a.value }) {
			return false
		}
	}
	return true
}

// TestCTRReplay: replaying yesterday's CTR subject re-enriches exactly
// those indicators, asking CTR again (a replay bypasses the cache), and
// ThreatQ changes exactly where CTR's answer did; replay --dry-run writes
// nothing; the same replay run again stores nothing new.
//
// "Yesterday" is a recorded time range, since stream timestamps are wall
// clock: run 1, a first full run, between t0 and t1; run 2, after some
// indicators were touched, after t1.
// nextSecond waits until the wall clock is in a second later than after's.
func nextSecond(t *testing.T, after time.Time) {
	t.Helper()
	testkit.Eventually(t, func() bool { return time.Now().Truncate(time.Second).After(after) }, 3*time.Second,
		"the second after "+after.Format(time.RFC3339Nano))
}

func TestCTRReplay(t *testing.T) {
	t.Parallel()
	const seed = 51
	// No module errors: this test counts every settlement, and a module
	// error's retry is one more (TestCTRJobModuleErrors covers them).
	h := newOpsHarness(t, sandbox.Options{Seed: seed, Indicators: 800, ContextShare: 0.4, CTRModuleErrors: -1})
	b := h.connect()
	subject := bus.IndicatorSubject(schemas.JobCTR, "default")
	want := h.expected()
	inds := h.sb.Dataset.Indicators
	var supported []tqsim.Indicator
	for _, in := range inds {
		if _, ok := sandbox.CTRType(in.Type); ok {
			supported = append(supported, in)
		}
	}
	if len(want) < 100 || len(supported)-len(want) < 100 || len(supported) == len(inds) {
		t.Fatalf("dataset too thin: %d with context, %d supported, %d in all", len(want), len(supported), len(inds))
	}

	t0 := time.Now()
	s := h.runOnce(nil, nil)
	t1 := time.Now()
	h.checkLedger(h.sb.ThreatQ.Ledger.Entries(), want, "Review")
	run1 := streamState(t, b, bus.StreamIndicators)
	if rep := s.Reports["ctr"]; rep.Read != len(inds) || run1.Msgs != uint64(len(inds)) || run1.FirstSeq != 1 {
		t.Fatalf("run 1 read %d and stored %d messages from seq %d; want all %d from 1", rep.Read, run1.Msgs, run1.FirstSeq, len(inds))
	}

	// Run 2, after t1: 100 indicators touched in ThreatQ (CTR says the
	// same of them; the run also reads back those whose status run 1 set).
	var touched []int64
	for _, in := range inds[:100] {
		touched = append(touched, in.ID)
	}
	// The pipeline reads the wall clock (sandbox.Options passes it no
	// clock), and ThreatQ timestamps have one-second resolution: touch in
	// a second after run 1's, and run once the touch's second is over (a
	// run reads up to the start of its second).
	nextSecond(t, t1)
	touchedAt := time.Now().UTC()
	h.sb.ThreatQ.Touch(touched, touchedAt)
	nextSecond(t, touchedAt)
	s = h.runOnce(nil, nil)
	run2 := streamState(t, b, bus.StreamIndicators)
	if fresh := s.Reports["ctr"].Published - s.Reports["ctr"].Duplicates; fresh < 100 || run2.Msgs != run1.Msgs+uint64(fresh) {
		t.Fatalf("run 2: %d new messages, stream grew from %d to %d; want at least the 100 touched", fresh, run1.Msgs, run2.Msgs)
	}

	// Since yesterday, CTR learnt something of three of run 1's
	// indicators it knew nothing of, and changed its mind on two it knew.
	var learnt, revised []int64
	for _, in := range supported {
		if _, known := want[in.ID]; !known && len(learnt) < 3 {
			learnt = append(learnt, in.ID)
			o := ctrsim.Observable{Type: mustType(t, in.Type), Value: in.Value}
			h.sb.CTR.AddContext(o, ctrsim.GenerateContext(seed+1000, o)...)
		}
	}
	for _, in := range supported {
		if _, known := want[in.ID]; known && len(revised) < 2 {
			revised = append(revised, in.ID)
			h.sb.CTR.AddContext(ctrsim.Observable{Type: mustType(t, in.Type), Value: in.Value}, ctrsim.ModuleContext{
				Module: "SOC Review", Disposition: 1,
				Judgement: &ctrsim.Judgement{Confidence: "High", Severity: "Info", Priority: 100,
					Reason: "Re-assessed: sinkholed", Source: "SOC analyst"},
			})
		}
	}
	now := h.ctrSays(append(slices.Clone(learnt), revised...)...)
	wantChanges, wantRevised := map[change]int{}, map[change]int{}
	for _, id := range append(slices.Clone(learnt), revised...) {
		if len(now[id]) == 0 || slices.Equal(now[id], want[id]) {
			t.Fatalf("indicator %d: CTR says %v, as before: the change proves nothing", id, now[id])
		}
		in, _ := h.sb.ThreatQ.Indicator(id)
		if slices.Contains(revised, id) {
			maps.Copy(wantRevised, rewrite(id, in.Attributes, in.Status, now[id]))
		} else {
			maps.Copy(wantChanges, rewrite(id, in.Attributes, in.Status, now[id]))
		}
	}
	wantNow := maps.Clone(want)
	maps.Copy(wantNow, now)

	since, until := t0.UTC().Format(time.RFC3339Nano), t1.UTC().Format(time.RFC3339Nano)
	asked, received, ledger := h.sb.CTR.Asked(), h.sb.CTR.ObservablesReceived(), h.sb.ThreatQ.Ledger.Len()

	// The dry run lists exactly run 1's messages, and publishes nothing.
	code, out, errOut := h.tqflow("replay", "--subject", subject, "--since", since, "--until", until, "--dry-run")
	if code != 0 {
		t.Fatalf("replay --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	run1IDs := map[string]bool{} // The original message IDs.
	var seqs []uint64
	row := regexp.MustCompile(`(?m)^(\d+)\s+\S+ \S+\s+` + regexp.QuoteMeta(subject) + `\s+(\S+)$`)
	for _, m := range row.FindAllStringSubmatch(out, -1) {
		seq, _ := strconv.ParseUint(m[1], 10, 64)
		seqs = append(seqs, seq)
		run1IDs[m[2]] = true
	}
	if len(seqs) == 0 {
		t.Fatalf("replay --dry-run listed no messages:\n%s", out)
	}
	if n := number(t, out, "would replay (dry run)"); n != len(inds) || number(t, out, "read") != len(inds) ||
		len(seqs) != len(inds) || len(run1IDs) != len(inds) || seqs[0] != run1.FirstSeq || seqs[len(seqs)-1] != run1.LastSeq {
		t.Errorf("replay --dry-run: would replay %d, listed %d messages (%d IDs) from seq %d to %d; want run 1's %d, seq %d to %d",
			n, len(seqs), len(run1IDs), seqs[0], seqs[len(seqs)-1], len(inds), run1.FirstSeq, run1.LastSeq)
	}
	if got := h.work(); len(got) != 0 {
		t.Errorf("after the dry run the workers settled %d messages, want 0", len(got))
	}
	if st := streamState(t, b, bus.StreamIndicators); st.Msgs != run2.Msgs || st.LastSeq != run2.LastSeq {
		t.Errorf("the dry run changed the stream: %d messages to seq %d, was %d to seq %d", st.Msgs, st.LastSeq, run2.Msgs, run2.LastSeq)
	}
	if n := h.sb.CTR.ObservablesReceived(); n != received {
		t.Errorf("after the dry run CTR was asked about %d observables, want 0", n-received)
	}
	if n := h.sb.ThreatQ.Ledger.Len(); n != ledger {
		t.Errorf("after the dry run the ledger grew by %d entries, want 0", n-ledger)
	}

	// The replay: run 1's messages again, each once.
	code, out, errOut = h.tqflow("replay", "--subject", subject, "--since", since, "--until", until, "--id", "yesterday")
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errOut)
	}
	if r, st, d := number(t, out, "replayed"), number(t, out, "stored"), number(t, out, "duplicates (already replayed with this ID)"); r != len(inds) || st != len(inds) || d != 0 {
		t.Errorf("replay: replayed %d, stored %d, duplicates %d; want %d, %d, 0:\n%s", r, st, d, len(inds), len(inds), out)
	}
	replayed := streamState(t, b, bus.StreamIndicators)
	if replayed.Msgs != run2.Msgs+uint64(len(inds)) {
		t.Errorf("replay: the stream grew by %d messages, want %d", replayed.Msgs-run2.Msgs, len(inds))
	}
	got := h.work()

	// The enricher received exactly the copies of run 1's messages, once
	// each, and asked CTR again about every observable of a supported type
	// among them, once each: nothing from the cache, nothing of run 2.
	enricherName := h.config(nil).Enricher.Spec().Name
	copies := map[string]int{}
	written := map[int64]int{}
	var wrong []string
	for _, m := range got {
		if m.outcome != bus.Acked {
			wrong = append(wrong, fmt.Sprintf("%s settled %s as %s, want acked", m.consumer, m.id, m.outcome))
		}
		switch m.consumer {
		case enricherName:
			orig, ok := strings.CutSuffix(m.id, ":replay:yesterday")
			if !ok || !run1IDs[orig] || m.header.Get(bus.HeaderReplay) != "yesterday" {
				wrong = append(wrong, fmt.Sprintf("the enricher received %s (replay %q), not a copy of run 1's", m.id, m.header.Get(bus.HeaderReplay)))
			}
			copies[orig]++
		case writersvc.ConsumerName:
			var w schemas.Write
			if err := json.Unmarshal(m.data, &w); err != nil || w.Indicator == nil {
				t.Fatalf("write %s: %v", m.id, err)
			}
			written[w.Indicator.ID]++
		default:
			wrong = append(wrong, fmt.Sprintf("unexpected consumer %s settled %s", m.consumer, m.id))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%d of the %d messages settled after the replay are wrong, e.g.:\n%s", len(wrong), len(got), strings.Join(wrong[:min(len(wrong), 10)], "\n"))
	}
	if len(copies) != len(run1IDs) {
		t.Errorf("the enricher received copies of %d of run 1's %d messages", len(copies), len(run1IDs))
	}
	for id, n := range copies {
		if n != 1 {
			t.Errorf("the enricher received the copy of %s %d times, want once", id, n)
		}
	}
	wantAsked := map[ctrsim.Observable]int64{}
	for _, in := range supported {
		wantAsked[ctrsim.Observable{Type: mustType(t, in.Type), Value: in.Value}]++
	}
	if len(wantAsked) != len(supported) {
		t.Fatalf("the dataset has %d supported indicators but %d distinct observables", len(supported), len(wantAsked))
	}
	askedNow := h.sb.CTR.Asked()
	wrong = nil
	for o, n := range askedNow {
		if d := n - asked[o]; d != wantAsked[o] {
			wrong = append(wrong, fmt.Sprintf("%s %q %d times, want %d", o.Type, o.Value, d, wantAsked[o]))
		}
	}
	for o, n := range wantAsked {
		if _, ok := askedNow[o]; !ok {
			wrong = append(wrong, fmt.Sprintf("%s %q 0 times, want %d", o.Type, o.Value, n))
		}
	}
	if len(wrong) > 0 {
		slices.Sort(wrong)
		t.Errorf("the replay asked CTR about %d observables wrongly (of %d run 1 sent it), e.g.:\n%s",
			len(wrong), len(wantAsked), strings.Join(wrong[:min(len(wrong), 10)], "\n"))
	}

	// Every indicator CTR knows of was written again (the copies carry
	// run 1's view of them), each once; ThreatQ changed only where CTR's
	// answer did, and exactly as it did.
	wantWritten := map[int64]int{}
	for _, in := range inds {
		if a, ok := wantNow[in.ID]; ok && !holds(in, a) {
			wantWritten[in.ID] = 1
		}
	}
	if !maps.Equal(written, wantWritten) {
		t.Errorf("the replay wrote %d indicators, want %d (every one CTR knows of, once)", len(written), len(wantWritten))
		for id, n := range wantWritten {
			if written[id] != n {
				t.Errorf("indicator %d written %d times, want %d", id, written[id], n)
			}
		}
	}
	gotChanges, gotRevised := map[change]int{}, map[change]int{}
	for c, n := range changesOf(h.sb.ThreatQ.Ledger.Entries()[ledger:]) {
		if slices.ContainsFunc(revised, func(id int64) bool { return c.object == "indicator/"+strconv.FormatInt(id, 10) }) {
			gotRevised[c] = n
		} else {
			gotChanges[c] = n
		}
	}
	compareChanges(t, "ledger after the replay", gotChanges, wantChanges)
	// Where CTR revised its answer, the values run 1 wrote are replaced,
	// though the replayed copies, read before run 1 wrote them, do not
	// list them: the writer reads what ThreatQ holds now, with the rows' sources (threatq.StaleRows).
	compareChanges(t, "ledger of the revised indicators after the replay", gotRevised, wantRevised)

	// The same replay again (an interrupted one rerun): every copy is a
	// duplicate, nothing is stored, nothing processed.
	asked, ledger = h.sb.CTR.Asked(), h.sb.ThreatQ.Ledger.Len()
	code, out, errOut = h.tqflow("replay", "--subject", subject, "--since", since, "--until", until, "--id", "yesterday")
	if code != 0 {
		t.Fatalf("replay again: exit %d\n%s%s", code, out, errOut)
	}
	if r, st, d := number(t, out, "replayed"), number(t, out, "stored"), number(t, out, "duplicates (already replayed with this ID)"); r != len(inds) || st != 0 || d != len(inds) {
		t.Errorf("replay again: replayed %d, stored %d, duplicates %d; want %d, 0, %d", r, st, d, len(inds), len(inds))
	}
	if st := streamState(t, b, bus.StreamIndicators); st.Msgs != replayed.Msgs {
		t.Errorf("replay again: the stream grew by %d messages, want 0", st.Msgs-replayed.Msgs)
	}
	if got := h.work(); len(got) != 0 {
		t.Errorf("replay again: the workers settled %d messages, want 0", len(got))
	}
	if a := h.sb.CTR.Asked(); !maps.Equal(a, asked) || h.sb.ThreatQ.Ledger.Len() != ledger {
		t.Errorf("replay again changed something: CTR asked, or the ledger grew from %d to %d", ledger, h.sb.ThreatQ.Ledger.Len())
	}
}

// compareChanges reports every difference between the ledger changes got
// and those wanted.
func compareChanges(t *testing.T, what string, got, want map[change]int) {
	t.Helper()
	for c, n := range got {
		if want[c] != n {
			t.Errorf("%s: %s %s %s=%q %d times, want %d", what, c.op, c.object, c.name, c.value, n, want[c])
		}
	}
	for c, n := range want {
		if _, ok := got[c]; !ok {
			t.Errorf("%s: %s %s %s=%q missing (want %d)", what, c.op, c.object, c.name, c.value, n)
		}
	}
}

func mustType(t *testing.T, threatqType string) string {
	t.Helper()
	typ, ok := sandbox.CTRType(threatqType)
	if !ok {
		t.Fatalf("CTR does not support %s", threatqType)
	}
	return typ
}

// TestCTRDeadLetterRedrive: a write ThreatQ refuses ends as a dead letter
// that tqflow dlq lists and shows; once the cause is fixed, redriving it
// completes the job, and it is gone.
func TestCTRDeadLetterRedrive(t *testing.T) {
	t.Parallel()
	h := newOpsHarness(t, sandbox.Options{Seed: 61, Indicators: 600, ContextShare: 0.4})
	b := h.connect()
	want := h.expected()
	var victim tqsim.Indicator
	for _, in := range h.sb.Dataset.Indicators {
		if _, ok := want[in.ID]; ok {
			victim = in
			break
		}
	}
	h.sb.ThreatQ.RejectValue(victim.Value)
	s := h.runOnce(nil, nil)
	others := maps.Clone(want)
	delete(others, victim.ID)
	h.checkLedger(h.sb.ThreatQ.Ledger.Entries(), others, "Review")
	if s.DeadLetter != 1 {
		t.Fatalf("%d dead letters, want 1", s.DeadLetter)
	}
	dlState := streamState(t, b, bus.StreamDeadLetter)

	// dlq list: exactly the one, where it failed and why.
	code, out, errOut := h.tqflow("dlq", "list")
	if code != 0 {
		t.Fatalf("dlq list: exit %d\n%s%s", code, out, errOut)
	}
	rows := dlqRows(out)
	if len(rows) != 1 {
		t.Fatalf("dlq list: %d dead letters, want 1:\n%s", len(rows), out)
	}
	f := rows[0] // SEQ, FAILED AT (date and time), CONSUMER, SUBJECT, REASON, DELIVERIES, ERROR...
	seq := f[0]
	if seq != strconv.FormatUint(dlState.LastSeq, 10) || f[3] != bus.StreamWrites+"/"+writersvc.ConsumerName ||
		f[4] != bus.SubjectWriteIndicator || f[5] != bus.ReasonPermanent || f[6] != "1" {
		t.Errorf("dlq list: %q; want seq %d, %s/%s, %s, %s, 1 delivery", f, dlState.LastSeq,
			bus.StreamWrites, writersvc.ConsumerName, bus.SubjectWriteIndicator, bus.ReasonPermanent)
	}

	// dlq show: the reason, ThreatQ's 400 and the write itself.
	code, out, errOut = h.tqflow("dlq", "show", seq)
	if code != 0 {
		t.Fatalf("dlq show %s: exit %d\n%s%s", seq, code, out, errOut)
	}
	if !regexp.MustCompile(`(?m)^reason:\s+permanent$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^error:\s+.*\b400\b`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^consumer:\s+writer$`).MatchString(out) {
		t.Errorf("dlq show %s: no reason permanent, 400 error or consumer writer:\n%s", seq, out)
	}
	_, payload, ok := strings.Cut(out, " bytes):\n")
	var w schemas.Write
	if !ok || json.Unmarshal([]byte(payload), &w) != nil || w.Indicator == nil || w.Indicator.ID != victim.ID || w.Indicator.Value != victim.Value {
		t.Errorf("dlq show %s: the payload is not the write of indicator %d %q:\n%s", seq, victim.ID, victim.Value, out)
	}

	// The cause fixed, the redrive completes the job.
	h.sb.ThreatQ.AcceptValue(victim.Value)
	code, out, errOut = h.tqflow("dlq", "redrive", seq)
	if code != 0 || !strings.Contains(out, "redriven: 1\n") {
		t.Fatalf("dlq redrive %s: exit %d\n%s%s", seq, code, out, errOut)
	}
	got := h.work()
	if len(got) != 1 || got[0].consumer != writersvc.ConsumerName || got[0].outcome != bus.Acked ||
		got[0].header.Get(bus.HeaderRedrive) != seq || got[0].id != "redrive:"+seq {
		t.Errorf("after the redrive the workers settled %d messages (%s), want the redriven write, acked", len(got), describe(got))
	}
	h.checkLedger(h.sb.ThreatQ.Ledger.Entries(), want, "Review")
	if st := streamState(t, b, bus.StreamDeadLetter); st.Msgs != 0 {
		t.Errorf("the dead-letter stream holds %d messages after the redrive, want 0", st.Msgs)
	}
	code, out, errOut = h.tqflow("dlq", "list")
	if code != 0 || len(dlqRows(out)) != 0 {
		t.Errorf("dlq list after the redrive: exit %d, %d dead letters, want none:\n%s%s", code, len(dlqRows(out)), out, errOut)
	}

	// Redriving it again fails, saying it is gone, and changes nothing.
	writes, ledger := streamState(t, b, bus.StreamWrites), h.sb.ThreatQ.Ledger.Len()
	code, out, errOut = h.tqflow("dlq", "redrive", seq)
	if code != 1 || !strings.Contains(errOut, "dead letter "+seq) || !strings.Contains(errOut, "not found") || strings.Contains(out, "redriven") {
		t.Errorf("dlq redrive %s again: exit %d, want 1 and an error saying dead letter %s is not found:\nstdout: %s\nstderr: %s", seq, code, seq, out, errOut)
	}
	if st := streamState(t, b, bus.StreamWrites); st.LastSeq != writes.LastSeq {
		t.Errorf("the second redrive published %d writes, want 0", st.LastSeq-writes.LastSeq)
	}
	if got := h.work(); len(got) != 0 || h.sb.ThreatQ.Ledger.Len() != ledger {
		t.Errorf("after the second redrive the workers settled %d messages and the ledger grew by %d; want 0 and 0", len(got), h.sb.ThreatQ.Ledger.Len()-ledger)
	}
}

// dlqRows returns the rows of dlq list's table, split into fields.
func dlqRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] == "SEQ" {
			continue
		}
		rows = append(rows, f)
	}
	return rows
}

// describe lists settled messages briefly: consumer, message ID, outcome.
func describe(ms []settled) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.consumer+" "+m.id+" "+m.outcome.String())
	}
	return strings.Join(s, ", ")
}
