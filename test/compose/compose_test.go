package compose

import (
	"testing"
	"time"
)

// Four enrichers and two writers write exactly what one of each writes.
func TestScaledSameLedger(t *testing.T) {
	requireCompose(t)
	want := baseline(t)
	got := plainRun(t, 4, 2)
	requireExact(t, got, want)
}

// SIGKILL an enricher and a writer mid-run and restart the NATS container:
// what they held is redelivered, the stream survives on its volume, and
// the ledger is still exact.
func TestKillWorkersAndRestartNATS(t *testing.T) {
	requireCompose(t)
	want := baseline(t)
	start := time.Now()
	p := newProject(t, false)
	p.must(5*time.Minute, "up", "-d", "nats", "sandbox")
	p.waitNATS()
	p.must(5*time.Minute, "up", "-d", "--scale", "enricher=2", "--scale", "writer=2", "nats", "sandbox", "enricher", "writer")
	sb := p.waitSandbox()
	p.setCTRLatency(150 * time.Millisecond)
	p.fetchOnce()
	p.waitLedger(sb, len(want)/10, 3*time.Minute)
	l, _ := p.ledger(sb)
	t.Logf("mid-run at %d of %d ledger entries: docker kill an enricher and a writer", len(l), len(want))
	enrichers, writers := p.containers("enricher"), p.containers("writer")
	if len(enrichers) != 2 || len(writers) != 2 {
		t.Fatalf("want 2 enrichers and 2 writers, have %d and %d", len(enrichers), len(writers))
	}
	out, err := runDocker("kill", "--signal", "KILL", enrichers[0], writers[0])
	if err != nil {
		t.Fatalf("docker kill: %v\n%s", err, out)
	}
	p.must(3*time.Minute, "restart", "nats")
	l, _ = p.ledger(sb)
	t.Logf("NATS restarted at %d ledger entries", len(l))
	p.setCTRLatency(0)
	got := p.waitDone(sb, 8*time.Minute)
	requireExact(t, got, want)
	t.Logf("exact after kills and a NATS restart, in %s", time.Since(start).Round(100*time.Millisecond))
}

// On the three-node cluster (streams at three replicas), stopping one NATS
// node mid-run costs nothing: the run completes with an exact ledger.
func TestClusterLosesANode(t *testing.T) {
	requireCompose(t)
	want := baseline(t)
	start := time.Now()
	p := newProject(t, true)
	p.must(5*time.Minute, "up", "-d", "nats", "nats-2", "nats-3", "sandbox")
	p.waitNATS()
	// One worker creates the streams and buckets before the others start:
	// several creating them at once on a fresh cluster leaves some waiting,
	// unanswered, for their two-minute connect timeout (then they restart
	// and go on). Reported to be fixed in pkg/bus.
	p.must(5*time.Minute, "up", "-d", "--no-deps", "writer")
	p.waitHealthy("writer", 2*time.Minute)
	p.must(5*time.Minute, "up", "-d", "--no-deps", "--scale", "enricher=2", "--scale", "writer=2", "enricher", "writer")
	sb := p.waitSandbox()
	p.setCTRLatency(150 * time.Millisecond)
	p.fetchOnce()
	p.waitLedger(sb, len(want)/10, 3*time.Minute)
	l, _ := p.ledger(sb)
	t.Logf("mid-run at %d of %d ledger entries: stopping nats-2", len(l), len(want))
	p.must(2*time.Minute, "stop", "nats-2")
	p.setCTRLatency(0)
	got := p.waitDone(sb, 8*time.Minute)
	requireExact(t, got, want)
	t.Logf("exact with one node of three stopped, in %s", time.Since(start).Round(100*time.Millisecond))
}
