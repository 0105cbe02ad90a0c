// Package service wires the enricher: its configuration, its CTR client,
// the result cache and its consumer. main.go and tqflow run both start it
// through [Run].
package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/enricher/internal/budget"
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
	// MaxRequestsPerHour is the org-wide budget of CTR enrich calls every
	// replica shares (through JetStream KV): CTR allows the organisation
	// 8,000 per rolling hour for all its API clients together, so the
	// default, half of it, leaves the org's other integrations room.
	MaxRequestsPerHour int `env:"CTR_MAX_REQUESTS_PER_HOUR" envDefault:"4000"`
	// BudgetWindow is the budget's rolling window: an hour, as CTR counts.
	// Tests scale it down; MaxRequestsPerHour is then per this window.
	BudgetWindow time.Duration `env:"CTR_BUDGET_WINDOW" envDefault:"1h"`
	// BudgetKey names the budget in KV; empty derives it from the CTR host
	// and client id. Give every tqflow instance using API clients of the
	// same CTR organisation the same key to share one budget.
	BudgetKey string `env:"CTR_BUDGET_KEY"`
	// RefusedRetry is how often CTR is asked again while it refuses every
	// call (403 missing_scope, credentials refused).
	RefusedRetry time.Duration `env:"CTR_REFUSED_RETRY" envDefault:"1m"`
	// ModuleRetries is how many times, within one call, the modules that
	// failed inside an answer are asked again (mids); an indicator they
	// still fail on is retried on its next deliveries, then left to a
	// later run, uncached.
	ModuleRetries int `env:"CTR_MODULE_RETRIES" envDefault:"1"`
	// AckWait is how long a delivery may go unacknowledged (a crashed
	// worker's messages come back after it); the runner keeps live work
	// from expiring with InProgress.
	AckWait time.Duration `env:"ENRICHER_ACK_WAIT" envDefault:"2m"`
	// WorkerConfig holds ENRICHER_CONCURRENCY (batches this process
	// enriches at once), ENRICHER_BATCH_SIZE (indicators taken together;
	// CTR is called in chunks of CTR_BATCH_SIZE of them),
	// ENRICHER_MAX_ACK_PENDING (indicators in flight across every
	// replica: the global concurrency cap on CTR), ENRICHER_MAX_DELIVER
	// and ENRICHER_DRAIN_TIMEOUT, with their defaults.
	bus.WorkerConfig `envPrefix:"ENRICHER_" envDefaults:"CONCURRENCY=8,BATCH_SIZE=100,MAX_ACK_PENDING=1000,MAX_DELIVER=10,DRAIN_TIMEOUT=20s"`
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
	if c.MaxRequestsPerHour < 2 {
		errs = append(errs, fmt.Errorf("CTR_MAX_REQUESTS_PER_HOUR %d: want at least 2", c.MaxRequestsPerHour))
	}
	if c.BudgetWindow < time.Second {
		errs = append(errs, fmt.Errorf("CTR_BUDGET_WINDOW %s: want at least 1s", c.BudgetWindow))
	}
	if c.RefusedRetry < time.Second {
		errs = append(errs, fmt.Errorf("CTR_REFUSED_RETRY %s: want at least 1s", c.RefusedRetry))
	}
	if c.ModuleRetries < 0 || c.ModuleRetries > 5 {
		errs = append(errs, fmt.Errorf("CTR_MODULE_RETRIES %d: want 0 to 5", c.ModuleRetries))
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

// Run enriches until ctx ends, then drains. c is taken as valid
// ([Config.Validate]): config.Parse validates it where it is read, and
// whoever builds one in Go validates it.
func Run(ctx context.Context, c Config, b *bus.Bus, log *slog.Logger, stats *Stats, onSettle func(bus.Settlement)) error {
	bkv, err := b.KeyValue(ctx, bus.BucketCTRBudget)
	if err != nil {
		return fmt.Errorf("enricher: %w", err)
	}
	scope := c.CTR.Scope()
	key := c.BudgetKey
	if key == "" {
		h := sha256.Sum256([]byte(scope))
		key = "org." + hex.EncodeToString(h[:12])
	}
	bg, err := budget.New(budget.Config{KV: bkv, Key: key, Max: c.MaxRequestsPerHour, Window: c.BudgetWindow})
	if err != nil {
		return fmt.Errorf("enricher: %w", err)
	}
	cc := c.CTR
	cc.Pace = bg.Wait
	client, err := ctr.New(cc)
	if err != nil {
		return fmt.Errorf("enricher: %w", err)
	}
	e := &enrich.Enricher{
		Bus:          b,
		CTR:          &ctrAdapter{c: client, log: log, moduleRetries: c.ModuleRetries},
		Chunk:        client.BatchSize(),
		TypeFor:      ctr.TypeFor,
		Fatal:        ctr.Fatal,
		Blames:       blames,
		RefusedRetry: c.RefusedRetry,
		Holder:       bg,
		OnRefusal:    refusalRecorder(bkv, c.Instance, log),
		Log:          log.With("service", "enricher"),
		// Deliveries while modules fail: never the last one, which would
		// dead-letter a message that did nothing wrong.
		ModuleRetries: min(max(c.WorkerConfig.MaxDeliver-1, 1), 5),
		Instance:      c.Instance,
		Status:        c.Status,
		Source:        c.Source,
		Stats:         stats,
	}
	if c.Cache {
		kv, err := b.KeyValue(ctx, bus.BucketCTRCache)
		if err != nil {
			return fmt.Errorf("enricher: %w", err)
		}
		e.Cache = &enrich.Cache{KV: kv, JS: b.JetStream(), Scope: scope}
	}
	log.Info("enricher started", "instance", c.Instance, "region", c.CTR.Region, "status", c.Status, "cache", c.Cache,
		"max_requests_per_hour", c.MaxRequestsPerHour, "budget_window", c.BudgetWindow)
	return b.RunBatch(ctx, c.Spec(), e.Handle, c.WorkerConfig.Options(bus.RunOptions{
		BatchWait: 50 * time.Millisecond,
		Logger:    log.With("service", "enricher"),
		OnSettle:  onSettle,
	}))
}

// blames reports whether a CTR error blames some observables of a call:
// a 400 (a malformed or unknown observable) or a 413 (too large). Only
// those answers are worth splitting a call for.
func blames(err error) bool {
	return errors.Is(err, ctr.ErrBadRequest) || errors.Is(err, ctr.ErrTooLarge)
}

// RefusalKey is the key, in the CTR budget bucket, under which an
// instance's enrichers record that CTR refuses every call (JSON
// [Refusal]); tqflow status lists these keys. It is deleted when CTR
// answers again.
func RefusalKey(instance string) string { return "refused." + instance }

// Refusal is what RefusalKey holds.
type Refusal struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

func refusalRecorder(kv jetstream.KeyValue, instance string, log *slog.Logger) func(context.Context, error) {
	return func(ctx context.Context, err error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		var werr error
		if err == nil {
			werr = kv.Delete(ctx, RefusalKey(instance))
		} else {
			data, _ := json.Marshal(Refusal{Reason: err.Error(), Since: time.Now().UTC()})
			_, werr = kv.Put(ctx, RefusalKey(instance), data)
		}
		if werr != nil && !errors.Is(werr, jetstream.ErrKeyNotFound) {
			log.Warn("record ctr refusal for tqflow status", "err", werr)
		}
	}
}
