// Package test holds tqflow's cross-service tests: the whole pipeline
// in-process on an embedded NATS server against the simulators (e2e), and
// the benchmarks.
package test
