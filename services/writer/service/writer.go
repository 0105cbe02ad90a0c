package service

import (
	"github.com/tqflow/tqflow/pkg/threatq"
	"github.com/tqflow/tqflow/services/writer/internal/write"
)

// NewWriter returns the writer's handler on a ThreatQ client, counting
// into stats: what [Run] consumes with, and what the writer's tests
// drive against a simulator.
func NewWriter(tq *threatq.Client, stats *Stats) *write.Writer {
	return &write.Writer{ThreatQ: adapter{tq}, Stats: stats}
}
