package rules_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/rules"
)

// event is what a file reader handed to its callback, as text.
func collect(t *testing.T, p *rules.Parser, input string) ([]string, rules.Stats, error) {
	t.Helper()
	var got []string
	st, err := p.ParseFile(strings.NewReader(input), "test.rules", func(r *rules.Rule, err error) error {
		if err != nil {
			var le *rules.LineError
			if !errors.As(err, &le) {
				t.Errorf("callback error %v is not a *LineError", err)
			}
			got = append(got, fmt.Sprintf("err %s:%d", le.File, le.Line))
			return nil
		}
		got = append(got, fmt.Sprintf("%s:%d sid %d enabled %v", r.File, r.Line, r.SID, r.Enabled))
		return nil
	})
	return got, st, err
}

func TestParseFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		max   int
		want  []string
		stats rules.Stats
	}{
		{
			name:  "rules comments blanks and errors",
			input: "# header (c)\n\nalert tcp any any -> any any (sid:1;)\n#alert tcp any any -> any any (sid:2;)\nbroken line\nalert tcp any any -> any any (sid:3;)",
			want:  []string{"test.rules:3 sid 1 enabled true", "test.rules:4 sid 2 enabled false", "err test.rules:5", "test.rules:6 sid 3 enabled true"},
			stats: rules.Stats{Files: 1, Lines: 6, Enabled: 2, Disabled: 1, Comments: 1, Blank: 1, Errors: 1},
		},
		{
			name:  "continuation keeps the first line number",
			input: "alert tcp any any -> any any (msg:\"a\"; \\\n  content:\"b\"; \\  \r\n sid:1;)\nalert tcp any any -> any any (sid:2;)\n",
			want:  []string{"test.rules:1 sid 1 enabled true", "test.rules:4 sid 2 enabled true"},
			stats: rules.Stats{Files: 1, Lines: 4, Enabled: 2, Continued: 2},
		},
		{
			name:  "continuation at end of file is parsed",
			input: "alert tcp any any -> any any (sid:1;) \\\n",
			want:  []string{"test.rules:1 sid 1 enabled true"},
			stats: rules.Stats{Files: 1, Lines: 1, Enabled: 1},
		},
		{
			name:  "CRLF, lone CR and BOM",
			input: "\uFEFFalert tcp any any -> any any (sid:1;)\r\n#alert tcp any any -> any any (sid:2;)\ralert tcp any any -> any any (sid:3;)\r",
			want:  []string{"test.rules:1 sid 1 enabled true", "test.rules:2 sid 2 enabled false", "test.rules:3 sid 3 enabled true"},
			stats: rules.Stats{Files: 1, Lines: 3, Enabled: 2, Disabled: 1},
		},
		{
			name:  "invalid UTF-8 drops the rule continued onto it",
			input: "alert tcp any any -> any any (msg:\"a\"; \\\n\xff sid:1;)\nalert tcp any any -> any any (sid:2;)\n",
			want:  []string{"err test.rules:1", "test.rules:3 sid 2 enabled true"},
			stats: rules.Stats{Files: 1, Lines: 3, Enabled: 1, Errors: 1, Continued: 1},
		},
		{
			name:  "over-long line is reported and skipped",
			input: "alert tcp any any -> any any (sid:1;)\nalert tcp any any -> any any (msg:\"" + strings.Repeat("x", 200<<10) + "\"; sid:2;)\nalert tcp any any -> any any (sid:3;)\n",
			max:   100 << 10,
			want:  []string{"test.rules:1 sid 1 enabled true", "err test.rules:2", "test.rules:3 sid 3 enabled true"},
			stats: rules.Stats{Files: 1, Lines: 3, Enabled: 2, Errors: 1},
		},
		{
			name:  "long line under the limit",
			input: "alert tcp any any -> any any (msg:\"" + strings.Repeat("x", 200<<10) + "\"; sid:2;)",
			want:  []string{"test.rules:1 sid 2 enabled true"},
			stats: rules.Stats{Files: 1, Lines: 1, Enabled: 1},
		},
		{
			name:  "empty input",
			input: "",
			stats: rules.Stats{Files: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := rules.Parser{MaxLineBytes: tt.max}
			got, st, err := collect(t, &p, tt.input)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			if st != tt.stats {
				t.Errorf("stats %+v, want %+v", st, tt.stats)
			}
		})
	}
}

func TestParseFileStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	n := 0
	err := rules.ParseFile(strings.NewReader(strings.Repeat("alert tcp any any -> any any (sid:1;)\n", 5)), "x", func(*rules.Rule, error) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("err %v after %d calls", err, n)
	}
}

func TestParseFileReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("alert tcp any any -> any any (sid:1;)\nalert tcp any any -> any any (sid:2;)"), errorReader{boom})
	var sids []int
	for rule, err := range rules.Rules(r, "x") {
		if err != nil {
			if !errors.Is(err, boom) {
				t.Errorf("error %v", err)
			}
			continue
		}
		sids = append(sids, rule.SID)
	}
	// The incomplete last line is not parsed.
	if !slices.Equal(sids, []int{1}) {
		t.Errorf("sids %v", sids)
	}
}

func TestRulesIteratorBreak(t *testing.T) {
	t.Parallel()
	n := 0
	for range rules.Rules(strings.NewReader(strings.Repeat("alert tcp any any -> any any (sid:1;)\n", 5)), "x") {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Errorf("n = %d", n)
	}
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

func TestParseClassificationConfig(t *testing.T) {
	t.Parallel()
	in := "# comment\n\nconfig classification: not-suspicious,Not Suspicious Traffic,3\n" +
		"config classification:trojan-activity, A Network Trojan, was detected ,1\n" +
		"config classification: broken,no priority\nconfig reference: url http://\n" +
		"config classification: bad-prio,x,high\n"
	m, err := rules.ParseClassificationConfig(strings.NewReader(in))
	want := map[string]rules.Classification{
		"not-suspicious":  {Name: "not-suspicious", Description: "Not Suspicious Traffic", Priority: 3},
		"trojan-activity": {Name: "trojan-activity", Description: "A Network Trojan, was detected", Priority: 1},
	}
	if len(m) != len(want) {
		t.Errorf("got %v", m)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %+v, want %+v", k, m[k], v)
		}
	}
	var le *rules.LineError
	if !errors.Is(err, rules.ErrClassification) || !errors.As(err, &le) || le.Line != 5 {
		t.Errorf("err %v", err)
	}
}

// tarGz builds a gzipped tarball of the files, in order.
func tarGz(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWalkPriorities(t *testing.T) {
	t.Parallel()
	class := "config classification: trojan-activity,A Network Trojan,1\nconfig classification: misc,Misc,3\n"
	a := "alert tcp any any -> any any (classtype:trojan-activity; sid:1;)\n"
	b := "alert tcp any any -> any any (classtype:misc; priority:2; sid:2;)\n#alert tcp any any -> any any (classtype:misc; sid:3;)\n"
	c := "alert tcp any any -> any any (classtype:unknown; sid:4;)\n"
	want := []string{"rules/a.rules 1 prio 1", "rules/b.rules 2 prio 2", "rules/b.rules 3 prio 3", "rules/c.rules 4 prio 0"}
	// classification.config between, before and after the rules files.
	tgz := tarGz(t, [2]string{"rules/a.rules", a}, [2]string{"rules/b.rules", b}, [2]string{"rules/classification.config", class},
		[2]string{"rules/LICENSE", "x"}, [2]string{"rules/c.rules", c})
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "ruleset.tar.gz")
	if err := os.WriteFile(tarPath, tgz, 0o644); err != nil {
		t.Fatal(err)
	}
	rulesDir := filepath.Join(dir, "rules")
	if err := os.Mkdir(rulesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"a.rules": a, "b.rules": b, "c.rules": c, "classification.config": class, "notes.txt": "x"} {
		if err := os.WriteFile(filepath.Join(rulesDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	record := func(got *[]string, prefix string) func(*rules.Rule, error) error {
		return func(r *rules.Rule, err error) error {
			if err != nil {
				return err
			}
			*got = append(*got, fmt.Sprintf("%s%s %d prio %d", prefix, r.File, r.SID, r.Priority))
			return nil
		}
	}
	t.Run("tarball stream", func(t *testing.T) {
		t.Parallel()
		var got []string
		if err := rules.WalkTarball(bytes.NewReader(tgz), "ruleset.tar.gz", record(&got, "")); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("tarball file", func(t *testing.T) {
		t.Parallel()
		var got []string
		if err := rules.Walk(tarPath, record(&got, "")); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		var got []string
		if err := rules.Walk(rulesDir, record(&got, "rules/")); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("single file", func(t *testing.T) {
		t.Parallel()
		var got []string
		if err := rules.Walk(filepath.Join(rulesDir, "b.rules"), record(&got, "rules/")); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want[1:3]) {
			t.Errorf("got %q, want %q", got, want[1:3])
		}
	})
	t.Run("caller's classifications win", func(t *testing.T) {
		t.Parallel()
		var got []string
		p := rules.Parser{Classifications: map[string]rules.Classification{"trojan-activity": {Priority: 9}}}
		if _, err := p.WalkTarball(bytes.NewReader(tgz), "x", record(&got, "")); err != nil {
			t.Fatal(err)
		}
		if got[0] != "rules/a.rules 1 prio 9" || got[2] != "rules/b.rules 3 prio 0" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("missing path", func(t *testing.T) {
		t.Parallel()
		if err := rules.Walk(filepath.Join(dir, "nope"), record(new([]string), "")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err %v", err)
		}
	})
}

// TestWalkTarballTruncated cuts a real ET tarball short: the walk returns
// ErrTruncated naming the tarball and what was read, after handing over the
// rules read before the cut.
func TestWalkTarballTruncated(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(corpora[0].tarball(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{10, len(data) / 3, len(data) - 20, len(data) - 4} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			t.Parallel()
			for _, classes := range []map[string]rules.Classification{nil, {}} {
				n := 0
				p := rules.Parser{Classifications: classes}
				st, err := p.WalkTarball(bytes.NewReader(data[:cut]), "cut.tar.gz", func(r *rules.Rule, err error) error {
					if err != nil {
						t.Errorf("line error %v", err)
					}
					n++
					return nil
				})
				if !errors.Is(err, rules.ErrTruncated) || !strings.Contains(err.Error(), "cut.tar.gz") ||
					!strings.Contains(err.Error(), fmt.Sprintf("%d rules", st.Rules())) {
					t.Fatalf("err %v", err)
				}
				if n != st.Rules() || (cut > len(data)/2 && n < 10000) {
					t.Errorf("%d rules handed over, stats %+v", n, st)
				}
			}
		})
	}
}
