package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/testkit"
)

const subject = "tq.indicators.ctr.test"

func publishN(t *testing.T, b *bus.Bus, n int) {
	t.Helper()
	ctx := context.Background()
	batch := b.NewBatch(100)
	for i := range n {
		if err := batch.Add(ctx, bus.Outgoing{Subject: subject, ID: fmt.Sprintf("m%d", i), Data: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func spec(name string) bus.ConsumerSpec {
	return bus.ConsumerSpec{Stream: bus.StreamIndicators, Name: name, Subjects: []string{subject}, AckWait: 2 * time.Second, MaxDeliver: 3}
}

// fastRetry keeps redeliveries quick in tests.
var fastRetry = func(uint64) time.Duration { return 50 * time.Millisecond }

// runUntil runs the consumer until done reports true, then shuts it down
// and returns Run's error.
func runUntil(t *testing.T, b *bus.Bus, s bus.ConsumerSpec, h bus.Handler, o bus.RunOptions, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx, s, h, o) }()
	if !testkit.Wait(done, 20*time.Second) {
		cancel()
		t.Fatal("condition not reached in 20s")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func consumerInfo(t *testing.T, b *bus.Bus, name string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := b.JetStream().Consumer(context.Background(), bus.StreamIndicators, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func deadLetters(t *testing.T, b *bus.Bus, consumer string) []bus.DeadLetter {
	t.Helper()
	ctx := context.Background()
	c, err := b.JetStream().OrderedConsumer(ctx, bus.StreamDeadLetter, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.DeadLetterSubject(bus.StreamIndicators, consumer)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []bus.DeadLetter
	batch, err := c.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		var dl bus.DeadLetter
		if err := json.Unmarshal(m.Data(), &dl); err != nil {
			t.Fatal(err)
		}
		out = append(out, dl)
	}
	return out
}

func TestPublishDeduplicates(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	for range 3 {
		if err := b.Publish(ctx, bus.Outgoing{Subject: subject, ID: "same", Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	batch := b.NewBatch(2)
	for range 5 {
		if err := batch.Add(ctx, bus.Outgoing{Subject: subject, ID: "same", Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if stored, dups := batch.Stored(); stored != 5 || dups != 5 {
		t.Errorf("Stored = %d, %d; want 5 acknowledged, all 5 duplicates", stored, dups)
	}
	s, err := b.JetStream().Stream(ctx, bus.StreamIndicators)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
	}
	if err := b.Publish(ctx, bus.Outgoing{Subject: subject, Data: []byte("x")}); err == nil {
		t.Error("a message without an ID must be refused")
	}
}

func TestRunAcksOnSuccess(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 200)
	var seen sync.Map
	var n atomic.Int64
	runUntil(t, b, spec("ok"), func(_ context.Context, m *bus.Message) error {
		if _, dup := seen.LoadOrStore(m.ID(), true); !dup {
			n.Add(1)
		}
		return nil
	}, bus.RunOptions{Concurrency: 4}, func() bool { return n.Load() == 200 })
	info := consumerInfo(t, b, "ok")
	if info.NumAckPending != 0 || info.NumPending != 0 || info.NumRedelivered != 0 || info.AckFloor.Stream != 200 {
		t.Errorf("consumer: ack pending %d, pending %d, redelivered %d, ack floor %d; want 0, 0, 0, 200",
			info.NumAckPending, info.NumPending, info.NumRedelivered, info.AckFloor.Stream)
	}
}

func TestRunDeadLettersPermanentErrors(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 10)
	var calls atomic.Int64
	var settled atomic.Int64
	runUntil(t, b, spec("perm"), func(_ context.Context, m *bus.Message) error {
		calls.Add(1)
		if string(m.Data) == "3" {
			return fmt.Errorf("write indicator: %w", &httpx.StatusError{Op: "threatq: consume", StatusCode: 400, Detail: "value: invalid"})
		}
		if string(m.Data) == "5" {
			return bus.Permanent(errors.New("schema: missing id"))
		}
		return nil
	}, bus.RunOptions{OnSettle: func(bus.Settlement) { settled.Add(1) }},
		func() bool { return settled.Load() == 10 })
	if calls.Load() != 10 {
		t.Errorf("handler called %d times, want 10: permanent errors must not be retried", calls.Load())
	}
	dls := deadLetters(t, b, "perm")
	if len(dls) != 2 {
		t.Fatalf("dead letters = %d, want 2", len(dls))
	}
	for _, dl := range dls {
		if dl.Reason != bus.ReasonPermanent || dl.Subject != subject || dl.Deliveries != 1 || dl.Schema != "deadletter.v1" {
			t.Errorf("dead letter %+v", dl)
		}
	}
	if string(dls[0].Data) != "3" || dls[0].MsgID != "m3" || dls[0].Error == "" {
		t.Errorf("first dead letter keeps data %q, id %q, error %q", dls[0].Data, dls[0].MsgID, dls[0].Error)
	}
	if info := consumerInfo(t, b, "perm"); info.NumAckPending != 0 {
		t.Errorf("ack pending = %d, want 0: terminated messages are settled", info.NumAckPending)
	}
}

func TestRunRetriesTransientErrorsThenDeadLetters(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 2)
	var attempts sync.Map
	var done atomic.Int64
	runUntil(t, b, spec("transient"), func(_ context.Context, m *bus.Message) error {
		v, _ := attempts.LoadOrStore(string(m.Data), new(atomic.Int64))
		n := v.(*atomic.Int64).Add(1)
		if n != int64(m.Delivered) {
			t.Errorf("message %s: attempt %d but Delivered %d", m.Data, n, m.Delivered)
		}
		switch {
		case string(m.Data) == "0" && n < 2: // Succeeds on its second delivery.
			return &httpx.StatusError{Op: "op", StatusCode: 503}
		case string(m.Data) == "1": // Never succeeds.
			return errors.New("connection reset")
		}
		return nil
	}, bus.RunOptions{Backoff: fastRetry, OnSettle: func(st bus.Settlement) {
		if st.Outcome != bus.Retried {
			done.Add(1)
		}
	}}, func() bool { return done.Load() == 2 })
	for msg, want := range map[string]int64{"0": 2, "1": 3} {
		v, _ := attempts.Load(msg)
		if got := v.(*atomic.Int64).Load(); got != want {
			t.Errorf("message %s handled %d times, want %d", msg, got, want)
		}
	}
	dls := deadLetters(t, b, "transient")
	if len(dls) != 1 || dls[0].Reason != bus.ReasonMaxDeliver || dls[0].Deliveries != 3 || string(dls[0].Data) != "1" {
		t.Errorf("dead letters = %+v, want message 1 after 3 deliveries (max_deliver)", dls)
	}
}

// TestRunSettlesWithTheReason: OnSettle is told why a message was
// dead-lettered, as its dead letter records it (a permanent error, or
// retries run out), so that no observer has to work it out again; other
// outcomes have no reason.
func TestRunSettlesWithTheReason(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 3)
	var mu sync.Mutex
	got := map[string][]string{} // By message data: outcome:reason, in order.
	var final atomic.Int64
	runUntil(t, b, spec("reasons"), func(_ context.Context, m *bus.Message) error {
		switch string(m.Data) {
		case "0":
			return bus.Permanent(errors.New("schema: missing id"))
		case "1":
			return errors.New("connection reset") // On every delivery, until MaxDeliver runs out.
		}
		return nil
	}, bus.RunOptions{Backoff: fastRetry, OnSettle: func(st bus.Settlement) {
		if st.Spec.Name != "reasons" || st.Message == nil || (st.Outcome == bus.Acked) != (st.Err == nil) {
			t.Errorf("settlement %+v: want the consumer, the message, and an error unless acked", st)
			return
		}
		mu.Lock()
		got[string(st.Message.Data)] = append(got[string(st.Message.Data)], st.Outcome.String()+":"+st.Reason)
		mu.Unlock()
		if st.Outcome != bus.Retried {
			final.Add(1)
		}
	}}, func() bool { return final.Load() == 3 })
	want := map[string][]string{
		"0": {"dead_lettered:" + bus.ReasonPermanent},
		"1": {"retried:", "retried:", "dead_lettered:" + bus.ReasonMaxDeliver},
		"2": {"acked:"},
	}
	mu.Lock()
	defer mu.Unlock()
	for data, w := range want {
		if !slices.Equal(got[data], w) {
			t.Errorf("message %s settled as %q, want %q", data, got[data], w)
		}
	}
	for _, dl := range deadLetters(t, b, "reasons") {
		if s := got[string(dl.Data)]; len(s) == 0 || s[len(s)-1] != "dead_lettered:"+dl.Reason {
			t.Errorf("dead letter of message %s has reason %q, but it settled as %q", dl.Data, dl.Reason, s)
		}
	}
}

func TestRunHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 1)
	var first, second time.Time
	var delivered uint64
	var n atomic.Int64
	runUntil(t, b, spec("retryafter"), func(_ context.Context, m *bus.Message) error {
		if n.Add(1) == 1 {
			first = time.Now()
			return &httpx.StatusError{Op: "ctr: observe", StatusCode: 429, Retry: time.Second}
		}
		second, delivered = time.Now(), m.Delivered
		return nil
	}, bus.RunOptions{Backoff: fastRetry}, func() bool { return n.Load() == 2 })
	if gap := second.Sub(first); gap < time.Second {
		t.Errorf("tried again after %v, want at least the 1s Retry-After", gap)
	}
	// Tried again in process: a rate limit spends none of the message's
	// MaxDeliver budget.
	if delivered != 1 {
		t.Errorf("second try on delivery %d, want 1 (not handed back to the server)", delivered)
	}
}

// TestRunCapsInProcessRateLimits: a server that answers 429 for ever is
// retried in process MaxRateLimited times per delivery, then by
// redelivery, and the message ends as a dead letter instead of looping
// in process for ever (issue 13).
func TestRunCapsInProcessRateLimits(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 1)
	var calls atomic.Int64
	var dead atomic.Int64
	runUntil(t, b, spec("always429"), func(context.Context, *bus.Message) error {
		calls.Add(1)
		return &httpx.StatusError{Op: "ctr: observe", StatusCode: 429, Retry: time.Millisecond}
	}, bus.RunOptions{Backoff: fastRetry, MaxRetryDelay: 5 * time.Millisecond, MaxRateLimited: 3,
		OnSettle: func(st bus.Settlement) {
			if st.Outcome == bus.DeadLettered {
				dead.Add(1)
			}
		}}, func() bool { return dead.Load() == 1 })
	// Three deliveries (MaxDeliver), each tried once and again three times.
	if calls.Load() != 12 {
		t.Errorf("handler called %d times, want 12", calls.Load())
	}
	if dls := deadLetters(t, b, "always429"); len(dls) != 1 || dls[0].Reason != bus.ReasonMaxDeliver {
		t.Errorf("dead letters = %+v, want one max_deliver", dls)
	}
}

func TestRunKeepsLongWorkAlive(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 1)
	s := spec("long")
	s.AckWait = 600 * time.Millisecond
	var calls, done atomic.Int64
	runUntil(t, b, s, func(context.Context, *bus.Message) error {
		calls.Add(1)
		time.Sleep(3 * s.AckWait) // The subject: work that outlasts AckWait three times.
		done.Add(1)
		return nil
	}, bus.RunOptions{Concurrency: 2}, func() bool { return done.Load() == 1 })
	// The subject: one more AckWait in which a redelivery would show.
	time.Sleep(s.AckWait)
	if calls.Load() != 1 {
		t.Errorf("handler called %d times, want 1: InProgress must stop redelivery of long work", calls.Load())
	}
}

func TestRunDrainsOnShutdown(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 1)
	started := make(chan struct{})
	var finished atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- b.Run(ctx, spec("drain"), func(hctx context.Context, _ *bus.Message) error {
			close(started)
			select {
			case <-time.After(500 * time.Millisecond):
			case <-hctx.Done():
				return hctx.Err()
			}
			finished.Store(true)
			return nil
		}, bus.RunOptions{})
	}()
	<-started
	cancel() // Shut down while the handler is in flight.
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Run returned before the in-flight handler finished")
	}
	// The ack is not waited for (no DoubleAck): the server may count it a
	// moment after Run returns.
	var info *jetstream.ConsumerInfo
	if !testkit.Wait(func() bool {
		info = consumerInfo(t, b, "drain")
		return info.AckFloor.Stream == 1 && info.NumAckPending == 0
	}, 2*time.Second) {
		t.Fatalf("ack floor %d, ack pending %d: the drained message must be acked", info.AckFloor.Stream, info.NumAckPending)
	}
}

func TestRunDrainTimeoutHandsWorkBack(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 1)
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- b.Run(ctx, spec("stuck"), func(hctx context.Context, _ *bus.Message) error {
			close(started)
			<-hctx.Done() // Never finishes on its own.
			return hctx.Err()
		}, bus.RunOptions{DrainTimeout: 200 * time.Millisecond})
	}()
	<-started
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the drain timeout")
	}
	if len(deadLetters(t, b, "stuck")) != 0 {
		t.Error("an abandoned message must go back for redelivery, not to the dead letters")
	}
	if info := consumerInfo(t, b, "stuck"); info.AckFloor.Stream != 0 {
		t.Errorf("ack floor %d: the abandoned message must not be acked", info.AckFloor.Stream)
	}
}

func TestRunDeadLettersPanics(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 1)
	var settled atomic.Int64
	runUntil(t, b, spec("panic"), func(context.Context, *bus.Message) error {
		var m map[string]int
		m["boom"]++ // A handler bug on bad input.
		return nil
	}, bus.RunOptions{OnSettle: func(bus.Settlement) { settled.Add(1) }},
		func() bool { return settled.Load() == 1 })
	if dls := deadLetters(t, b, "panic"); len(dls) != 1 || dls[0].Reason != bus.ReasonPermanent {
		t.Errorf("dead letters = %+v, want one permanent", dls)
	}
}

func TestRunBatchSettlesEachMessage(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 50)
	var sizes []int
	var mu sync.Mutex
	var settled atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- b.RunBatch(ctx, spec("batch"), func(_ context.Context, ms []*bus.Message) []error {
			mu.Lock()
			sizes = append(sizes, len(ms))
			mu.Unlock()
			errs := make([]error, len(ms))
			for i, m := range ms {
				if string(m.Data) == "7" {
					errs[i] = bus.Permanent(errors.New("bad item"))
				}
			}
			return errs
		}, bus.RunOptions{BatchSize: 20, BatchWait: 200 * time.Millisecond,
			OnSettle: func(bus.Settlement) { settled.Add(1) }})
	}()
	if !testkit.Wait(func() bool { return settled.Load() >= 50 }, 20*time.Second) {
		cancel()
		t.Fatalf("settled %d of 50 messages in 20s", settled.Load())
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, s := range sizes {
		if s > 20 {
			t.Errorf("batch of %d exceeds BatchSize 20", s)
		}
		total += s
	}
	if total != 50 || len(sizes) > 10 {
		t.Errorf("batches %v: want 50 messages in a few batches", sizes)
	}
	if dls := deadLetters(t, b, "batch"); len(dls) != 1 || string(dls[0].Data) != "7" {
		t.Errorf("dead letters = %+v, want only message 7", dls)
	}
}

func TestStartEmbeddedNeedsStoreDir(t *testing.T) {
	t.Parallel()
	if _, err := bus.StartEmbedded(bus.EmbeddedConfig{}, nil); err == nil {
		t.Fatal("an embedded server without a store directory must be refused")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := bus.Config{Replicas: 2, MaxAge: time.Minute, Duplicates: time.Hour}.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"NATS_REPLICAS", "NATS_DUPLICATE_WINDOW"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// NATS_CTR_CACHE_TTL sets the CTR cache bucket's TTL, and changing it
// updates a bucket made with the old one.
func TestCTRCacheTTL(t *testing.T) {
	t.Parallel()
	b := bustest.New(t) // The default: 24h.
	ctx := context.Background()
	ttl := func() time.Duration {
		t.Helper()
		kv, err := b.KeyValue(ctx, bus.BucketCTRCache)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.TTL()
	}
	if got := ttl(); got != bus.DefaultCTRCacheTTL {
		t.Errorf("default TTL %s, want %s", got, bus.DefaultCTRCacheTTL)
	}
	c := bus.Config{Replicas: 1, MaxAge: time.Hour, Duplicates: 2 * time.Minute, MaxBytes: -1, CTRCacheTTL: 6 * time.Hour}
	if err := bus.NewTopology(c).Ensure(ctx, b.JetStream()); err != nil {
		t.Fatal(err)
	}
	if got := ttl(); got != 6*time.Hour {
		t.Errorf("TTL after NATS_CTR_CACHE_TTL=6h: %s", got)
	}
	c.CTRCacheTTL = time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "NATS_CTR_CACHE_TTL") {
		t.Errorf("a 1s TTL: %v, want an error naming NATS_CTR_CACHE_TTL", err)
	}
}

// TestRunRecoversHelperPanics: a panic in a goroutine a handler started
// through bus.Group reaches the runner's recover: the message is
// dead-lettered and the process lives on (issue 13).
func TestRunRecoversHelperPanics(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 1)
	var dead atomic.Int64
	runUntil(t, b, spec("helperpanic"), func(context.Context, *bus.Message) error {
		var g bus.Group
		for i := range 4 {
			g.Go(func() {
				if i == 2 {
					panic("helper blew up")
				}
			})
		}
		g.Wait()
		return nil
	}, bus.RunOptions{OnSettle: func(st bus.Settlement) {
		if st.Outcome == bus.DeadLettered {
			dead.Add(1)
		}
	}}, func() bool { return dead.Load() == 1 })
	dls := deadLetters(t, b, "helperpanic")
	if len(dls) != 1 || dls[0].Reason != bus.ReasonPermanent || !strings.Contains(dls[0].Error, "helper blew up") {
		t.Errorf("dead letters = %+v, want one permanent naming the panic", dls)
	}
}
