package rules_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/rules"
)

// corpusFiles extracts a corpus and returns its directory, the paths of its
// .rules files and their contents, read into memory.
func corpusFiles(b *testing.B, c corpus) (string, []string, [][]byte) {
	b.Helper()
	dir, files := extract(b, c.tarball(b))
	paths := prefix(dir, files)
	data := make([][]byte, len(paths))
	for i, p := range paths {
		var err error
		if data[i], err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
	return dir, paths, data
}

// parseAll parses the in-memory files and returns the number of rules.
func parseAll(b *testing.B, data [][]byte) int {
	n := 0
	for _, d := range data {
		err := rules.ParseFile(bytes.NewReader(d), "bench.rules", func(r *rules.Rule, err error) error {
			if err == nil {
				n++
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return n
}

// BenchmarkParseFile reports the rules parsed per second by ParseFile over
// each saved ET ruleset, read into memory first.
func BenchmarkParseFile(b *testing.B) {
	for _, c := range corpora {
		b.Run(c.name, func(b *testing.B) {
			_, _, data := corpusFiles(b, c)
			size := 0
			for _, d := range data {
				size += len(d)
			}
			b.SetBytes(int64(size))
			total := 0
			b.ResetTimer()
			for b.Loop() {
				total += parseAll(b, data)
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rules/s")
		})
	}
}

// BenchmarkParse reports the lines per second of Parse alone over every
// line of the three rulesets (comments and blank lines included).
func BenchmarkParse(b *testing.B) {
	var lines []string
	for _, c := range corpora {
		_, _, data := corpusFiles(b, c)
		for _, d := range data {
			lines = append(lines, strings.Split(string(d), "\n")...)
		}
	}
	total := 0
	b.ResetTimer()
	for b.Loop() {
		for _, l := range lines {
			if r, err := rules.Parse(l); err == nil && r.SID != 0 {
				total++
			}
		}
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rules/s")
}

// BenchmarkSuricataUpdate times suricata-update's parser
// (rule.parse_fileobj) over the three rulesets, files read into memory
// first, measured inside Python with time.perf_counter; it times this
// package's ParseFile over the same data in the same run and reports both
// rates and their ratio (go/suricata-update). It is skipped when
// suricata-update is not installed (and fails in CI).
func BenchmarkSuricataUpdate(b *testing.B) {
	py := suricataUpdatePython(b)
	script := helperScript(b)
	var (
		paths []string
		data  [][]byte
	)
	for _, c := range corpora {
		_, p, d := corpusFiles(b, c)
		paths = append(paths, p...)
		data = append(data, d...)
	}
	var pyRules, pySeconds float64
	b.ResetTimer()
	for b.Loop() {
		out, err := exec.Command(py, append([]string{script, "bench", "1"}, paths...)...).Output()
		if err != nil {
			b.Fatalf("run suricata-update's parser: %v", err)
		}
		var res struct {
			Rules   float64 `json:"rules"`
			Seconds float64 `json:"seconds"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			b.Fatalf("decode %q: %v", out, err)
		}
		pyRules += res.Rules
		pySeconds += res.Seconds
	}
	b.StopTimer()
	// The Go side, over the same in-memory files, for at least a second.
	goRules, start := 0, time.Now()
	for time.Since(start) < time.Second {
		goRules += parseAll(b, data)
	}
	goRate := float64(goRules) / time.Since(start).Seconds()
	pyRate := pyRules / pySeconds
	b.ReportMetric(pyRate, "rules/s")
	b.ReportMetric(goRate, "go-rules/s")
	b.ReportMetric(goRate/pyRate, "go/suricata-update")
}
