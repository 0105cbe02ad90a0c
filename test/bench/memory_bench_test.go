package bench_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
)

// BenchmarkFetcherMemory streams a saved search of a million indicators
// (TQFLOW_BENCH_MEMORY_INDICATORS) through a tqflow fetcher process and
// reports that process's peak resident memory. The simulator runs in a
// process of its own, so its memory does not count.
func BenchmarkFetcherMemory(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("TQFLOW_BENCH_MEMORY_INDICATORS"); v != "" {
		fmt.Sscan(v, &n)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "tqflow")
	build := exec.Command("go", "build", "-o", bin, "github.com/tqflow/tqflow/services/tqflow")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("build tqflow: %v", err)
	}
	for range b.N {
		b.StopTimer()
		// The sandbox, in its own process; its first lines are the
		// variables that point tqflow at it.
		sbCmd := exec.Command(bin, "sandbox", "--indicators", fmt.Sprint(n), "--port", "0", "--rules", "0", "-v", "1")
		out, err := sbCmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		sbCmd.Stderr = os.Stderr
		if err := sbCmd.Start(); err != nil {
			b.Fatal(err)
		}
		env := os.Environ()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "# Each simulator") {
				break
			}
			if !strings.HasPrefix(line, "#") && strings.Contains(line, "=") {
				env = append(env, line)
			}
		}
		go func() { _, _ = bufioDrain(out) }()

		srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: filepath.Join(dir, "nats"), Port: -1, MaxStore: 8 << 30}, nil)
		if err != nil {
			b.Fatal(err)
		}
		env = append(env, "NATS_URL="+srv.ClientURL(), "JOBS=ctr", "GOMAXPROCS=2")
		fetcher := exec.Command(bin, "fetcher", "--once", "-v", "1")
		fetcher.Env = env
		fetcher.Stderr = os.Stderr
		b.StartTimer()
		start := time.Now()
		err = fetcher.Run()
		elapsed := time.Since(start)
		b.StopTimer()
		_ = sbCmd.Process.Signal(syscall.SIGTERM)
		_ = sbCmd.Wait()
		if err != nil {
			srv.Shutdown()
			b.Fatalf("fetcher: %v", err)
		}
		peakMB := float64(fetcher.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
		b.ReportMetric(peakMB, "peak-MB")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "indicators/s")
		fmt.Printf("\nfetcher streaming a %d-indicator saved search: peak RSS %.0f MB (target: at most 200 MB), %s, %.0f indicators/s\n\n",
			n, peakMB, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
		srv.Shutdown()
		_ = os.RemoveAll(filepath.Join(dir, "nats"))
	}
}

func bufioDrain(r interface{ Read([]byte) (int, error) }) (int, error) {
	buf := make([]byte, 4096)
	total := 0
	for {
		n, err := r.Read(buf)
		total += n
		if err != nil {
			return total, err
		}
	}
}
