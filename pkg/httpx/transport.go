package httpx

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrPlainHTTP is a plain-http URL to a host other than the loopback,
// without the system's ALLOW_HTTP setting: credentials would cross the
// network in clear.
var ErrPlainHTTP = errors.New("plain http to a host that is not the loopback")

// ErrInsecureWithCA is a configuration that both turns certificate
// verification off and names a CA file to verify with: one of the two is
// a mistake.
var ErrInsecureWithCA = errors.New("certificate verification is off and a CA file is set")

// Warning is a transport setting that weakens security, to be logged at
// start-up: which system, which setting, what it does.
type Warning struct {
	// System is the outside system, e.g. "ctr".
	System string
	// Setting is the variable, e.g. "CTR_INSECURE".
	Setting string
	// Problem says what it does, e.g. "TLS certificates are not verified".
	Problem string
}

// Transport is what a client's configuration says about how it reaches
// its server, with the names of the settings for messages.
type Transport struct {
	// System names the system in messages ("threatq", "ctr", "misp", "et").
	System string
	// URLs maps each URL setting's variable to its value; empty values are
	// skipped (checked elsewhere as required or defaulted).
	URLs [][2]string
	// AllowHTTP and its variable: plain http to a non-loopback host.
	AllowHTTP    bool
	AllowHTTPVar string
	// Insecure and its variable: certificate verification off.
	Insecure    bool
	InsecureVar string
	// CAFile and its variable.
	CAFile    string
	CAFileVar string
}

// Check returns the problems of t (plain http to another host without
// AllowHTTP, Insecure with a CA file) and the warnings to log: plain http
// allowed (loopback or AllowHTTP) and Insecure. A URL that does not parse
// is left to the client's own checks.
func (t Transport) Check() (errs []error, warns []Warning) {
	for _, u := range t.URLs {
		name, raw := u[0], u[1]
		if strings.TrimSpace(raw) == "" {
			continue
		}
		pu, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || !strings.EqualFold(pu.Scheme, "http") || pu.Host == "" {
			continue
		}
		switch {
		case Loopback(pu.Hostname()):
			warns = append(warns, Warning{System: t.System, Setting: name, Problem: "plain http to the loopback: traffic is not encrypted"})
		case t.AllowHTTP:
			warns = append(warns, Warning{System: t.System, Setting: t.AllowHTTPVar,
				Problem: fmt.Sprintf("plain http to %s allowed: credentials cross the network in clear", pu.Hostname())})
		default:
			errs = append(errs, fmt.Errorf("%s: %s: %w; use https, or set %s=true for a network you trust",
				t.System, name, ErrPlainHTTP, t.AllowHTTPVar))
		}
	}
	if t.Insecure {
		if t.CAFile != "" {
			errs = append(errs, fmt.Errorf("%s: %s and %s: %w; drop %s to verify with the CA file",
				t.System, t.InsecureVar, t.CAFileVar, ErrInsecureWithCA, t.InsecureVar))
		}
		warns = append(warns, Warning{System: t.System, Setting: t.InsecureVar, Problem: "TLS certificates are not verified: anyone on the path can read and change the traffic"})
	}
	return errs, warns
}

// Loopback reports whether host is localhost or a loopback address.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
