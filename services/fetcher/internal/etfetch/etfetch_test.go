package etfetch_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/tqflow/tqflow/pkg/et"
	"github.com/tqflow/tqflow/pkg/sim/etsim"
	"github.com/tqflow/tqflow/services/fetcher/internal/etfetch"
)

// newClient returns an ET simulator and a client of its IP list
// fwrules/emerging-Block-IPs.txt.
func newClient(t *testing.T) (*etsim.Server, *et.Client) {
	t.Helper()
	s := etsim.New(etsim.Options{})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c, err := et.New(et.Config{Sources: []string{et.SourceNone}, BlockLists: []string{et.ListBlockIPs}, BlockURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// TestFetch runs Fetch against the ET simulator through the list a job
// last applied, and checks when it downloads, when the bytes count as the
// same, and that it opens a writer only to download.
func TestFetch(t *testing.T) {
	t.Parallel()
	s, c := newClient(t)
	src := c.Lists()[0]
	ctx := context.Background()
	list := []byte("192.0.2.1\n")
	if err := s.PutList(et.ListBlockIPs, list); err != nil {
		t.Fatal(err)
	}
	fetch := func(t *testing.T, last etfetch.Last, force bool) (etfetch.Result, []byte, bool) {
		t.Helper()
		var body bytes.Buffer
		opened := false
		res, err := etfetch.Fetch(ctx, c, src, last, force, func() (io.Writer, error) {
			opened = true
			return &body, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return res, body.Bytes(), opened
	}

	first, body, opened := fetch(t, etfetch.Last{}, false)
	if !first.Changed || first.Same || !opened || !bytes.Equal(body, list) || first.Artefact.MD5 != etsim.MD5Hex(list) {
		t.Fatalf("first fetch: %+v, body %q, opened %v", first, body, opened)
	}
	applied := etfetch.Last{ET: first.Artefact.State, MD5: first.Artefact.MD5, Object: "applied"}

	tests := []struct {
		name                  string
		last                  etfetch.Last
		force                 bool
		wantChanged, wantSame bool
	}{
		// The server answers the conditional GET with 304.
		{name: "unchanged", last: applied},
		// No validators (a state from before they were kept): the bytes
		// are downloaded and found to be those applied.
		{name: "same bytes", last: etfetch.Last{MD5: applied.MD5, Object: applied.Object}, wantChanged: true, wantSame: true},
		// The same bytes, but the job never stored them: not Same.
		{name: "same bytes, no object", last: etfetch.Last{MD5: applied.MD5}, wantChanged: true},
		// Forced: downloaded although unchanged, and never Same.
		{name: "forced", last: applied, force: true, wantChanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, body, opened := fetch(t, tt.last, tt.force)
			if res.Changed != tt.wantChanged || res.Same != tt.wantSame || opened != tt.wantChanged {
				t.Errorf("%+v, opened %v: want changed %v, same %v", res, opened, tt.wantChanged, tt.wantSame)
			}
			if tt.wantChanged && !bytes.Equal(body, list) {
				t.Errorf("downloaded %q, want %q", body, list)
			}
		})
	}
}

// TestFetchOpenError checks that an error opening the writer is returned
// as it is, after the check said the source changed.
func TestFetchOpenError(t *testing.T) {
	t.Parallel()
	s, c := newClient(t)
	if err := s.PutList(et.ListBlockIPs, []byte("192.0.2.1\n")); err != nil {
		t.Fatal(err)
	}
	errDisk := errors.New("disk full")
	res, err := etfetch.Fetch(context.Background(), c, c.Lists()[0], etfetch.Last{}, false, func() (io.Writer, error) { return nil, errDisk })
	if !errors.Is(err, errDisk) || !res.Changed {
		t.Errorf("%+v, %v: want changed and %v", res, err, errDisk)
	}
}
