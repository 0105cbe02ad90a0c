// Package service wires the signature-loader: its configuration, the
// signature types and statuses it resolves in ThreatQ at start, and its
// consumer of et.rulesets.<instance>. main.go and tqflow run both start it
// through [Run].
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/threatq"
	"github.com/tqflow/tqflow/services/signature-loader/internal/load"
)

// DefaultSource is the ThreatQ source the signatures are written under.
const DefaultSource = "Emerging Threats"

// Config is the signature-loader's configuration, from the environment.
type Config struct {
	// OnParsed, when set, is called as each rules file is parsed with the
	// lines parsed since the last call, for a progress bar.
	OnParsed func(file string, lines int) `env:"-"`
	// Instance names the job instance (the seed's -n).
	Instance string `env:"INSTANCE" envDefault:"default"`
	// ThreatQ is where the configured statuses and types are resolved at
	// start: the THREATQ_ variables, as the writer reads them.
	ThreatQ threatq.Config `envPrefix:"THREATQ_"`
	// StandardStatus is the status of enabled ("standard") rules: one of
	// ThreatQ's signature statuses (Active, Expired, Inactive or Indirect,
	// Non-malicious, Review, Whitelisted), spelt exactly as ThreatQ spells
	// it (its SDK resolves names exactly).
	StandardStatus string `env:"ET_STANDARD_STATUS" envDefault:"Active"`
	// NonStandardStatus is the status of the rules ET ships commented out
	// ("non-standard").
	NonStandardStatus string `env:"ET_NONSTANDARD_STATUS" envDefault:"Review"`
	// RetiredStatus is the status of retired signatures: the previous
	// revision of a rule whose rev went up, and a rule that left the
	// ruleset.
	RetiredStatus string `env:"ET_RETIRED_STATUS" envDefault:"Expired"`
	// IncludeNonStandard loads the non-standard rules too.
	IncludeNonStandard bool `env:"ET_INCLUDE_NONSTANDARD" envDefault:"false"`
	// Source is the ThreatQ source of the signatures.
	Source string `env:"ET_SIGNATURE_SOURCE" envDefault:"Emerging Threats"`
	// SuricataType is the ThreatQ signature type of Suricata rules, which
	// a stock ThreatQ lacks (a customer creates it); where ThreatQ has no
	// such type, Suricata rules are written as Snort.
	SuricataType string `env:"ET_SURICATA_TYPE" envDefault:"Suricata"`
	// WorkerConfig holds LOADER_CONCURRENCY (rules files this process
	// loads at once, at most 16), LOADER_MAX_DELIVER (attempts per rules
	// file before it is dead-lettered), LOADER_DRAIN_TIMEOUT (how long
	// shutdown waits for in-flight files), LOADER_MAX_ACK_PENDING (rules
	// files in flight across every replica) and LOADER_BATCH_SIZE (1: a
	// rules file is loaded alone), with their defaults.
	bus.WorkerConfig `envPrefix:"LOADER_" envDefaults:"CONCURRENCY=2,BATCH_SIZE=1,MAX_ACK_PENDING=64,MAX_DELIVER=5,DRAIN_TIMEOUT=20s"`
}

// maxConcurrency bounds LOADER_CONCURRENCY: each file in flight holds its
// parsed rules.
const maxConcurrency = 16

// Validate reports every problem at once. Status names are checked against
// ThreatQ by [Run].
func (c Config) Validate() error {
	var errs []error
	if !bus.ValidToken(c.Instance) {
		errs = append(errs, fmt.Errorf("INSTANCE %q: want 1 to 64 letters, digits, - or _", c.Instance))
	}
	for _, f := range []struct{ name, value string }{
		{"ET_STANDARD_STATUS", c.StandardStatus},
		{"ET_NONSTANDARD_STATUS", c.NonStandardStatus},
		{"ET_RETIRED_STATUS", c.RetiredStatus},
		{"ET_SIGNATURE_SOURCE", c.Source},
		{"ET_SURICATA_TYPE", c.SuricataType},
	} {
		if strings.TrimSpace(f.value) == "" {
			errs = append(errs, fmt.Errorf("%s must not be empty", f.name))
		}
	}
	if err := c.ThreatQ.Validate(); err != nil {
		errs = append(errs, err)
	}
	w := c.WorkerConfig
	if w.Concurrency < 1 || w.Concurrency > maxConcurrency {
		errs = append(errs, fmt.Errorf("LOADER_CONCURRENCY %d: want 1 to %d", w.Concurrency, maxConcurrency))
		w.Concurrency = 1 // Reported once, with the loader's bound.
	}
	if err := w.Validate("LOADER_", 1); err != nil {
		errs = append(errs, err)
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("LOADER_DRAIN_TIMEOUT %s: want a positive duration", c.DrainTimeout))
	}
	return errors.Join(errs...)
}

// Spec returns the loader's consumer for its instance:
// signature-loader-<instance> on et.rulesets.<instance>.
func (c Config) Spec() bus.ConsumerSpec {
	return c.WorkerConfig.Spec(bus.ConsumerSpec{
		Stream:   bus.StreamRulesets,
		Name:     bus.ConsumerName("signature-loader", c.Instance),
		Subjects: []string{bus.RulesetSubject(c.Instance)},
		AckWait:  time.Minute, // the runner sends InProgress while a long file loads
	})
}

// Catalog lists what ThreatQ knows of signatures; pkg/threatq implements
// it in the wiring.
type Catalog interface {
	// SignatureTypes returns the names of the signature types.
	SignatureTypes(ctx context.Context) ([]string, error)
	// SignatureStatuses returns the names of the signature statuses.
	SignatureStatuses(ctx context.Context) ([]string, error)
}

// StaticCatalog is a Catalog of fixed names, for tests and for running
// without asking ThreatQ.
type StaticCatalog struct {
	Types, Statuses []string
}

var _ Catalog = StaticCatalog{}

// SignatureTypes implements Catalog.
func (s StaticCatalog) SignatureTypes(context.Context) ([]string, error) { return s.Types, nil }

// SignatureStatuses implements Catalog.
func (s StaticCatalog) SignatureStatuses(context.Context) ([]string, error) { return s.Statuses, nil }

// StockCatalog returns the signature types and statuses of a stock
// ThreatQ (shared/contracts/threatq.md §3), in new slices at each call: no
// Suricata type, and the third status spelled both "Indirect" and
// "Inactive" by ThreatQ's own tools.
func StockCatalog() StaticCatalog {
	return StaticCatalog{
		Types:    []string{"Bro", "Custom", "Cybox", "OpenIOC", "Regex", "Snort", "STIX Indicator Pattern", "YARA"},
		Statuses: []string{"Active", "Expired", "Inactive", "Indirect", "Non-malicious", "Review", "Whitelisted"},
	}
}

// Resolved is what [Resolve] found in ThreatQ, spelled as ThreatQ spells it.
type Resolved struct {
	StandardStatus, NonStandardStatus, RetiredStatus string
	SnortType, SuricataType                          string
	// SuricataFallback is true when ThreatQ has no Suricata type and
	// SuricataType is the Snort type.
	SuricataFallback bool
}

// Resolve matches the configured statuses against cat exactly, as
// ThreatQ's SDK does, and the types ignoring case. An unknown status (a
// [*threatq.UnknownStatusError] each), or no Snort type, is a
// [*config.Error] listing what ThreatQ has.
func Resolve(ctx context.Context, c Config, cat Catalog) (Resolved, error) {
	statuses, err := cat.SignatureStatuses(ctx)
	if err != nil {
		return Resolved{}, fmt.Errorf("read ThreatQ signature statuses: %w", err)
	}
	types, err := cat.SignatureTypes(ctx)
	if err != nil {
		return Resolved{}, fmt.Errorf("read ThreatQ signature types: %w", err)
	}
	var r Resolved
	var errs []error
	for _, st := range []struct {
		name, value string
		to          *string
	}{
		{"ET_STANDARD_STATUS", c.StandardStatus, &r.StandardStatus},
		{"ET_NONSTANDARD_STATUS", c.NonStandardStatus, &r.NonStandardStatus},
		{"ET_RETIRED_STATUS", c.RetiredStatus, &r.RetiredStatus},
	} {
		if !slices.Contains(statuses, st.value) {
			errs = append(errs, &threatq.UnknownStatusError{Var: st.name, Name: st.value, Kind: "signature", Available: statuses})
			continue
		}
		*st.to = st.value
	}
	var ok bool
	if r.SnortType, ok = load.MatchName(types, "Snort"); !ok {
		errs = append(errs, fmt.Errorf("ThreatQ has no Snort signature type; available: %s", strings.Join(types, ", ")))
	}
	if r.SuricataType, ok = load.MatchName(types, c.SuricataType); !ok {
		r.SuricataType, r.SuricataFallback = r.SnortType, true
	}
	if err := errors.Join(errs...); err != nil {
		return Resolved{}, &config.Error{Err: err}
	}
	return r, nil
}

// Stats counts what the loader did.
type Stats = load.Stats

// Run loads rulesets until ctx ends, then drains. It first resolves the
// configured statuses and types in cat. c is taken as valid
// ([Config.Validate]): config.Parse validates it where it is read, and
// whoever builds one in Go validates it.
func Run(ctx context.Context, c Config, b *bus.Bus, cat Catalog, log *slog.Logger, stats *Stats, onSettle func(bus.Settlement)) error {
	res, err := Resolve(ctx, c, cat)
	if err != nil {
		return fmt.Errorf("signature-loader: %w", err)
	}
	objs, err := b.ObjectStore(ctx, bus.ObjectRulesets)
	if err != nil {
		return fmt.Errorf("signature-loader: %w", err)
	}
	kv, err := b.KeyValue(ctx, bus.BucketETState)
	if err != nil {
		return fmt.Errorf("signature-loader: %w", err)
	}
	log = log.With("service", "signature-loader")
	l := &load.Loader{
		Bus: b, Objects: objs, State: kv, Instance: c.Instance,
		StandardStatus: res.StandardStatus, NonStandardStatus: res.NonStandardStatus, RetiredStatus: res.RetiredStatus,
		IncludeNonStandard: c.IncludeNonStandard, Source: c.Source,
		SnortType: res.SnortType, SuricataType: res.SuricataType, SuricataFallback: res.SuricataFallback,
		Stats: stats, OnParsed: c.OnParsed,
	}
	log.Info("signature-loader started", "instance", c.Instance, "standard_status", res.StandardStatus,
		"nonstandard_status", res.NonStandardStatus, "retired_status", res.RetiredStatus, "include_nonstandard", c.IncludeNonStandard,
		"suricata_type", res.SuricataType, "source", c.Source)
	// Beside the rulesets, the writer's dead letters: a sid whose write was
	// dead-lettered is forgotten, so the next run writes it again.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	forgot := make(chan error, 1)
	go func() {
		err := b.Run(rctx, c.ForgetSpec(), l.Forget, bus.RunOptions{DrainTimeout: c.DrainTimeout, Logger: log, OnSettle: onSettle})
		cancel()
		forgot <- err
	}()
	err = b.Run(rctx, c.Spec(), l.Handle, c.WorkerConfig.Options(bus.RunOptions{
		DoubleAck: true,
		Logger:    log,
		OnSettle:  onSettle,
	}))
	cancel()
	return errors.Join(err, <-forgot)
}

// ForgetSpec is the consumer of the writer's dead letters (see
// load.Loader.Forget).
func (c Config) ForgetSpec() bus.ConsumerSpec {
	return bus.ConsumerSpec{Stream: bus.StreamDeadLetter, Name: bus.ConsumerName("signature-loader", "forget", c.Instance),
		Subjects: []string{load.WriterDeadLetters}}
}
