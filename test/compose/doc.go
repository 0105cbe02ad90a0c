// Package compose tests tqflow in containers: the images of make images,
// driven with docker-compose (v1) against the sandbox service. The tests
// need a Docker daemon and docker-compose and run only with
// TQFLOW_COMPOSE=1 (make test-compose sets it after building the images).
package compose
