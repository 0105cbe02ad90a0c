// Package service wires the MISP exporter: its configuration, its MISP
// client, the day state bucket and its consumer. main.go and tqflow run
// both start it through [Run].
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // EXPORTER_TIMEZONE must work on images without a zoneinfo database.

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/httpx"
	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/exporter/internal/export"
)

// Config is the exporter's configuration, from the environment.
type Config struct {
	// Instance names the job instance (the seed's -n). Day state keys and
	// event UUIDs derive from it: keep it stable.
	Instance string `env:"INSTANCE" envDefault:"default"`
	// MISP is where to export: MISP_URL, MISP_KEY, MISP_DISABLE_SSL,
	// MISP_CA_FILE, MISP_TIMEOUT. MISP_TIMEOUT is also how long the
	// exporter waits before resending attributes after a 504 or a time-out
	// (set it to MISP's max_execution_time).
	MISP misp.Config `envPrefix:"MISP_"`
	// ThreatQURL is the ThreatQ the indicators come from (the fetcher's
	// THREATQ_URL). With the MISP URL and the instance it seeds the event
	// UUIDs, so that deployments exporting different ThreatQs into one
	// MISP never share an event.
	ThreatQURL string `env:"THREATQ_URL"`
	// EventSeed, when set, replaces "<MISP_URL>|<THREATQ_URL>|<INSTANCE>"
	// as the event UUID seed: to keep filling the events of a deployment
	// whose URLs changed, or to keep two deployments apart by hand.
	EventSeed string `env:"EXPORTER_EVENT_SEED"`
	// Publish publishes each event that got attributes, without e-mail
	// alerts, once the export has been quiet for PublishQuiet (once per
	// fetch run). Off by default: it needs perm_publish, and an event with
	// the default distribution 0 leaves the instance in no case; turn it
	// on with EXPORTER_DISTRIBUTION 1 or more for events to synchronise.
	Publish bool `env:"EXPORTER_PUBLISH" envDefault:"false"`
	// PublishQuiet is how long an event gets no attributes before it is
	// published.
	PublishQuiet time.Duration `env:"EXPORTER_PUBLISH_QUIET" envDefault:"1m"`
	// TimeZone is the IANA zone days are cut in.
	TimeZone string `env:"EXPORTER_TIMEZONE" envDefault:"UTC"`
	// DayFrom picks the time that decides an indicator's day: updated_at
	// (the indicator's) or published (when the fetcher published it).
	DayFrom string `env:"EXPORTER_DAY_FROM" envDefault:"updated_at"`
	// InfoPrefix starts each event's info: "<prefix> <YYYY-MM-DD> #<n>".
	InfoPrefix string `env:"EXPORTER_EVENT_INFO_PREFIX" envDefault:"ThreatQ export"`
	// EventTags go on every event, comma-separated.
	EventTags []string `env:"EXPORTER_EVENT_TAGS" envDefault:"source:threatq-export" envSeparator:","`
	// Distribution of the events: 0 organisation … 3 all communities.
	Distribution string `env:"EXPORTER_DISTRIBUTION" envDefault:"0"`
	// ThreatLevel of the events: 1 high … 4 undefined.
	ThreatLevel string `env:"EXPORTER_THREAT_LEVEL" envDefault:"4"`
	// Analysis of the events: 0 initial, 1 ongoing, 2 complete.
	Analysis string `env:"EXPORTER_ANALYSIS" envDefault:"2"`
	// MaxPerEvent caps attributes per event (at most 25,000).
	MaxPerEvent int `env:"EXPORTER_MAX_PER_EVENT" envDefault:"25000"`
	// ClaimTTL is how long the record of a value exported on a day lives
	// in the day state bucket (at least 48h): a replay of a day older than
	// that may add a value again, to a later event of that day.
	ClaimTTL time.Duration `env:"EXPORTER_CLAIM_TTL" envDefault:"720h"`
	// SendSize is the most attributes per /attributes/add call.
	SendSize int `env:"EXPORTER_SEND_SIZE" envDefault:"1000"`
	// ToIDsThreshold, when set (0 to 10), makes to_ids "score >=
	// threshold"; empty keeps MISP's default for each type.
	ToIDsThreshold string `env:"EXPORTER_TO_IDS_THRESHOLD"`
	// ScoreTag adds threatq:score="<n>" to every attribute.
	ScoreTag bool `env:"EXPORTER_SCORE_TAG" envDefault:"false"`
	// MinScore skips indicators scored below it (0 to 10), behind the
	// fetcher's own threshold.
	MinScore float64 `env:"EXPORTER_MIN_SCORE" envDefault:"0"`
	// SkipLossy skips ThreatQ types MISP has no type for instead of sending
	// them as text.
	SkipLossy bool `env:"EXPORTER_SKIP_LOSSY" envDefault:"false"`
	// DisableCorrelation sets disable_correlation on every attribute.
	DisableCorrelation bool `env:"EXPORTER_DISABLE_CORRELATION" envDefault:"false"`
	// CheckTypes reads the instance's describeTypes at start-up and
	// dead-letters attributes of a type or category it does not allow.
	CheckTypes bool `env:"EXPORTER_CHECK_TYPES" envDefault:"true"`
	// Parallel is how many MISP calls one batch makes at once.
	Parallel int `env:"EXPORTER_PARALLEL" envDefault:"4"`
	// BatchWait is how long a partial batch waits for more indicators.
	BatchWait time.Duration `env:"EXPORTER_BATCH_WAIT" envDefault:"200ms"`
	// RetryMin and RetryMax bound the redelivery delay after a transient
	// failure (MISP down, 5xx, a timeout): doubling from RetryMin.
	RetryMin time.Duration `env:"EXPORTER_RETRY_MIN" envDefault:"1s"`
	RetryMax time.Duration `env:"EXPORTER_RETRY_MAX" envDefault:"5m"`
	// StartupTimeout bounds how long start-up waits for an unreachable or
	// failing MISP before giving up.
	StartupTimeout time.Duration `env:"EXPORTER_STARTUP_TIMEOUT" envDefault:"2m"`
	// WorkerConfig holds EXPORTER_CONCURRENCY (batches this process
	// exports at once), EXPORTER_BATCH_SIZE (indicators taken together),
	// EXPORTER_MAX_ACK_PENDING (indicators in flight across every
	// replica), EXPORTER_MAX_DELIVER and EXPORTER_DRAIN_TIMEOUT, with
	// their defaults.
	bus.WorkerConfig `envPrefix:"EXPORTER_" envDefaults:"CONCURRENCY=4,BATCH_SIZE=1000,MAX_ACK_PENDING=10000,MAX_DELIVER=20,DRAIN_TIMEOUT=20s"`
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if err := c.MISP.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !bus.ValidToken(c.Instance) {
		errs = append(errs, fmt.Errorf("INSTANCE %q: want 1 to 64 letters, digits, - or _", c.Instance))
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil || c.TimeZone == "" {
		errs = append(errs, fmt.Errorf("EXPORTER_TIMEZONE %q: want an IANA time zone such as UTC or Europe/Paris", c.TimeZone))
	}
	if c.DayFrom != string(export.DayFromUpdatedAt) && c.DayFrom != string(export.DayFromPublished) {
		errs = append(errs, fmt.Errorf("EXPORTER_DAY_FROM %q: want %s or %s", c.DayFrom, export.DayFromUpdatedAt, export.DayFromPublished))
	}
	if strings.TrimSpace(c.InfoPrefix) == "" || strings.ContainsAny(c.InfoPrefix, "\r\n") || len(c.InfoPrefix) > 200 {
		errs = append(errs, errors.New("EXPORTER_EVENT_INFO_PREFIX: want 1 to 200 characters on one line"))
	}
	for _, t := range c.EventTags {
		if strings.TrimSpace(t) == "" {
			errs = append(errs, errors.New("EXPORTER_EVENT_TAGS: empty tag name"))
			break
		}
	}
	if !oneOf(c.Distribution, "0", "1", "2", "3") {
		errs = append(errs, fmt.Errorf("EXPORTER_DISTRIBUTION %q: want 0 (organisation), 1 (community), 2 (connected) or 3 (all)", c.Distribution))
	}
	if !oneOf(c.ThreatLevel, "1", "2", "3", "4") {
		errs = append(errs, fmt.Errorf("EXPORTER_THREAT_LEVEL %q: want 1 (high), 2 (medium), 3 (low) or 4 (undefined)", c.ThreatLevel))
	}
	if !oneOf(c.Analysis, "0", "1", "2") {
		errs = append(errs, fmt.Errorf("EXPORTER_ANALYSIS %q: want 0 (initial), 1 (ongoing) or 2 (complete)", c.Analysis))
	}
	if c.MaxPerEvent < 1 || c.MaxPerEvent > export.MaxPerEvent {
		errs = append(errs, fmt.Errorf("EXPORTER_MAX_PER_EVENT %d: want 1 to %d", c.MaxPerEvent, export.MaxPerEvent))
	}
	if c.ClaimTTL < export.MinClaimTTL {
		errs = append(errs, fmt.Errorf("EXPORTER_CLAIM_TTL %s: want at least %s (a claim must outlive its day and the day's redeliveries)", c.ClaimTTL, export.MinClaimTTL))
	}
	if c.SendSize < 1 || c.SendSize > 5000 {
		errs = append(errs, fmt.Errorf("EXPORTER_SEND_SIZE %d: want 1 to 5000", c.SendSize))
	}
	if _, err := c.toIDsThreshold(); err != nil {
		errs = append(errs, err)
	}
	if math.IsNaN(c.MinScore) || c.MinScore < 0 || c.MinScore > 10 {
		errs = append(errs, fmt.Errorf("EXPORTER_MIN_SCORE %v: want a number from 0 to 10", c.MinScore))
	}
	if err := c.WorkerConfig.Validate("EXPORTER_", 10_000); err != nil {
		errs = append(errs, err)
	}
	if c.Parallel < 1 || c.Parallel > 64 {
		errs = append(errs, fmt.Errorf("EXPORTER_PARALLEL %d: want 1 to 64", c.Parallel))
	}
	if c.BatchWait < 0 {
		errs = append(errs, fmt.Errorf("EXPORTER_BATCH_WAIT %s: want a positive duration", c.BatchWait))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("EXPORTER_RETRY_MIN %s and EXPORTER_RETRY_MAX %s: want 0 < min <= max", c.RetryMin, c.RetryMax))
	}
	if c.Publish && c.PublishQuiet <= 0 {
		errs = append(errs, fmt.Errorf("EXPORTER_PUBLISH_QUIET %s: want a positive duration", c.PublishQuiet))
	}
	if len(c.EventSeed) > 1000 || strings.ContainsAny(c.EventSeed, "\r\n") {
		errs = append(errs, errors.New("EXPORTER_EVENT_SEED: want at most 1000 characters on one line"))
	}
	if c.StartupTimeout <= 0 {
		errs = append(errs, fmt.Errorf("EXPORTER_STARTUP_TIMEOUT %s: want a positive duration", c.StartupTimeout))
	}
	return errors.Join(errs...)
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}

// toIDsThreshold parses EXPORTER_TO_IDS_THRESHOLD: nil when empty.
func (c Config) toIDsThreshold() (*float64, error) {
	s := strings.TrimSpace(c.ToIDsThreshold)
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 10 {
		return nil, fmt.Errorf("EXPORTER_TO_IDS_THRESHOLD %q: want a number from 0 to 10, or nothing to keep MISP's default", c.ToIDsThreshold)
	}
	return &v, nil
}

// Spec returns the exporter's consumer for its instance.
func (c Config) Spec() bus.ConsumerSpec {
	return c.WorkerConfig.Spec(bus.ConsumerSpec{
		Stream:   bus.StreamIndicators,
		Name:     bus.ConsumerName("exporter", schemas.JobMISP, c.Instance),
		Subjects: []string{bus.IndicatorSubject(schemas.JobMISP, c.Instance)},
		AckWait:  2 * time.Minute, // a batch is several MISP calls; the runner keeps it alive.
	})
}

// Stats counts what the exporter did.
type Stats = export.Stats

// Run exports until ctx ends, then drains. It first checks MISP (the URL,
// the key, the role), waiting up to StartupTimeout while MISP is
// unreachable or failing; a refused key fails at once. A key refused later
// stops the exporter with an error, the messages in hand left for
// redelivery. c is taken as valid ([Config.Validate]): config.Parse
// validates it where it is read, and whoever builds one in Go validates
// it.
func Run(ctx context.Context, c Config, b *bus.Bus, log *slog.Logger, stats *Stats, onSettle func(bus.Settlement)) error {
	client, err := misp.New(c.MISP)
	if err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	log = log.With("service", "exporter", "instance", c.Instance)
	if c.MISP.DisableSSL {
		log.Warn("misp tls certificate verification is disabled (MISP_DISABLE_SSL)", "misp_url", c.MISP.URL)
	}
	if err := checkMISP(ctx, client, c, log); err != nil {
		return err
	}
	me, err := client.Me(ctx)
	switch {
	case err == nil:
	case errors.Is(err, misp.ErrAuth):
		return fmt.Errorf("exporter: read the misp user: %w", err)
	default:
		log.Warn("misp /users/view/me unavailable; events found under our uuids are not checked for their owner", "err", err)
	}
	if c.Publish && err == nil && !me.Role.PermPublish {
		return errors.New("exporter: EXPORTER_PUBLISH is on but the misp user's role has no perm_publish")
	}
	seed := c.EventSeed
	if seed == "" {
		if strings.TrimSpace(c.ThreatQURL) == "" {
			log.Warn("THREATQ_URL not set: event uuids are seeded by the misp url and instance only; two deployments exporting into this misp under one instance name would share events")
		}
		seed = misp.Seed(c.MISP.URL, c.ThreatQURL, c.Instance)
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return fmt.Errorf("exporter: EXPORTER_TIMEZONE: %w", err)
	}
	threshold, err := c.toIDsThreshold()
	if err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	set := export.Settings{
		Instance: c.Instance, Seed: seed, OrgID: me.Organisation.ID.String(), OrgName: me.Organisation.Name,
		ResendAfter: c.MISP.Timeout,
		Location:    loc, DayFrom: export.DayFrom(c.DayFrom),
		InfoPrefix: c.InfoPrefix, MaxPerEvent: c.MaxPerEvent, ClaimTTL: c.ClaimTTL, SendSize: c.SendSize, Parallel: c.Parallel,
		Distribution: c.Distribution, ThreatLevel: c.ThreatLevel, Analysis: c.Analysis,
		EventTags: c.EventTags, ToIDsThreshold: threshold, ScoreTag: c.ScoreTag, MinScore: c.MinScore,
		SkipLossy: c.SkipLossy, DisableCorrelation: c.DisableCorrelation,
	}
	if c.CheckTypes {
		dt, err := client.DescribeTypes(ctx)
		if err != nil {
			log.Warn("misp describeTypes unavailable; types and categories are not checked before sending", "err", err)
		} else {
			set.Types = dt
		}
	}
	kv, err := b.KeyValue(ctx, bus.BucketMISPDays)
	if err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	rctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var once sync.Once
	fatal := func(err error) {
		once.Do(func() {
			log.Error("misp refused the exporter; stopping", "err", err)
			stop(err)
		})
	}
	ex, err := export.New(client, kv, set, stats, log, fatal)
	if err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	log.Info("exporter started", "misp_url", c.MISP.URL, "timezone", c.TimeZone, "day_from", c.DayFrom,
		"max_per_event", c.MaxPerEvent, "claim_ttl", c.ClaimTTL, "to_ids_threshold", c.ToIDsThreshold,
		"misp_org", me.Organisation.Name, "publish", c.Publish)
	var pubs sync.WaitGroup
	if c.Publish {
		pubs.Go(func() { publishLoop(rctx, ex, c.PublishQuiet, log) })
	}
	err = b.RunBatch(rctx, c.Spec(), ex.Handle, c.WorkerConfig.Options(bus.RunOptions{
		BatchWait: c.BatchWait,
		Backoff:   bus.ExponentialBackoff(c.RetryMin, c.RetryMax),
		Logger:    log,
		OnSettle:  onSettle,
	}))
	pubs.Wait()
	if c.Publish {
		// What the run touched and the loop did not publish yet.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.DrainTimeout)
		if perr := ex.Publish(pctx, 0); perr != nil {
			log.Warn("misp events left unpublished at shutdown", "err", perr)
		}
		cancel()
	}
	if cause := context.Cause(rctx); cause != nil && !errors.Is(cause, context.Canceled) && ctx.Err() == nil {
		return fmt.Errorf("exporter: %w", cause)
	}
	if err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	return nil
}

// publishLoop publishes the events that have been quiet for quiet, until
// ctx ends.
func publishLoop(ctx context.Context, ex *export.Exporter, quiet time.Duration, log *slog.Logger) {
	t := time.NewTicker(max(quiet/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := ex.Publish(ctx, quiet); err != nil && ctx.Err() == nil {
				log.Warn("misp publish failed; trying again later", "err", err)
			}
		}
	}
}

// checkMISP calls GET /servers/getVersion until it answers, for at most
// StartupTimeout: a refused key is final, an unreachable or failing MISP
// is retried with a backoff.
func checkMISP(ctx context.Context, client *misp.Client, c Config, log *slog.Logger) error {
	cctx, cancel := context.WithTimeout(ctx, c.StartupTimeout)
	defer cancel()
	delay := 500 * time.Millisecond
	for {
		v, err := client.ServerVersion(cctx)
		if err == nil {
			log.Info("misp reachable", "misp_url", c.MISP.URL, "misp_version", v.Version)
			return nil
		}
		if !httpx.IsTransient(err) || errors.Is(err, misp.ErrAuth) || errors.Is(err, misp.ErrForbidden) {
			return fmt.Errorf("exporter: check misp at %s: %w", c.MISP.URL, err)
		}
		log.Warn("misp not reachable; retrying", "misp_url", c.MISP.URL, "err", err, "retry_in", delay)
		select {
		case <-cctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("exporter: check misp at %s: %w", c.MISP.URL, ctx.Err())
			}
			return fmt.Errorf("exporter: check misp at %s: no answer within %s: %w", c.MISP.URL, c.StartupTimeout, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}
