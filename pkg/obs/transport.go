package obs

import (
	"net/http"
	"time"
)

// Transport returns a RoundTripper that times every call made through next
// (http.DefaultTransport when nil) as tqflow_api_request_duration_seconds
// of system, labelled with the answer's status class, or "error" when
// there was no answer. Give it to an API client's http.Client.
func (m *Metrics) Transport(system string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{m: m, system: system, next: next}
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
