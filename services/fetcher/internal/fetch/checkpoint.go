package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Checkpoint is a job instance's progress.
type Checkpoint struct {
	// Through is the upper bound of the last complete run: every indicator
	// updated before it has been published.
	Through time.Time `json:"through"`
	// RunID names the run that wrote it.
	RunID string `json:"run_id"`
	// Published is how many indicators that run published.
	Published int `json:"published"`
	// At is when the run finished.
	At time.Time `json:"at"`
}

// Checkpoints reads and writes checkpoints in a KV bucket, by compare and
// set: two fetchers can never both move the same checkpoint.
type Checkpoints struct {
	KV jetstream.KeyValue
}

// Load returns the checkpoint under key and its revision; a zero
// checkpoint and revision 0 when there is none.
func (c Checkpoints) Load(ctx context.Context, key string) (Checkpoint, uint64, error) {
	e, err := c.KV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Checkpoint{}, 0, nil
	}
	if err != nil {
		return Checkpoint{}, 0, fmt.Errorf("load checkpoint %s: %w", key, err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return Checkpoint{}, 0, fmt.Errorf("load checkpoint %s: decode: %w", key, err)
	}
	return cp, e.Revision(), nil
}

// Save stores cp under key if the stored revision is still rev (0: no
// checkpoint yet).
func (c Checkpoints) Save(ctx context.Context, key string, cp Checkpoint, rev uint64) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", key, err)
	}
	if rev == 0 {
		_, err = c.KV.Create(ctx, key, data)
	} else {
		_, err = c.KV.Update(ctx, key, data, rev)
	}
	if err != nil {
		return fmt.Errorf("save checkpoint %s (another fetcher moved it?): %w", key, err)
	}
	return nil
}
