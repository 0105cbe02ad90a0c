package ctr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/httpx"
)

// Defaults of the settings, applied to the zero values of a [Config] built
// in code as they are by envDefault to one read from the environment.
const (
	DefaultRegion    = "us"
	DefaultTimeout   = 90 * time.Second
	DefaultBatchSize = 50
	// MaxBatchSize is the largest accepted BatchSize. CTR documents no
	// maximum; modules cap their answers per observable, not per call.
	MaxBatchSize = 1000
	// DefaultRetryAfter is RetryAfterDefault's default.
	DefaultRetryAfter = 15 * time.Minute
)

// regionHosts maps a region to its IROH platform host (contract §1).
var regionHosts = map[string]string{
	"us":   "https://visibility.amp.cisco.com",
	"eu":   "https://visibility.eu.amp.cisco.com",
	"apjc": "https://visibility.apjc.amp.cisco.com",
}

// Config says how to reach CTR. Fields carry caarlos0/env tags without a
// prefix; services nest it under their own (e.g. CTR_), and Validate names
// the settings by their unprefixed variable names.
type Config struct {
	// Region picks the IROH host: us (also ""), eu or apjc.
	Region string `env:"REGION" envDefault:"us"`
	// ClientID is the API client's id, "client-<uuid>".
	ClientID string `env:"CLIENT_ID"`
	// ClientPassword is the API client's password. It is sent only to the
	// token endpoint and never appears in errors or logs.
	ClientPassword config.Secret `env:"CLIENT_PASSWORD"`
	// BaseURL overrides the region's host, for the sandbox, a simulator or
	// a mirror, e.g. http://ctrsim:8080. Paths (/iroh/...) are appended.
	BaseURL string `env:"BASE_URL"`
	// AllowHTTP allows a plain-http BASE_URL to a host that is not the
	// loopback (a sandbox on a private network). The token request's
	// Basic credentials then travel in clear.
	AllowHTTP bool `env:"ALLOW_HTTP"`
	// Insecure turns TLS certificate verification off (sandboxes only).
	Insecure bool `env:"INSECURE"`
	// CAFile is a PEM file of extra certificate authorities to trust.
	CAFile string `env:"CA_FILE"`
	// Timeout bounds each request, body included. Observe fans out to
	// every module of the org, and the slowest sets the pace.
	Timeout time.Duration `env:"TIMEOUT" envDefault:"90s"`
	// BatchSize is the most observables sent in one enrich call (1..1000):
	// the chunk size of the caller; Observe refuses longer lists.
	BatchSize int `env:"BATCH_SIZE" envDefault:"50"`
	// RetryAfterDefault is how long a 429 without a usable Retry-After
	// (missing or unreadable) holds calls: CTR's window is a rolling hour,
	// so retrying in seconds only spends the org's quota.
	RetryAfterDefault time.Duration `env:"RETRY_AFTER_DEFAULT" envDefault:"15m"`
	// Pace, when set, is called before every enrich request (not token
	// requests) and the request waits for it; an error it returns is
	// returned without a call. It is the org-wide request budget. It is
	// not read from the environment.
	Pace func(ctx context.Context) error `env:"-"`
	// WrapTransport, when set, wraps the client's HTTP transport (which
	// carries the TLS settings) once, in New, for every call the client
	// makes, token requests included: obs.Metrics.WrapTransport times
	// them. It must return a transport that calls the one it is given.
	// It is not read from the environment.
	WrapTransport func(http.RoundTripper) http.RoundTripper `env:"-"`
	// Scrub, when set, holds the other secrets of the process (app's
	// Env.Scrubber) to scrub out of server-supplied text, on top of this
	// client's own credentials, which it always scrubs. It is not read
	// from the environment.
	Scrub *httpx.Scrubber `env:"-"`
}

// setDefaults fills the zero fields of c.
func (c *Config) setDefaults() {
	c.Region = strings.ToLower(strings.TrimSpace(c.Region))
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	c.BaseURL = strings.TrimRight(strings.TrimSpace(c.BaseURL), "/")
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.RetryAfterDefault == 0 {
		c.RetryAfterDefault = DefaultRetryAfter
	}
}

// Scope names what answers: the host calls go to and the API client
// (whose organisation's modules answer). Answers cached under one scope
// must not be served to another (issue 13, item 6).
func (c Config) Scope() string {
	c.setDefaults()
	base, err := c.baseURL()
	if err != nil {
		base = c.Region
	}
	return base + " " + c.ClientID
}

// DefaultEnvPrefix is the prefix services nest [Config] under;
// [Config.Validate] names settings with it.
const DefaultEnvPrefix = "CTR_"

// Validate reports every problem of the configuration at once, each naming
// its variable under [DefaultEnvPrefix] (CTR_CLIENT_ID). It never shows
// the password.
func (c Config) Validate() error { return c.ValidatePrefixed(DefaultEnvPrefix) }

// ValidatePrefixed is [Config.Validate] for a configuration nested under
// another prefix.
func (c Config) ValidatePrefixed(prefix string) error {
	c.setDefaults()
	v := func(name string) string { return prefix + name }
	var errs []error
	// BASE_URL replaces the host, but a typo in REGION is still a typo.
	if _, err := RegionURL(c.Region); err != nil {
		errs = append(errs, fmt.Errorf("ctr: %s %q is not one of us, eu, apjc: %w", v("REGION"), c.Region, ErrRegion))
	}
	if c.ClientID == "" {
		errs = append(errs, fmt.Errorf("ctr: %s is not set", v("CLIENT_ID")))
	}
	if c.ClientPassword == "" {
		errs = append(errs, fmt.Errorf("ctr: %s is not set", v("CLIENT_PASSWORD")))
	}
	if c.BaseURL != "" {
		errs = append(errs, httpx.CheckBaseURL("ctr", v("BASE_URL"), c.BaseURL)...)
	}
	terrs, _ := c.transport().Check()
	errs = append(errs, terrs...)
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("ctr: %s %s is negative", v("TIMEOUT"), c.Timeout))
	}
	if c.RetryAfterDefault < time.Second {
		errs = append(errs, fmt.Errorf("ctr: RETRY_AFTER_DEFAULT %s: want at least 1s", c.RetryAfterDefault))
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("ctr: %s %d is not between 1 and %d", v("BATCH_SIZE"), c.BatchSize, MaxBatchSize))
	}
	return errors.Join(errs...)
}

// transport describes how c reaches CTR, for the https and INSECURE
// rules.
func (c Config) transport() httpx.Transport {
	return httpx.Transport{
		System: "ctr", URLs: [][2]string{{"BASE_URL", c.BaseURL}},
		AllowHTTP: c.AllowHTTP, AllowHTTPVar: "ALLOW_HTTP",
		Insecure: c.Insecure, InsecureVar: "INSECURE", CAFile: c.CAFile, CAFileVar: "CA_FILE",
	}
}

// BasicCredentials returns the user and password pairs c sends as HTTP
// Basic credentials (the token request's), for a scrubber.
func (c Config) BasicCredentials() [][2]string {
	return [][2]string{{c.ClientID, c.ClientPassword.Reveal()}}
}

// TransportWarnings returns what to warn about at start-up: plain http
// (to the loopback, or allowed by ALLOW_HTTP) and INSECURE. Settings are
// named under the prefix services nest it under (CTR_).
func (c Config) TransportWarnings() []httpx.Warning {
	c.setDefaults()
	_, warns := c.transport().Check()
	for i := range warns {
		warns[i].Setting = "CTR_" + warns[i].Setting // as services nest it
	}
	return warns
}

// RegionURL returns the IROH platform host of a region: us (or ""), eu or
// apjc, in any case. Any other region is an error naming the allowed ones.
func RegionURL(region string) (string, error) {
	r := strings.ToLower(strings.TrimSpace(region))
	if r == "" {
		r = DefaultRegion
	}
	if u, ok := regionHosts[r]; ok {
		return u, nil
	}
	return "", fmt.Errorf("ctr: REGION %q is not one of us, eu, apjc: %w", region, ErrRegion)
}

// baseURL returns the host requests go to: BaseURL, else the region's.
func (c Config) baseURL() (string, error) {
	if c.BaseURL != "" {
		return c.BaseURL, nil
	}
	return RegionURL(c.Region)
}
