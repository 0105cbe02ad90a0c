package rules_test

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/rules"
	"github.com/tqflow/tqflow/pkg/sharedtest"
)

// corpus is one of the ET rulesets in shared/data/et, with the counts its
// README.md gives.
type corpus struct {
	name     string
	enabled  int
	disabled int
}

func (c corpus) tarball(t testing.TB) string {
	t.Helper()
	return sharedtest.Path(t, "et/"+c.name+"/emerging.rules.tar.gz")
}

// corpora are the saved ET rulesets; the counts are those of
// shared/data/et/README.md and the contract's section 2.2.
var corpora = []corpus{
	{name: "suricata-2017", enabled: 19556, disabled: 4350},
	{name: "snort-2.9.0-2020", enabled: 19475, disabled: 9420},
	{name: "suricata-5.0-2025", enabled: 14966, disabled: 10383},
}

// extract unpacks the tarball into a new temporary directory and returns the
// directory and the paths, relative to it with '/' separators, of its .rules
// files, sorted.
func extract(t testing.TB, tarball string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var files []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(hdr.Name)
		if strings.HasPrefix(name, "../") || path.IsAbs(name) {
			t.Fatalf("unsafe member name %q", hdr.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(dst)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".rules") {
			files = append(files, name)
		}
	}
	slices.Sort(files)
	return dir, files
}

// walkAll reads the ruleset at p and returns its rules and line errors.
func walkAll(t testing.TB, p string) ([]*rules.Rule, []error, rules.Stats) {
	t.Helper()
	var (
		rs   []*rules.Rule
		errs []error
		pr   rules.Parser
	)
	st, err := pr.Walk(p, func(r *rules.Rule, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		rs = append(rs, r)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", p, err)
	}
	return rs, errs, st
}

// suricataUpdatePython returns a Python interpreter that can import
// suricata.update.rule: $TQFLOW_PYTHON, python3, or /usr/bin/python3 (where
// Debian's suricata-update package installs the module even when another
// python3 comes first on PATH). Without one the test is skipped, except in
// CI (the CI variable set), where it fails: CI installs suricata-update.
func suricataUpdatePython(t testing.TB) string {
	t.Helper()
	candidates := []string{"python3", "/usr/bin/python3"}
	if p := os.Getenv("TQFLOW_PYTHON"); p != "" {
		candidates = []string{p}
	}
	for _, py := range candidates {
		if err := exec.Command(py, "-c", "import suricata.update.rule").Run(); err == nil {
			return py
		}
	}
	msg := "suricata-update's parser is not available: no python3 in " + strings.Join(candidates, ", ") +
		` can "import suricata.update.rule"; install it with: apt-get install -y suricata-update`
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("skipping: " + msg)
	return ""
}

// helperScript is the Python side of the agreement test and the benchmark.
func helperScript(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "suricata_update.py"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
