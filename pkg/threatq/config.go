package threatq

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/httpx"
)

// Defaults of the settings, applied to the zero values of a [Config] built
// in code as envDefault applies them to one read from the environment.
const (
	DefaultTimeout  = 60 * time.Second
	DefaultPageSize = 1000
	// MaxPageSize is the largest page asked of the API (the vendor SDK's
	// page limit).
	MaxPageSize = 1000
	// DefaultEnvPrefix is the prefix services nest [Config] under;
	// [Config.Validate] names settings with it.
	DefaultEnvPrefix = "THREATQ_"
)

// Config says how to reach ThreatQ and who to be. Fields carry caarlos0/env
// tags without a prefix; services nest it under their own (THREATQ_).
//
// The grant is the password grant when Email is set, else the
// client-credentials grant.
type Config struct {
	// URL is the instance's base URL, e.g. https://threatq.example.com. A
	// trailing /api is accepted and dropped.
	URL string `env:"URL"`
	// Email is the user of the password grant.
	Email string `env:"EMAIL"`
	// Password is the user's password (password grant).
	Password config.Secret `env:"PASSWORD"`
	// ClientID is, for the password grant, the user's API client id (shown
	// in the user's profile; not an OAuth client id); for the
	// client-credentials grant, the OAuth client id.
	ClientID config.Secret `env:"CLIENT_ID"`
	// ClientSecret is the OAuth client secret (client-credentials grant).
	ClientSecret config.Secret `env:"CLIENT_SECRET"`
	// Insecure turns TLS certificate verification off (sandboxes only).
	Insecure bool `env:"INSECURE"`
	// CAFile is a PEM file of extra certificate authorities to trust.
	CAFile string `env:"CA_FILE"`
	// AllowHTTP allows a plain-http URL to a host that is not the loopback
	// (a sandbox on a private network). Credentials then travel in clear.
	AllowHTTP bool `env:"ALLOW_HTTP"`
	// Timeout bounds each request, body included.
	Timeout time.Duration `env:"TIMEOUT" envDefault:"60s"`
	// PageSize is the number of indicators asked per query page (1..1000).
	PageSize int `env:"PAGE_SIZE" envDefault:"1000"`
	// WrapTransport, when set, wraps the client's HTTP transport (which
	// carries the TLS settings) once, in New, for every call the client
	// makes, token requests included: obs.Metrics.WrapTransport times
	// them. It must return a transport that calls the one it is given.
	// It is not read from the environment.
	WrapTransport func(http.RoundTripper) http.RoundTripper `env:"-"`
	// Now, when set, is the clock the client reads token lifetimes and
	// Retry-After dates with; time.Now when nil. It is not read from the
	// environment.
	Now func() time.Time `env:"-"`
	// Scrub, when set, holds the other secrets of the process (app's
	// Env.Scrubber) to scrub out of server-supplied text, on top of this
	// client's own credentials, which it always scrubs. It is not read
	// from the environment.
	Scrub *httpx.Scrubber `env:"-"`
}

// TLS returns the TLS settings of c in the form pkg/httpx takes.
func (c Config) TLS() httpx.TLSConfig {
	return httpx.TLSConfig{Insecure: c.Insecure, CAFile: c.CAFile}
}

// PasswordGrant reports whether c uses the password grant (Email is set)
// rather than client credentials.
func (c Config) PasswordGrant() bool { return strings.TrimSpace(c.Email) != "" }

// setDefaults fills the zero fields of c and normalises the URL.
func (c *Config) setDefaults() {
	c.URL = strings.TrimRight(strings.TrimSpace(c.URL), "/")
	c.URL = strings.TrimRight(strings.TrimSuffix(c.URL, "/api"), "/")
	c.Email = strings.TrimSpace(c.Email)
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
}

// Validate reports every problem of the configuration at once, naming each
// setting by its variable under [DefaultEnvPrefix], e.g. "THREATQ_URL is
// required". It never shows a secret.
func (c Config) Validate() error { return c.ValidatePrefixed(DefaultEnvPrefix) }

// ValidatePrefixed is [Config.Validate] for a service that nests the
// configuration under another prefix.
func (c Config) ValidatePrefixed(prefix string) error {
	c.setDefaults()
	v := func(name string) string { return prefix + name }
	var errs []error
	if c.URL == "" {
		errs = append(errs, fmt.Errorf("threatq: %s is required", v("URL")))
	} else if u, err := url.Parse(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("threatq: %s is not a URL", v("URL")))
	} else {
		switch {
		case u.Host == "":
			errs = append(errs, fmt.Errorf("threatq: %s has no host", v("URL")))
		case u.Scheme == "https":
		case u.Scheme == "http":
			if !c.AllowHTTP && !loopback(u.Hostname()) {
				errs = append(errs, fmt.Errorf("threatq: %s must be https (http only for the loopback, or with %s)", v("URL"), v("ALLOW_HTTP")))
			}
		default:
			errs = append(errs, fmt.Errorf("threatq: %s scheme %q is not https", v("URL"), u.Scheme))
		}
		if u.User != nil {
			errs = append(errs, fmt.Errorf("threatq: %s must not carry credentials", v("URL")))
		}
		if u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("threatq: %s must not have a query or fragment", v("URL")))
		}
	}
	switch {
	case c.PasswordGrant():
		if c.Password == "" {
			errs = append(errs, fmt.Errorf("threatq: %s is required with %s (password grant)", v("PASSWORD"), v("EMAIL")))
		}
		if c.ClientID == "" {
			errs = append(errs, fmt.Errorf("threatq: %s (the user's API client id) is required with %s", v("CLIENT_ID"), v("EMAIL")))
		}
	case c.ClientID == "" && c.ClientSecret == "":
		errs = append(errs, fmt.Errorf("threatq: credentials are required: %s, %s and %s (password grant), or %s and %s (client credentials)",
			v("EMAIL"), v("PASSWORD"), v("CLIENT_ID"), v("CLIENT_ID"), v("CLIENT_SECRET")))
	default:
		if c.ClientID == "" {
			errs = append(errs, fmt.Errorf("threatq: %s is required with %s", v("CLIENT_ID"), v("CLIENT_SECRET")))
		}
		if c.ClientSecret == "" {
			errs = append(errs, fmt.Errorf("threatq: %s is required with %s (or set %s for the password grant)", v("CLIENT_SECRET"), v("CLIENT_ID"), v("EMAIL")))
		}
	}
	if c.Insecure && c.CAFile != "" {
		errs = append(errs, fmt.Errorf("threatq: %s and %s: %w; drop %s to verify with the CA file",
			v("INSECURE"), v("CA_FILE"), httpx.ErrInsecureWithCA, v("INSECURE")))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("threatq: %s %s is negative", v("TIMEOUT"), c.Timeout))
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		errs = append(errs, fmt.Errorf("threatq: %s %d is not between 1 and %d", v("PAGE_SIZE"), c.PageSize, MaxPageSize))
	}
	return errors.Join(errs...)
}

// loopback reports whether host is localhost or a loopback address.
func loopback(host string) bool { return httpx.Loopback(host) }

// BasicCredentials returns the user and password pairs c sends as HTTP
// Basic credentials (the client-credentials grant's), for a scrubber.
func (c Config) BasicCredentials() [][2]string {
	return [][2]string{{c.ClientID.Reveal(), c.ClientSecret.Reveal()}}
}

// TransportWarnings returns what to warn about at start-up, naming each
// setting under [DefaultEnvPrefix]: plain http (to the loopback, or
// allowed by ALLOW_HTTP) and INSECURE.
func (c Config) TransportWarnings() []httpx.Warning {
	c.setDefaults()
	p := DefaultEnvPrefix
	_, warns := httpx.Transport{
		System: "threatq", URLs: [][2]string{{p + "URL", c.URL}},
		AllowHTTP: c.AllowHTTP, AllowHTTPVar: p + "ALLOW_HTTP",
		Insecure: c.Insecure, InsecureVar: p + "INSECURE", CAFile: c.CAFile, CAFileVar: p + "CA_FILE",
	}.Check()
	return warns
}
