package httpx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// TLSConfig says how a client verifies the servers it talks to.
type TLSConfig struct {
	// Insecure turns certificate verification off. Callers log a warning
	// when it is set.
	Insecure bool
	// CAFile is a PEM file of extra certificate authorities to trust, on
	// top of the system's.
	CAFile string
}

// NewClient returns an HTTP client with the given per-request timeout and TLS
// settings. Verification is on unless tc.Insecure is set. Redirects are not
// followed: the APIs tqflow talks to never redirect a correct request, and a
// redirect of a token request would send credentials elsewhere. wrap, when
// not nil, wraps the transport once (obs.Metrics.WrapTransport times every
// call); it must return a transport that calls the one it is given.
func NewClient(tc TLSConfig, timeout time.Duration, wrap func(http.RoundTripper) http.RoundTripper) (*http.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if tc.CAFile != "" {
		pem, err := os.ReadFile(tc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: %w", tc.CAFile, errNoCerts)
		}
		tlsConf.RootCAs = pool
	}
	if tc.Insecure {
		tlsConf.InsecureSkipVerify = true //nolint:gosec // The operator asked for it; callers warn.
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConnsPerHost = 64
	var rt http.RoundTripper = tr
	if wrap != nil {
		if rt = wrap(tr); rt == nil {
			return nil, errors.New("WrapTransport returned no transport")
		}
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

var errNoCerts = errors.New("no PEM certificates found")
