package misp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/httpx"
)

// DefaultTimeout is the per-request timeout when Config.Timeout is zero:
// MISP's recommended max_execution_time. MISP saves an /attributes/add
// chunk one attribute at a time, which on a busy instance takes minutes;
// a client that gives up sooner abandons a chunk MISP is still saving and
// sends it again, doubling the load it was waiting on.
const DefaultTimeout = 300 * time.Second

// Config says how to reach a MISP instance. Compose it into a service
// config with an env prefix (e.g. envPrefix:"MISP_").
type Config struct {
	// URL is the base URL, e.g. https://misp.example.org (a sub-directory
	// install works). A trailing slash is ignored.
	URL string `env:"URL"`
	// Key is the API key: 40 letters and digits, sent raw in Authorization.
	Key config.Secret `env:"KEY"`
	// DisableSSL turns TLS certificate verification off (the ThreatQ
	// connector's -ds/--disable-ssl). Callers log a warning when it is set.
	DisableSSL bool `env:"DISABLE_SSL"`
	// CAFile is a PEM file of extra certificate authorities to trust.
	CAFile string `env:"CA_FILE"`
	// AllowHTTP allows a plain-http URL to a host that is not the loopback
	// (a sandbox on a private network). The key then travels in clear.
	AllowHTTP bool `env:"ALLOW_HTTP"`
	// Timeout bounds each request; DefaultTimeout when zero.
	Timeout time.Duration `env:"TIMEOUT" envDefault:"300s"`
	// WrapTransport, when set, wraps the client's HTTP transport (which
	// carries the TLS settings) once, in New, for every call the client
	// makes, token requests included: obs.Metrics.WrapTransport times
	// them. It must return a transport that calls the one it is given.
	// It is not read from the environment.
	WrapTransport func(http.RoundTripper) http.RoundTripper `env:"-"`
	// Scrub, when set, holds the other secrets of the process (app's
	// Env.Scrubber) to scrub out of server-supplied text, on top of the
	// key, which the client always scrubs. It is not read from the
	// environment.
	Scrub *httpx.Scrubber `env:"-"`
}

func (c *Config) setDefaults() {
	c.URL = strings.TrimRight(strings.TrimSpace(c.URL), "/")
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// DefaultEnvPrefix is the prefix services nest [Config] under;
// [Config.Validate] names settings with it.
const DefaultEnvPrefix = "MISP_"

// Validate reports every problem of the configuration at once, each naming
// its variable under [DefaultEnvPrefix] (MISP_KEY). It never shows the key.
func (c Config) Validate() error { return c.ValidatePrefixed(DefaultEnvPrefix) }

// ValidatePrefixed is [Config.Validate] for a configuration nested under
// another prefix.
func (c Config) ValidatePrefixed(prefix string) error {
	c.setDefaults()
	v := func(name string) string { return prefix + name }
	var errs []error
	if c.URL == "" {
		errs = append(errs, fmt.Errorf("misp: %s is not set", v("URL")))
	} else {
		errs = append(errs, httpx.CheckBaseURL("misp", v("URL"), c.URL)...)
	}
	terrs, _ := c.transport().Check()
	errs = append(errs, terrs...)
	if c.Key == "" {
		errs = append(errs, fmt.Errorf("misp: %s is not set", v("KEY")))
	} else if !validKey(c.Key.Reveal()) {
		errs = append(errs, fmt.Errorf("misp: %s is not 40 letters and digits", v("KEY")))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("misp: %s %s is negative", v("TIMEOUT"), c.Timeout))
	}
	return errors.Join(errs...)
}

// transport describes how c reaches MISP, for the https and DISABLE_SSL
// rules.
func (c Config) transport() httpx.Transport {
	return httpx.Transport{
		System: "misp", URLs: [][2]string{{"URL", c.URL}},
		AllowHTTP: c.AllowHTTP, AllowHTTPVar: "ALLOW_HTTP",
		Insecure: c.DisableSSL, InsecureVar: "DISABLE_SSL", CAFile: c.CAFile, CAFileVar: "CA_FILE",
	}
}

// TransportWarnings returns what to warn about at start-up: plain http
// (to the loopback, or allowed by ALLOW_HTTP) and DISABLE_SSL. Settings
// are named under the prefix services nest it under (MISP_).
func (c Config) TransportWarnings() []httpx.Warning {
	c.setDefaults()
	_, warns := c.transport().Check()
	for i := range warns {
		warns[i].Setting = "MISP_" + warns[i].Setting // as services nest it
	}
	return warns
}

// validKey reports whether k has MISP's API key format, ^[a-zA-Z0-9]{40}$.
func validKey(k string) bool {
	if len(k) != 40 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
