package service_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5" //nolint:gosec // ET's change marker, as in the fetcher.
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/testkit"
	"github.com/tqflow/tqflow/schemas"
)

// oracleRule is one rule of pkg/rules/testdata/suricata_update.py's dump:
// suricata-update's parser, with msg as Suricata's detect-msg.c reads it.
type oracleRule struct {
	File       string      `json:"file"`
	Errors     *int        `json:"errors"`
	SID        int         `json:"sid"`
	Rev        int         `json:"rev"`
	Enabled    bool        `json:"enabled"`
	Msg        string      `json:"msg"`
	Classtype  string      `json:"classtype"`
	References [][2]string `json:"references"`
	Metadata   [][2]string `json:"metadata"`
	Raw        string      `json:"raw"`
}

// oraclePython returns a python3 that can import suricata.update.rule, or
// skips (fails under CI, which installs suricata-update).
func oraclePython(t *testing.T) string {
	t.Helper()
	candidates := []string{"python3", "/usr/bin/python3"}
	if p := os.Getenv("TQFLOW_PYTHON"); p != "" {
		candidates = []string{p}
	}
	for _, py := range candidates {
		if exec.Command(py, "-c", "import suricata.update.rule").Run() == nil {
			return py
		}
	}
	msg := "suricata-update's parser is not available (apt-get install -y suricata-update)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("skipping: " + msg)
	return ""
}

// untar writes the tarball's regular members under dir and returns their
// names, in archive order.
func untar(t *testing.T, tgz []byte, dir string) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		name := path.Clean(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
}

// expectedWrite is what the loader must write for r, from its spec: name
// the msg (or sid:<sid> when blank), value the raw rule, the status of its
// state, and the attributes SID, Revision, Classtype, Category (the file's
// base name without .rules, .suricata and an emerging- or etpro- prefix,
// upper case), each reference "type,value" and each distinct metadata
// entry "key value", in the rule's order, trimmed, at most 10000 bytes.
func expectedWrite(r oracleRule, typ string) schemas.SignatureWrite {
	name := r.Msg
	if strings.TrimSpace(name) == "" {
		name = "sid:" + strconv.Itoa(r.SID)
	}
	status := "Active"
	if !r.Enabled {
		status = "Review"
	}
	var attrs []schemas.Attribute
	add := func(n, v string) {
		v = strings.TrimSpace(v)
		if v == "" {
			return
		}
		attrs = append(attrs, schemas.Attribute{Name: n, Value: v[:min(len(v), 10000)]})
	}
	add("SID", strconv.Itoa(r.SID))
	add("Revision", strconv.Itoa(r.Rev))
	add("Classtype", r.Classtype)
	cat := strings.ToLower(path.Base(r.File))
	cat = strings.TrimSuffix(strings.TrimSuffix(cat, ".rules"), ".suricata")
	cat = strings.TrimPrefix(strings.TrimPrefix(cat, "emerging-"), "etpro-")
	add("Category", strings.ToUpper(cat))
	for _, ref := range r.References {
		add("Reference", ref[0]+","+ref[1])
	}
	seen := map[string]bool{}
	for _, kv := range r.Metadata {
		v := strings.TrimSpace(kv[0] + " " + kv[1])
		if !seen[v] {
			seen[v] = true
			add("Metadata", v)
		}
	}
	return schemas.SignatureWrite{Name: name, Value: r.Raw, Type: typ, Status: status, Source: "Emerging Threats", Attributes: attrs}
}

// TestLoaderAgreesWithOracle loads each real ET ruleset in shared/data/et,
// non-standard rules included, and compares every signature write, field
// by field, with what the oracle (suricata-update's parser, msg as
// Suricata shows it) says the loader must write for each rule.
func TestLoaderAgreesWithOracle(t *testing.T) {
	if raceEnabled {
		t.Skip("skipping under the race detector: three real corpora through the loader take minutes there; make test runs it without")
	}
	t.Parallel()
	py := oraclePython(t)
	script, err := filepath.Abs(filepath.Join("..", "..", "..", "pkg", "rules", "testdata", "suricata_update.py"))
	if err != nil {
		t.Fatal(err)
	}
	corpora := []struct{ dir, flavor string }{
		{"suricata-2017", "suricata-4.0"},
		{"snort-2.9.0-2020", "snort-2.9.0"},
		{"suricata-5.0-2025", "suricata-5.0"},
	}
	for _, c := range corpora {
		t.Run(c.dir, func(t *testing.T) {
			t.Parallel()
			tgz, err := os.ReadFile(sharedtest.Path(t, "et/"+c.dir+"/emerging.rules.tar.gz"))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			var files, paths []string
			for _, m := range untar(t, tgz, dir) {
				if b := path.Base(m); strings.HasSuffix(b, ".rules") && b != "emerging-all.rules" {
					files = append(files, m)
					paths = append(paths, filepath.Join(dir, filepath.FromSlash(path.Clean(m))))
				}
			}
			cmd := exec.Command(py, append([]string{script, "dump", dir}, paths...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("run the oracle: %v\n%s", err, stderr.Bytes())
			}
			want := map[int]schemas.SignatureWrite{}
			dec := json.NewDecoder(bytes.NewReader(out))
			for dec.More() {
				var r oracleRule
				if err := dec.Decode(&r); err != nil {
					t.Fatal(err)
				}
				if r.Errors == nil {
					want[r.SID] = expectedWrite(r, "Snort") // A stock ThreatQ: Suricata falls back to Snort.
				}
			}

			cfg := testConfig()
			cfg.IncludeNonStandard = true
			h := newHarness(t, cfg)
			ctx := context.Background()
			sum := md5.Sum(tgz) //nolint:gosec // See the import.
			md := hex.EncodeToString(sum[:])
			if _, err := h.objs.PutBytes(ctx, md+".tar.gz", tgz); err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				data, err := json.Marshal(schemas.Ruleset{Schema: schemas.RulesetV1, Instance: "default", Source: "open", Flavor: c.flavor,
					MD5: md, Object: md + ".tar.gz", File: f, Files: len(files)})
				if err != nil {
					t.Fatal(err)
				}
				if err := h.b.Publish(ctx, bus.Outgoing{Subject: bus.RulesetSubject("default"), ID: "default:" + md + ":" + f, Data: data}); err != nil {
					t.Fatal(err)
				}
			}
			if !testkit.Wait(func() bool { return h.settled.Load() >= int64(len(files)) }, 3*time.Minute) {
				t.Fatalf("timed out: %d of %d files loaded", h.settled.Load(), len(files))
			}
			got := readSignatureWrites(t, h.b)
			if len(got) != len(want) {
				t.Errorf("%d signature writes, the oracle has %d rules", len(got), len(want))
			}
			mismatch := 0
			for _, g := range got {
				id := attr(g, "SID")
				sid, _ := strconv.Atoi(id)
				w, ok := want[sid]
				if !ok {
					mismatch++
					t.Errorf("write for sid %s the oracle does not have", id)
					continue
				}
				delete(want, sid)
				gj, _ := json.Marshal(g)
				wj, _ := json.Marshal(w)
				if !bytes.Equal(gj, wj) {
					mismatch++
					if mismatch <= 10 {
						t.Errorf("sid %d:\nloader %s\noracle %s", sid, gj, wj)
					}
				}
			}
			for sid := range want {
				mismatch++
				if mismatch <= 20 {
					t.Errorf("sid %d: no write", sid)
				}
			}
			t.Logf("%d writes compared with the oracle, %d mismatches", len(got), mismatch)
		})
	}
}

func attr(w schemas.SignatureWrite, name string) string {
	for _, a := range w.Attributes {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// readSignatureWrites returns every signature write on the WRITES stream.
func readSignatureWrites(t *testing.T, b *bus.Bus) []schemas.SignatureWrite {
	t.Helper()
	var out []schemas.SignatureWrite
	for _, m := range bustest.Stored(t, b, bus.StreamWrites, bus.SubjectWriteSignature) {
		var w schemas.Write
		if err := schemas.Decode(m.Data(), &w); err != nil {
			t.Fatal(err)
		}
		out = append(out, *w.Signature)
	}
	return out
}
