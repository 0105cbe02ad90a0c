package blocklists_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/et"
	"github.com/tqflow/tqflow/pkg/sim/etsim"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/fetcher/internal/blocklists"
)

const instance = "default"

type fixture struct {
	sim  *etsim.Server
	bus  *bus.Bus
	job  *blocklists.Job
	logs *bytes.Buffer
}

func newFixture(t *testing.T, lists ...string) fixture {
	t.Helper()
	s := etsim.New(etsim.Options{})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c, err := et.New(et.Config{Sources: []string{et.SourceNone}, BlockLists: lists, BlockURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	b := bustest.New(t)
	ctx := context.Background()
	kv, err := b.KeyValue(ctx, bus.BucketETState)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := b.ObjectStore(ctx, bus.ObjectRulesets)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	j := &blocklists.Job{
		Client: c, Bus: b, State: kv, Objects: objs, Instance: instance,
		Status: "Active", ExpiredStatus: "Expired", Source: "Emerging Threats",
		Log: slog.New(slog.NewTextHandler(logs, nil)),
	}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	return fixture{sim: s, bus: b, job: j, logs: logs}
}

// write is an indicator write as read back from the stream.
type write struct{ value, typ, status, source string }

// writes returns the indicator writes stored on tq.writes.indicator.
func writes(t *testing.T, b *bus.Bus) []write {
	t.Helper()
	var out []write
	for _, m := range bustest.Stored(t, b, bus.StreamWrites, bus.SubjectWriteIndicator) {
		var w schemas.Write
		if err := schemas.Decode(m.Data(), &w); err != nil {
			t.Fatal(err)
		}
		iw := w.Indicator
		if iw.ID != 0 || len(iw.Attributes) != 0 {
			t.Errorf("write %+v: want id 0 and no attributes", iw)
		}
		out = append(out, write{iw.Value, iw.Type, iw.Status, iw.Source})
	}
	return out
}

func sorted(ws []write) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = fmt.Sprintf("%s %s %s %s", w.value, w.typ, w.status, w.source)
	}
	slices.Sort(out)
	return out
}

// TestThreeVersions puts three versions of an IP list (addresses added
// and removed, comments, blank lines and a bad line) and checks that each
// run writes only what joined the list, at the configured status, and what
// left it, at the expiry status; that an unchanged list costs one
// conditional GET and writes nothing; and that the bad line is reported
// with its file and line.
func TestThreeVersions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, et.ListBlockIPs)
	ctx := context.Background()
	versions := []string{
		"# Emerging Threats block list, v1\n1.1.1.1\n2.2.2.0/24\n3.3.3.3\n",
		"# v2\n1.1.1.1\n2.2.2.0/24\n\n4.4.4.4\nnot-an-address\n",
		"# v3\n1.1.1.1\n4.4.4.4 # kept\n5.5.5.0/28\n2001:db8::/32\n",
	}
	want := [][]string{
		{"1.1.1.1 IP Address Active Emerging Threats", "2.2.2.0/24 CIDR Block Active Emerging Threats", "3.3.3.3 IP Address Active Emerging Threats"},
		{"3.3.3.3 IP Address Expired Emerging Threats", "4.4.4.4 IP Address Active Emerging Threats"},
		{"2.2.2.0/24 CIDR Block Expired Emerging Threats", "2001:db8::/32 CIDR Block Active Emerging Threats", "5.5.5.0/28 CIDR Block Active Emerging Threats"},
	}
	seen := 0
	for i, v := range versions {
		if err := f.sim.PutList(et.ListBlockIPs, []byte(v)); err != nil {
			t.Fatal(err)
		}
		reps, err := f.job.RunOnce(ctx)
		if err != nil || len(reps) != 1 {
			t.Fatalf("v%d: %+v, %v", i+1, reps, err)
		}
		all := writes(t, f.bus)
		if got := sorted(all[seen:]); !slices.Equal(got, want[i]) {
			t.Errorf("v%d wrote %q, want %q", i+1, got, want[i])
		}
		seen = len(all)
		if i == 1 {
			r := reps[0]
			if r.BadLines != 1 || len(r.Bad) != 1 || r.Bad[0].Line != 6 || r.Bad[0].File != et.ListBlockIPs || !errors.Is(r.Bad[0], et.ErrBadLine) {
				t.Errorf("v2 bad lines %d %+v, want line 6 of %s", r.BadLines, r.Bad, et.ListBlockIPs)
			}
			if !strings.Contains(f.logs.String(), "line=6") || !strings.Contains(f.logs.String(), "file="+et.ListBlockIPs) {
				t.Errorf("the bad line is not logged with its file and line:\n%s", f.logs)
			}
		}

		// The same list again: a conditional GET answered 304, nothing
		// downloaded or written.
		gets := f.sim.Stats.Count(etsim.RouteFWRules)
		reps, err = f.job.RunOnce(ctx)
		if err != nil || reps[0].Changed || reps[0].Method != et.MethodConditional {
			t.Fatalf("v%d again: %+v, %v", i+1, reps, err)
		}
		if n := f.sim.Stats.Count(etsim.RouteFWRules); n != gets+1 {
			t.Errorf("v%d again: %d requests, want 1", i+1, n-gets)
		}
		if n := len(writes(t, f.bus)); n != seen {
			t.Errorf("v%d again wrote %d", i+1, n-seen)
		}
	}
}

// TestAddressOnAnotherList checks that an address leaving one list but
// still on another is not expired.
func TestAddressOnAnotherList(t *testing.T) {
	t.Parallel()
	f := newFixture(t, et.ListBlockIPs, et.ListCompromisedIP)
	ctx := context.Background()
	_ = f.sim.PutList(et.ListBlockIPs, []byte("1.1.1.1\n2.2.2.2\n"))
	_ = f.sim.PutList(et.ListCompromisedIP, []byte("2.2.2.2\n"))
	if _, err := f.job.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	n := len(writes(t, f.bus))
	_ = f.sim.PutList(et.ListBlockIPs, []byte("1.1.1.1\n"))
	reps, err := f.job.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := writes(t, f.bus)[n:]; len(got) != 0 {
		t.Errorf("wrote %+v for an address still on %s", got, et.ListCompromisedIP)
	}
	for _, r := range reps {
		if r.Removed != 0 {
			t.Errorf("%s: %d removed", r.List, r.Removed)
		}
	}
}

// TestMissingList checks that a list ET does not serve is an error naming
// it, and the other lists are still written.
func TestMissingList(t *testing.T) {
	t.Parallel()
	f := newFixture(t, et.ListBlockIPs, et.ListCompromisedIP)
	_ = f.sim.PutList(et.ListCompromisedIP, []byte("9.9.9.9\n"))
	reps, err := f.job.RunOnce(context.Background())
	if !errors.Is(err, et.ErrNotFound) || !strings.Contains(err.Error(), et.ListBlockIPs) {
		t.Fatalf("err = %v, want ErrNotFound naming %s", err, et.ListBlockIPs)
	}
	if len(reps) != 2 || len(writes(t, f.bus)) != 1 {
		t.Errorf("reports %+v", reps)
	}
}

// TestListTooLarge checks that a list over the size cap is refused, not
// read into memory, and nothing is written.
func TestListTooLarge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, et.ListBlockIPs)
	f.job.MaxSize = 64
	_ = f.sim.PutList(et.ListBlockIPs, []byte(strings.Repeat("192.0.2.1\n", 10)))
	_, err := f.job.RunOnce(context.Background())
	if !errors.Is(err, blocklists.ErrListTooLarge) {
		t.Fatalf("err = %v, want ErrListTooLarge", err)
	}
	if n := len(writes(t, f.bus)); n != 0 {
		t.Errorf("%d writes", n)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		job  blocklists.Job
		want string
	}{
		{"ok", blocklists.Job{Status: "Active", ExpiredStatus: "Expired", Source: "ET"}, ""},
		{"no status", blocklists.Job{ExpiredStatus: "Expired", Source: "ET"}, "ET_BLOCK_LIST_STATUS"},
		{"same statuses", blocklists.Job{Status: "Active", ExpiredStatus: "Active", Source: "ET"}, "ET_BLOCK_LIST_EXPIRED_STATUS"},
		{"no source", blocklists.Job{Status: "Active", ExpiredStatus: "Expired"}, "ET_BLOCK_LIST_SOURCE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.job.Validate()
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
