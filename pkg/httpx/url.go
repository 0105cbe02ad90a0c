package httpx

import (
	"fmt"
	"net/url"
)

// CheckBaseURL reports every problem of raw as the base URL of an API:
// it must parse, be http or https, name a host, and carry no credentials,
// query or fragment. Errors read "<pkg>: <name> …", e.g.
// "misp: URL has no host".
func CheckBaseURL(pkg, name, raw string) []error {
	u, err := url.Parse(raw)
	if err != nil {
		return []error{fmt.Errorf("%s: parse %s: %w", pkg, name, err)}
	}
	var errs []error
	if u.Scheme != "https" && u.Scheme != "http" {
		errs = append(errs, fmt.Errorf("%s: %s scheme %q is not http or https", pkg, name, u.Scheme))
	}
	if u.Host == "" {
		errs = append(errs, fmt.Errorf("%s: %s has no host", pkg, name))
	}
	if u.User != nil {
		errs = append(errs, fmt.Errorf("%s: %s must not carry credentials", pkg, name))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("%s: %s must not have a query or fragment", pkg, name))
	}
	return errs
}
