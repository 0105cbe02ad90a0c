// Package etfetch is the download step the fetcher's two Emerging
// Threats jobs share: the rulesets (package rulesets) and the IP lists
// (package blocklists). For one ET source it tells, with the one small
// request pkg/et chooses (the published .md5, version.txt or a conditional
// GET), whether the source changed since the job last applied it; when it
// did, it downloads it and says whether the bytes are new or those the job
// applied last time. It also holds the state and Object Store steps both
// jobs take around it: the per-source state, read and moved by
// compare-and-set in the ET state bucket, and an artefact put under its
// name unless it is there already.
//
// What the jobs do with new bytes (publish rules files, diff IP lists)
// stays in their own packages.
package etfetch

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/et"
)

// Client is what the step needs of an ET client; *et.Client implements
// it.
type Client interface {
	// Check tells whether src changed since prev.
	Check(ctx context.Context, src et.Source, prev et.State) (et.Update, error)
	// Download streams src into w and verifies it.
	Download(ctx context.Context, src et.Source, w io.Writer) (et.Artefact, error)
}

var _ Client = (*et.Client)(nil)

// Last is what a job recorded of the artefact it last applied from a
// source; the zero Last is a source never applied.
type Last struct {
	// ET is pkg/et's state after that download: its md5 and the server's
	// validators.
	ET et.State
	// MD5 is the md5 of the artefact applied.
	MD5 string
	// Object is its Object Store name; "" when none was stored.
	Object string
}

// Result is what [Fetch] did for one source.
type Result struct {
	// Method is how the change was detected.
	Method et.Method
	// Changed is true when the source was downloaded.
	Changed bool
	// Same is true when the bytes downloaded are those last applied (ET
	// published no .md5 to tell beforehand): the job keeps the new
	// validators of Artefact.State and applies nothing.
	Same bool
	// Artefact describes the download; zero when Changed is false.
	Artefact et.Artefact
}

// Fetch checks whether src changed since last and, when it did or force
// is set (the job must apply the source again, changed or not), calls
// open for the writer to download into and downloads src into it. open is
// not called when src is unchanged, so that a job makes no temporary file
// or buffer it does not need; its error is returned as it is. A
// forced download is never Same.
func Fetch(ctx context.Context, c Client, src et.Source, last Last, force bool, open func() (io.Writer, error)) (Result, error) {
	up, err := c.Check(ctx, src, last.ET)
	if err != nil {
		return Result{}, err
	}
	res := Result{Method: up.Method}
	if !up.Changed && !force {
		return res, nil
	}
	res.Changed = true
	w, err := open()
	if err != nil {
		return res, err
	}
	art, err := c.Download(ctx, src, w)
	if err != nil {
		return res, err
	}
	res.Artefact = art
	res.Same = !force && last.Object != "" && art.MD5 == last.MD5
	return res, nil
}

// LoadState reads a job's state S under key in kv, the ET state bucket,
// and its revision; the zero S and revision 0 when there is none yet.
func LoadState[S any](ctx context.Context, kv jetstream.KeyValue, key string) (S, uint64, error) {
	st, rev, err := bus.LoadJSON[S](ctx, kv, key)
	if err != nil {
		return st, 0, fmt.Errorf("load et state %s: %w", key, err)
	}
	return st, rev, nil
}

// SaveState stores st under key in kv if the stored revision is still rev
// (0: none yet), so that two fetchers never both move it.
func SaveState[S any](ctx context.Context, kv jetstream.KeyValue, key string, st S, rev uint64) error {
	if err := bus.SaveJSON(ctx, kv, key, st, rev); err != nil {
		return fmt.Errorf("save et state %s (another fetcher moved it?): %w", key, err)
	}
	return nil
}

// PutObject stores r, read from its start, under name in objs with
// description, unless an object of that name is there already; it reports
// whether it stored it.
func PutObject(ctx context.Context, objs jetstream.ObjectStore, name, description string, r io.ReadSeeker) (bool, error) {
	info, err := objs.GetInfo(ctx, name)
	switch {
	case err == nil && !info.Deleted:
		return false, nil
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return false, fmt.Errorf("look up object %s: %w", name, err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return false, fmt.Errorf("rewind %s: %w", name, err)
	}
	if _, err := objs.Put(ctx, jetstream.ObjectMeta{Name: name, Description: description}, r); err != nil {
		return false, fmt.Errorf("put object %s: %w", name, err)
	}
	return true, nil
}
