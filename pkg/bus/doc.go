// Package bus is tqflow's messaging layer on NATS JetStream.
package bus
