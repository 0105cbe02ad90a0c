package e2e_test

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/sim/etsim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
)

// TestETJob is the ET signatures job end to end: the real 2017 Suricata
// ruleset through fetcher, signature-loader and writer into the ThreatQ
// simulator; again with the same md5; then a new release with a few revs
// bumped and one rule disabled; with standard rules only, the disabled
// rule's file loaded once more.
func TestETJob(t *testing.T) {
	t.Parallel()
	tarball, err := os.ReadFile(sharedtest.Path(t, "et/suricata-2017/emerging.rules.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	const enabled, disabled = 19556, 4350 // The corpus README's counts.
	tests := []struct {
		name        string
		nonStandard bool
		want        int
	}{
		{"standard rules only", false, enabled},
		{"with non-standard rules", true, enabled + disabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, sandbox.Options{Seed: 51})
			if err := h.sb.ET.Put("open", "suricata-4.0", tarball); err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{
				"JOBS": "et", "ET_FLAVOR": "suricata-4.0", "ET_SOURCES": "open",
				"ET_INCLUDE_NONSTANDARD": strconv.FormatBool(tt.nonStandard),
				"ET_STANDARD_STATUS":     "active", "ET_NONSTANDARD_STATUS": "Review",
			}
			s := h.runOnce(nil, vars)
			sigs := h.sb.ThreatQ.Signatures()
			statuses := map[string]int{}
			for _, sg := range sigs {
				statuses[sg.Status]++
				if sg.Type != "Snort" { // A stock ThreatQ has no Suricata type.
					t.Fatalf("signature %q has type %q, want the Snort fallback", sg.Name, sg.Type)
				}
			}
			wantStatuses := map[string]int{"Active": enabled}
			if tt.nonStandard {
				wantStatuses["Review"] = disabled
			}
			if len(sigs) != tt.want || len(statuses) != len(wantStatuses) || statuses["Active"] != wantStatuses["Active"] || statuses["Review"] != wantStatuses["Review"] {
				t.Fatalf("%d signatures with statuses %v, want %d with %v", len(sigs), statuses, tt.want, wantStatuses)
			}
			if s.DeadLetter != 0 {
				t.Errorf("%d dead letters", s.DeadLetter)
			}
			entries := h.sb.ThreatQ.Ledger.Len()
			downloads := h.sb.ET.Stats.Count(etsim.RouteOpenTarball)

			// The same md5 again: nothing downloaded, nothing written.
			s = h.runOnce(nil, vars)
			if n := h.sb.ET.Stats.Count(etsim.RouteOpenTarball); n != downloads {
				t.Errorf("the unchanged ruleset was downloaded again (%d downloads, was %d)", n, downloads)
			}
			if n := h.sb.ThreatQ.Ledger.Len(); n != entries || s.Writer.Signatures.Load() != 0 {
				t.Errorf("an unchanged ruleset wrote: ledger %d → %d entries, %d signatures", entries, n, s.Writer.Signatures.Load())
			}
			// A new release: three revs bumped, one rule disabled.
			bumped := map[string]bool{"2002003": true, "2002048": true, "2001454": true}
			const disable = "2010717"
			revRE := regexp.MustCompile(`rev:(\d+);`)
			sidRE := regexp.MustCompile(`sid:(\d+);`)
			seen := map[string]bool{}
			disabledIn := "" // The rules file of the disabled rule.
			next, err := etsim.RewriteTarball(tarball, func(file string, content []byte) []byte {
				lines := bytes.Split(content, []byte("\n"))
				for i, l := range lines {
					m := sidRE.FindSubmatch(l)
					if m == nil || bytes.HasPrefix(l, []byte("#")) {
						continue
					}
					sid := string(m[1])
					switch {
					case bumped[sid]:
						seen[sid] = true
						lines[i] = revRE.ReplaceAllFunc(l, func(r []byte) []byte {
							n, _ := strconv.Atoi(string(revRE.FindSubmatch(r)[1]))
							return []byte("rev:" + strconv.Itoa(n+1) + ";")
						})
					case sid == disable:
						seen[sid] = true
						disabledIn = path.Base(file)
						lines[i] = append([]byte("#"), l...)
					}
				}
				return bytes.Join(lines, []byte("\n"))
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != 4 {
				t.Fatalf("the rewrite found %d of the 4 enabled rules it edits: pick others", len(seen))
			}
			if err := h.sb.ET.Put("open", "suricata-4.0", next); err != nil {
				t.Fatal(err)
			}
			s = h.runOnce(nil, vars)
			got := h.sb.ThreatQ.Ledger.Entries()[entries:]
			creates, updates := 0, 0
			for _, e := range got {
				switch e.Op {
				case "signature.create":
					creates++
				case "signature.update":
					updates++
				default:
					t.Errorf("unexpected ledger entry %+v", e)
				}
			}
			// A bumped rev is new rule text: a new signature. The disabled
			// rule keeps its text and goes to the non-standard status, also
			// with non-standard rules off: ET withdrew a rule we loaded.
			if creates != 3 || updates != 1 || s.Writer.Signatures.Load() != 4 {
				t.Errorf("new release: %d created, %d updated, %d written; want 3, 1 and 4", creates, updates, s.Writer.Signatures.Load())
			}
			statuses = map[string]int{}
			var disabledSigs []string
			for _, sg := range h.sb.ThreatQ.Signatures() {
				statuses[sg.Status]++
				if strings.Contains(sg.Value, "sid:"+disable+";") {
					disabledSigs = append(disabledSigs, sg.Status)
				}
			}
			if len(disabledSigs) != 1 || disabledSigs[0] != "Review" {
				t.Errorf("the disabled rule's signatures have statuses %v, want one Review", disabledSigs)
			}
			wantStatuses["Active"] += 3 - 1
			wantStatuses["Review"]++
			if fmt.Sprint(statuses) != fmt.Sprint(wantStatuses) {
				t.Errorf("new release: statuses %v, want %v", statuses, wantStatuses)
			}

			if tt.nonStandard {
				return
			}
			// A re-release, its rules as before, with only the disabled
			// rule's file selected (one file's parse, not 47): nothing
			// written, the disabled rule included.
			again, err := etsim.RewriteTarball(next, func(file string, content []byte) []byte {
				if path.Base(file) != disabledIn {
					return content
				}
				return append(content[:len(content):len(content)], "\n# re-released\n"...)
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := h.sb.ET.Put("open", "suricata-4.0", again); err != nil {
				t.Fatal(err)
			}
			vars["ET_RULESETS"] = disabledIn
			entries = h.sb.ThreatQ.Ledger.Len()
			s = h.runOnce(nil, vars)
			if s.ET == nil || s.ET.Published() != 1 || s.Loader.Files.Load() != 1 {
				t.Fatalf("selecting %s: %+v published, %d loaded; want 1 rules file", disabledIn, s.ET, s.Loader.Files.Load())
			}
			if n := h.sb.ThreatQ.Ledger.Len(); n != entries || s.Writer.Signatures.Load() != 0 {
				t.Errorf("%s again wrote: ledger %d → %d entries, %d signatures", disabledIn, entries, n, s.Writer.Signatures.Load())
			}
		})
	}
}
