// Package httpx holds what tqflow's HTTP API clients share: building an
// [http.Client] with safe TLS defaults, classifying failed calls as transient
// or permanent, and reading Retry-After.
//
// Errors returned by the clients built on it carry a Transient method, which
// pkg/bus uses to decide between a delayed redelivery and a dead letter, and a
// RetryAfter method where the server said how long to wait.
package httpx
