// Package service wires the enricher: its configuration, its CTR client,
// the result cache and its consumer. main.go and tqflow run both start it
// through [Run].
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/enricher/internal/enrich"
)

// DefaultSource is the ThreatQ source enrichment is written under, as the
// seed connector did.
const DefaultSource = "Cisco Threat Response Enrichment"

// Config is the enricher's configuration, from the environment.
type Config struct {
	// Instance names the job instance (the seed's -n).
	Instance string     `env:"INSTANCE" envDefault:"default"`
	CTR      ctr.Config `envPrefix:"CTR_"`
	// Status is set on every indicator CTR has context for (the seed
	// connector's "Status"); empty leaves statuses alone.
	Status string `env:"CTR_STATUS" envDefault:"Review"`
	// Source is the ThreatQ source of the attributes.
	Source string `env:"CTR_SOURCE" envDefault:"Cisco Threat Response Enrichment"`
	// Cache turns the shared CTR result cache on.
	Cache bool `env:"ENRICHER_CACHE" envDefault:"true"`
	// AckWait is how long a delivery may go unacknowledged (a crashed
	// worker's messages come back after it); the runner keeps live work
	// from expiring with InProgress.
	AckWait time.Duration `env:"ENRICHER_ACK_WAIT" envDefault:"2m"`
	// WorkerConfig holds ENRICHER_CONCURRENCY (batches this process
	// enriches at once), ENRICHER_BATCH_SIZE (indicators taken together;
	// CTR is called in chunks of CTR_BATCH_SIZE of them),
	// ENRICHER_MAX_ACK_PENDING (indicators in flight across every
	// replica: the global concurrency cap on CTR), ENRICHER_MAX_DELIVER
	// and ENRICHER_DRAIN_TIMEOUT; [NewConfig] has their defaults.
	bus.WorkerConfig `envPrefix:"ENRICHER_"`
}

// NewConfig returns the configuration to parse the environment over: the
// defaults of the consumer settings, which env tags cannot give.
func NewConfig() Config {
	return Config{WorkerConfig: bus.WorkerConfig{
		Concurrency: 8, BatchSize: 100, MaxAckPending: 1000, MaxDeliver: 10, DrainTimeout: 20 * time.Second,
	}}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if err := c.CTR.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !bus.ValidToken(c.Instance) {
		errs = append(errs, fmt.Errorf("INSTANCE %q: want 1 to 64 letters, digits, - or _", c.Instance))
	}
	if c.Source == "" {
		errs = append(errs, errors.New("CTR_SOURCE must not be empty"))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("ENRICHER_ACK_WAIT %s: want at least 1s", c.AckWait))
	}
	if err := c.WorkerConfig.Validate("ENRICHER_", 1000); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Spec returns the enricher's consumer for its instance.
func (c Config) Spec() bus.ConsumerSpec {
	return c.WorkerConfig.Spec(bus.ConsumerSpec{
		Stream:   bus.StreamIndicators,
		Name:     bus.ConsumerName("enricher", schemas.JobCTR, c.Instance),
		Subjects: []string{bus.IndicatorSubject(schemas.JobCTR, c.Instance)},
		AckWait:  c.AckWait,
	})
}

// Stats counts what the enricher did.
type Stats = enrich.Stats

// Run enriches until ctx ends, then drains.
func Run(ctx context.Context, c Config, b *bus.Bus, log *slog.Logger, stats *Stats, onSettle func(bus.ConsumerSpec, *bus.Message, bus.Outcome, error)) error {
	client, err := ctr.New(c.CTR)
	if err != nil {
		return fmt.Errorf("enricher: %w", err)
	}
	e := &enrich.Enricher{
		Bus:      b,
		CTR:      &ctrAdapter{c: client, log: log},
		Chunk:    client.BatchSize(),
		TypeFor:  ctr.TypeFor,
		Instance: c.Instance,
		Status:   c.Status,
		Source:   c.Source,
		Stats:    stats,
	}
	if c.Cache {
		kv, err := b.KeyValue(ctx, bus.BucketCTRCache)
		if err != nil {
			return fmt.Errorf("enricher: %w", err)
		}
		e.Cache = &enrich.Cache{KV: kv, JS: b.JetStream()}
	}
	log.Info("enricher started", "instance", c.Instance, "region", c.CTR.Region, "status", c.Status, "cache", c.Cache)
	return b.RunBatch(ctx, c.Spec(), e.Handle, c.WorkerConfig.Options(bus.RunOptions{
		BatchWait: 50 * time.Millisecond,
		Logger:    log.With("service", "enricher"),
		OnSettle:  onSettle,
	}))
}
