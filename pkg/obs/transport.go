package obs

import (
	"net/http"
	"time"
)

// The systems tqflow calls, as the system label of
// tqflow_api_request_duration_seconds.
const (
	SystemThreatQ = "threatq"
	SystemCTR     = "ctr"
	SystemMISP    = "misp"
	SystemET      = "et"
)

// Transport returns a RoundTripper that times every call made through next
// (http.DefaultTransport when nil) as tqflow_api_request_duration_seconds
// of system, labelled with the answer's status class, or "error" when
// there was no answer. Give it to an API client's http.Client. The
// histogram is registered once, by [New]: any number of transports, for
// any number of clients, share it.
func (m *Metrics) Transport(system string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{m: m, system: system, next: next}
}

// WrapTransport returns a function that wraps a client's own transport in
// [Metrics.Transport] of system: the WrapTransport setting of the
// threatq, ctr, misp and et client configurations. On nil metrics it
// returns nil, which those clients take as no wrapping.
func (m *Metrics) WrapTransport(system string) func(http.RoundTripper) http.RoundTripper {
	if m == nil {
		return nil
	}
	return func(next http.RoundTripper) http.RoundTripper { return m.Transport(system, next) }
}

type transport struct {
	m      *Metrics
	system string
	next   http.RoundTripper
}

// RoundTrip implements http.RoundTripper. It times until the headers
// arrive: reading the body is the caller's.
func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	t.m.observeAPI(t.system, status, err, time.Since(start))
	return resp, err
}
