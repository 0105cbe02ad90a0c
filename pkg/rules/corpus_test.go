package rules_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tqflow/tqflow/pkg/rules"
)

// physicalLines counts lines as Python's universal newlines do: each LF,
// CRLF or lone CR ends a line, and a last line without one counts too.
func physicalLines(b []byte) int {
	n := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\n':
			n++
		case '\r':
			n++
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		}
	}
	if len(b) > 0 && b[len(b)-1] != '\n' && b[len(b)-1] != '\r' {
		n++
	}
	return n
}

// TestCorpusCounts checks, for every saved ET ruleset, that the enabled and
// disabled counts are the README's, and that every physical line of every
// .rules file is a rule, a comment, a blank line, an error or a
// continuation.
func TestCorpusCounts(t *testing.T) {
	t.Parallel()
	for _, c := range corpora {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tarball := c.tarball(t)
			tarRules, tarErrs, tarSt := walkAll(t, tarball)
			if tarSt.Enabled != c.enabled || tarSt.Disabled != c.disabled {
				t.Errorf("enabled/disabled = %d/%d, README says %d/%d", tarSt.Enabled, tarSt.Disabled, c.enabled, c.disabled)
			}
			if len(tarRules) != c.enabled+c.disabled {
				t.Errorf("callback saw %d rules, want %d", len(tarRules), c.enabled+c.disabled)
			}
			for _, err := range tarErrs {
				t.Errorf("line error: %v", err)
			}

			dir, files := extract(t, tarball)
			var sum rules.Stats
			for _, name := range files {
				data, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				var p rules.Parser
				st, err := p.ParseFile(bytes.NewReader(data), name, func(*rules.Rule, error) error { return nil })
				if err != nil {
					t.Fatalf("parse %s: %v", name, err)
				}
				want := physicalLines(data)
				got := st.Enabled + st.Disabled + st.Comments + st.Blank + st.Errors + st.Continued
				if st.Lines != want || got != want {
					t.Errorf("%s: %d physical lines, parser read %d and accounted for %d (%+v)", name, want, st.Lines, got, st)
				}
				sum.Add(st)
			}
			if sum != tarSt {
				t.Errorf("per-file stats %+v differ from the tarball walk %+v", sum, tarSt)
			}

			// The same ruleset read as a directory and as a tarball stream
			// gives the same rules in the same order, priorities included.
			dirRules, _, dirSt := walkAll(t, filepath.Join(dir, "rules"))
			if dirSt != tarSt {
				t.Errorf("directory walk stats %+v, tarball %+v", dirSt, tarSt)
			}
			f, err := os.Open(tarball)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			var streamRules []*rules.Rule
			var p rules.Parser
			streamSt, err := p.WalkTarball(bufio.NewReader(f), "stream", func(r *rules.Rule, err error) error {
				if err == nil {
					streamRules = append(streamRules, r)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if streamSt != tarSt {
				t.Errorf("stream stats %+v, tarball %+v", streamSt, tarSt)
			}
			key := func(r *rules.Rule) string {
				return fmt.Sprintf("%s:%d %d:%d prio %d", filepath.Base(r.File), r.Line, r.GID, r.SID, r.Priority)
			}
			tk, dk, sk := mapKeys(tarRules, key), mapKeys(dirRules, key), mapKeys(streamRules, key)
			slices.Sort(tk) // the tarball is in archive order, the directory in name order
			slices.Sort(dk)
			if !slices.Equal(tk, dk) {
				t.Errorf("directory walk and tarball walk disagree")
			}
			if !slices.Equal(mapKeys(tarRules, key), sk) {
				t.Errorf("stream walk and tarball walk disagree")
			}
			noPrio := 0
			for _, r := range tarRules {
				if r.Classtype != "" && r.Priority == 0 {
					noPrio++
				}
			}
			if noPrio > 0 {
				t.Errorf("%d rules with a classtype got no priority from classification.config", noPrio)
			}
		})
	}
}

func mapKeys(rs []*rules.Rule, key func(*rules.Rule) string) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = key(r)
	}
	return out
}

// pyRule is one line of testdata/suricata_update.py's dump; a line with
// Errors set is the summary of a file.
type pyRule struct {
	File       string      `json:"file"`
	Errors     *int        `json:"errors"`
	GID        int         `json:"gid"`
	SID        int         `json:"sid"`
	Rev        int         `json:"rev"`
	Enabled    bool        `json:"enabled"`
	Action     string      `json:"action"`
	Proto      string      `json:"proto"`
	Src        string      `json:"src"`
	SrcPort    string      `json:"sport"`
	Direction  string      `json:"direction"`
	Dst        string      `json:"dst"`
	DstPort    string      `json:"dport"`
	Msg        string      `json:"msg"`
	MsgRaw     string      `json:"msg_raw"`
	Classtype  string      `json:"classtype"`
	References [][2]string `json:"references"`
	Metadata   [][2]string `json:"metadata"`
	Flowbits   []string    `json:"flowbits"`
	Raw        string      `json:"raw"`
}

// goRule renders r in the shape of pyRule for comparison.
func goRule(r *rules.Rule) pyRule {
	p := pyRule{
		File: r.File, GID: r.GID, SID: r.SID, Rev: r.Rev, Enabled: r.Enabled, Action: r.Action,
		Proto: r.Proto, Src: r.Src, SrcPort: r.SrcPort, Direction: r.Direction, Dst: r.Dst, DstPort: r.DstPort,
		Msg: r.Msg, MsgRaw: r.RawMsg(), Classtype: r.Classtype, Raw: r.Raw,
		References: [][2]string{}, Metadata: [][2]string{}, Flowbits: []string{},
	}
	for _, ref := range r.References {
		p.References = append(p.References, [2]string{ref.Type, ref.Value})
	}
	for _, kv := range r.Metadata {
		p.Metadata = append(p.Metadata, [2]string{kv.Key, kv.Value})
	}
	p.Flowbits = append(p.Flowbits, r.Flowbits...)
	return p
}

// TestSuricataUpdateAgreement parses every rule of every saved ET ruleset
// with suricata-update's parser and with this package, and compares them
// field by field: gid, sid, rev, enabled, action, the header, msg (Msg
// against the oracle's model of Suricata's detect-msg.c; RawMsg against
// suricata-update's raw msg text), classtype, references, metadata,
// flowbits and the raw text. It also checks that suricata-update logs no error where the
// package reports none.
func TestSuricataUpdateAgreement(t *testing.T) {
	t.Parallel()
	py := suricataUpdatePython(t)
	script := helperScript(t)
	for _, c := range corpora {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir, files := extract(t, c.tarball(t))
			cmd := exec.Command(py, append([]string{script, "dump", dir}, prefix(dir, files)...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("run suricata-update's parser: %v\n%s", err, stderr.Bytes())
			}
			want := map[string]pyRule{}
			pyErrors := map[string]int{}
			dec := json.NewDecoder(bytes.NewReader(out))
			for dec.More() {
				var r pyRule
				if err := dec.Decode(&r); err != nil {
					t.Fatal(err)
				}
				if r.Errors != nil {
					pyErrors[r.File] = *r.Errors
					continue
				}
				k := fmt.Sprintf("%d:%d", r.GID, r.SID)
				if _, dup := want[k]; dup {
					t.Fatalf("suricata-update: duplicate rule %s", k)
				}
				want[k] = r
			}
			if len(want) != c.enabled+c.disabled {
				t.Errorf("suricata-update parsed %d rules, README says %d", len(want), c.enabled+c.disabled)
			}

			got := map[string]pyRule{}
			goErrors := map[string]int{}
			for _, name := range files {
				f, err := os.Open(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				for r, err := range rules.Rules(f, name) {
					if err != nil {
						goErrors[name]++
						t.Logf("%v", err)
						continue
					}
					got[fmt.Sprintf("%d:%d", r.GID, r.SID)] = goRule(r)
				}
				_ = f.Close()
			}
			if !maps(pyErrors, goErrors) {
				t.Errorf("error lines per file: suricata-update %v, rules %v", pyErrors, goErrors)
			}
			mismatch := 0
			for k, w := range want {
				g, ok := got[k]
				if !ok {
					mismatch++
					t.Errorf("rule %s (%s) parsed by suricata-update only", k, w.File)
					continue
				}
				wj, _ := json.Marshal(w)
				gj, _ := json.Marshal(g)
				if !bytes.Equal(wj, gj) {
					mismatch++
					if mismatch <= 10 {
						t.Errorf("rule %s differs:\nsuricata-update %s\nrules           %s", k, wj, gj)
					}
				}
			}
			for k, g := range got {
				if _, ok := want[k]; !ok {
					mismatch++
					t.Errorf("rule %s (%s:%d) parsed by rules only", k, g.File, 0)
				}
			}
			t.Logf("%d rules compared, %d mismatches", len(want), mismatch)
		})
	}
}

func prefix(dir string, files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = filepath.Join(dir, filepath.FromSlash(f))
	}
	return out
}

// maps reports whether a and b hold the same non-zero counts.
func maps(a, b map[string]int) bool {
	for k, v := range a {
		if v != b[k] {
			return false
		}
	}
	for k, v := range b {
		if v != a[k] {
			return false
		}
	}
	return true
}
