package et

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/httpx"
)

// Default base URLs: the real ET servers.
const (
	DefaultOpenURL  = "https://rules.emergingthreats.net"
	DefaultProURL   = "https://rules.emergingthreatspro.com"
	DefaultBlockURL = "https://rules.emergingthreats.net"
)

// Defaults of the other settings.
const (
	DefaultTimeout = 5 * time.Minute
	DefaultMaxSize = 512 << 20
)

// Config says which ET artefacts to fetch and from where. Fields carry
// caarlos0/env tags without a prefix; services nest it under the ET_
// prefix, which is how Validate names the settings.
type Config struct {
	// Sources lists what to fetch: "open", "open-nogpl", "pro", "block"
	// (the default block-rules files of the flavour's engine),
	// "block:<file>", or "none" (no rules: IP lists only).
	Sources []string `env:"SOURCES" envDefault:"open"`
	// BlockLists lists the IP lists to fetch as indicators, as paths under
	// the block-rules server: fwrules/emerging-Block-IPs.txt,
	// blockrules/compromised-ips.txt. Empty: none. A rules file here, or
	// an IP list in Sources, is refused by Validate.
	BlockLists []string `env:"BLOCK_LISTS"`
	// Flavor is the ruleset flavour: "suricata-<major.minor.patch>" of the
	// local Suricata, as suricata-update sends it (ET maps it onto a fork:
	// 7.0.3 and later to suricata-7.0.3), a fork directory (suricata-5.0,
	// suricata-7.0.3, suricata-8.0), the legacy "suricata",
	// "snort-<version>" of the local Snort (a fourth component is dropped,
	// as pulledpork does: snort-2.9.7.0 asks for snort-2.9.7), "snort-2.9.0"
	// or "snort-edge". See [RequestFlavor] and [DefaultFlavor].
	Flavor string `env:"FLAVOR" envDefault:"suricata-7.0.3"`
	// Oinkcode is the ET Pro subscription code, required for "pro". It is
	// part of the download URL and is never shown.
	Oinkcode config.Secret `env:"OINKCODE"`
	// OpenURL is the root of the ET Open server; the client appends
	// /open/<flavour>/emerging.rules.tar.gz (or /open-nogpl/...).
	OpenURL string `env:"OPEN_URL" envDefault:"https://rules.emergingthreats.net"`
	// ProURL is the root of the ET Pro server; the client appends
	// /<oinkcode>/<flavour>/etpro.rules.tar.gz.
	ProURL string `env:"PRO_URL" envDefault:"https://rules.emergingthreatspro.com"`
	// BlockURL is the root of the block-rules server; the client appends
	// /blockrules/<file>.
	BlockURL string `env:"BLOCK_URL" envDefault:"https://rules.emergingthreats.net"`
	// AllowHTTP allows plain-http server URLs to a host that is not the
	// loopback (a mirror on a private network). The oinkcode, part of the
	// ET Pro path, then travels in clear.
	AllowHTTP bool `env:"ALLOW_HTTP"`
	// Insecure turns TLS certificate verification off (sandboxes only).
	Insecure bool `env:"INSECURE"`
	// CAFile is a PEM file of extra certificate authorities to trust.
	CAFile string `env:"CA_FILE"`
	// Timeout bounds each request, body included.
	Timeout time.Duration `env:"TIMEOUT" envDefault:"5m"`
	// MaxSize caps the size of a downloaded artefact, in bytes.
	MaxSize int64 `env:"MAX_SIZE" envDefault:"536870912"`
	// WrapTransport, when set, wraps the client's HTTP transport (which
	// carries the TLS settings) once, in New, for every call the client
	// makes, token requests included: obs.Metrics.WrapTransport times
	// them. It must return a transport that calls the one it is given.
	// It is not read from the environment.
	WrapTransport func(http.RoundTripper) http.RoundTripper `env:"-"`
	// Scrub, when set, holds the other secrets of the process (app's
	// Env.Scrubber) to scrub out of errors, on top of the oinkcode and
	// the URLs' passwords, which the client always scrubs. It is not read
	// from the environment.
	Scrub *httpx.Scrubber `env:"-"`
}

// setDefaults fills the zero fields of c, so that a Config built in code
// behaves like one read from an empty environment.
func (c *Config) setDefaults() {
	if len(c.Sources) == 0 {
		c.Sources = []string{string(SourceOpen)}
	}
	if c.Flavor == "" {
		c.Flavor = DefaultFlavor
	}
	if c.OpenURL == "" {
		c.OpenURL = DefaultOpenURL
	}
	if c.ProURL == "" {
		c.ProURL = DefaultProURL
	}
	if c.BlockURL == "" {
		c.BlockURL = DefaultBlockURL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxSize == 0 {
		c.MaxSize = DefaultMaxSize
	}
}

// Engine returns the engine the configured flavour is written for.
func (c Config) Engine() Engine {
	if strings.HasPrefix(c.Flavor, "snort") {
		return EngineSnort
	}
	return EngineSuricata
}

// Validate reports every problem with c at once, naming the setting. Zero
// fields count as their defaults.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	pro := false
	for _, name := range c.Sources {
		if strings.TrimSpace(name) == SourceNone {
			continue
		}
		s, err := ParseSource(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("ET_SOURCES: %w", err))
			continue
		}
		pro = pro || s == SourcePro
	}
	for _, name := range c.BlockLists {
		if _, err := ParseList(name); err != nil {
			errs = append(errs, fmt.Errorf("ET_BLOCK_LISTS: %w", err))
		}
	}
	switch {
	case !validFlavor(c.Flavor):
		errs = append(errs, fmt.Errorf("ET_FLAVOR is %q: %s", c.Flavor, flavorHelp))
	}
	switch {
	case pro && c.Oinkcode == "":
		errs = append(errs, errors.New("ET_OINKCODE: required for the pro source"))
	case c.Oinkcode != "" && !validSegment(c.Oinkcode.Reveal()):
		// The value is a secret: say what is wrong, never what it is.
		errs = append(errs, errors.New("ET_OINKCODE: want letters, digits, '.', '-' or '_' only"))
	}
	for _, u := range []struct{ name, value string }{
		{"ET_OPEN_URL", c.OpenURL},
		{"ET_PRO_URL", c.ProURL},
		{"ET_BLOCK_URL", c.BlockURL},
	} {
		if _, err := parseBase(u.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.name, err))
		}
	}
	terrs, _ := c.transport().Check()
	errs = append(errs, terrs...)
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("ET_CA_FILE: %w", err))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("ET_TIMEOUT is %s: want a positive duration", c.Timeout))
	}
	if c.MaxSize < 0 {
		errs = append(errs, fmt.Errorf("ET_MAX_SIZE is %d: want a positive number of bytes", c.MaxSize))
	}
	return errors.Join(errs...)
}

// transport describes how c reaches ET, for the https and INSECURE rules.
func (c Config) transport() httpx.Transport {
	return httpx.Transport{
		System: "et", URLs: [][2]string{{"ET_OPEN_URL", c.OpenURL}, {"ET_PRO_URL", c.ProURL}, {"ET_BLOCK_URL", c.BlockURL}},
		AllowHTTP: c.AllowHTTP, AllowHTTPVar: "ET_ALLOW_HTTP",
		Insecure: c.Insecure, InsecureVar: "ET_INSECURE", CAFile: c.CAFile, CAFileVar: "ET_CA_FILE",
	}
}

// BasicCredentials returns the user and password pairs of the server
// URLs, which net/http sends as HTTP Basic credentials, for a scrubber.
func (c Config) BasicCredentials() [][2]string {
	var out [][2]string
	for _, raw := range []string{c.OpenURL, c.ProURL, c.BlockURL} {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				out = append(out, [2]string{u.User.Username(), p})
			}
		}
	}
	return out
}

// TransportWarnings returns what to warn about at start-up: plain http
// (to the loopback, or allowed by ET_ALLOW_HTTP) and ET_INSECURE.
func (c Config) TransportWarnings() []httpx.Warning {
	c.setDefaults()
	_, warns := c.transport().Check()
	return warns
}

// parseBase checks a server root URL. Its errors never quote the URL, which
// may hold credentials; they quote its redacted form.
func parseBase(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	shown := u.Redacted()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%s: want an http or https URL", shown)
	case u.Host == "":
		return nil, fmt.Errorf("%s: no host", shown)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("%s: want no query or fragment", shown)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}
