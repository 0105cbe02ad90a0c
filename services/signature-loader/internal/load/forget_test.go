package load_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/services/signature-loader/internal/load"
)

// TestForget: the writer's dead letter of a signature write takes that
// sid out of the state, so that the next run writes it again instead of
// skipping it as unchanged (issue 13); a later rev, another instance's
// write or an indicator write leave the state alone.
func TestForget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := bustest.New(t)
	kv, err := b.KeyValue(ctx, bus.BucketETState)
	if err != nil {
		t.Fatal(err)
	}
	shard := load.ShardKey("default", 2000001)
	state := `{"2000001":{"r":3,"s":"Active"},"2000002":{"r":5,"s":"Active"},"1:2000003":{"r":1,"s":"Review"}}`
	if _, err := kv.Create(ctx, shard, []byte(state)); err != nil {
		t.Fatal(err)
	}
	st := &load.Stats{}
	l := &load.Loader{Bus: b, State: kv, Instance: "default", Stats: st}
	dead := func(subject, id string) *bus.Message {
		data, _ := json.Marshal(bus.DeadLetter{Schema: "deadletter.v1", Stream: bus.StreamWrites, Consumer: "writer", Subject: subject, MsgID: id, Data: []byte("{}")})
		return &bus.Message{Subject: load.WriterDeadLetters, Data: data}
	}
	for _, tc := range []struct {
		name string
		m    *bus.Message
	}{
		{"the rev in the state", dead(bus.SubjectWriteSignature, load.WriteID("default", "2000001", 3, "md5a", []byte("x")))},
		{"an older rev", dead(bus.SubjectWriteSignature, load.WriteID("default", "2000002", 4, "md5a", []byte("x")))},
		{"gid:sid", dead(bus.SubjectWriteSignature, load.WriteID("default", "1:2000003", 1, "md5a", []byte("x")))},
		{"another instance", dead(bus.SubjectWriteSignature, load.WriteID("other", "2000002", 5, "md5a", []byte("x")))},
		{"an indicator write", dead(bus.SubjectWriteIndicator, "default:ind:2000002:5")},
		{"a sid not in the state", dead(bus.SubjectWriteSignature, load.WriteID("default", "2000999", 1, "md5a", []byte("x")))},
	} {
		if err := l.Forget(ctx, tc.m); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	e, err := kv.Get(ctx, shard)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(e.Value(), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["2000001"]; ok {
		t.Error("sid 2000001, dead-lettered at the rev the state holds, is still in the state")
	}
	if _, ok := got["1:2000003"]; ok {
		t.Error("sid 1:2000003, dead-lettered at the rev the state holds, is still in the state")
	}
	if _, ok := got["2000002"]; !ok {
		t.Error("sid 2000002 (rev 5 in the state, an older rev and another instance dead-lettered) was forgotten")
	}
	if n := st.Forgotten.Load(); n != 2 {
		t.Errorf("Forgotten = %d, want 2", n)
	}
	if err := l.Forget(ctx, &bus.Message{Data: []byte("not json")}); !bus.IsPermanent(err) {
		t.Errorf("undecodable dead letter: %v, want a permanent error", err)
	}
}
