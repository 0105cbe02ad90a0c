// Package write is the writer's logic: apply write.v1 messages to ThreatQ
// in bulk, idempotently, so that a redelivered write leaves ThreatQ as it
// was; the runner acknowledges a message only after ThreatQ confirmed it.
package write
