package e2e_test

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
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
				"ET_STANDARD_STATUS":     "Active", "ET_NONSTANDARD_STATUS": "Review",
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
			creates, statusSets := 0, map[string]int{}
			for _, e := range got {
				switch e.Op {
				case "signature.create":
					creates++
				case "signature.status.set":
					statusSets[e.Value]++
				default:
					t.Errorf("unexpected ledger entry %+v", e)
				}
			}
			// A bumped rev is new rule text: a new signature, and the
			// previous revision's is retired (Expired). The disabled rule
			// keeps its text and its signature goes to the non-standard
			// status, also with non-standard rules off: ET withdrew a rule
			// we loaded. Consume leaves existing signatures' statuses, so
			// the writer PUTs them: each once.
			if creates != 3 || statusSets["Expired"] != 3 || statusSets["Review"] != 1 || len(statusSets) != 2 || s.Writer.Signatures.Load() != 7 {
				t.Errorf("new release: %d created, statuses set %v, %d written; want 3, 3 Expired and 1 Review, 7", creates, statusSets, s.Writer.Signatures.Load())
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
			wantStatuses["Active"] -= 1
			wantStatuses["Review"]++
			wantStatuses["Expired"] = 3
			if fmt.Sprint(statuses) != fmt.Sprint(wantStatuses) {
				t.Errorf("new release: statuses %v, want %v", statuses, wantStatuses)
			}

			// A third release: one rule removed. Its signature is retired;
			// nothing else changes.
			removed := ""
			third, err := etsim.RewriteTarball(next, func(file string, content []byte) []byte {
				lines := bytes.Split(content, []byte("\n"))
				for i, l := range lines {
					m := sidRE.FindSubmatch(l)
					if removed != "" || m == nil || bytes.HasPrefix(l, []byte("#")) || bumped[string(m[1])] || string(m[1]) == disable {
						continue
					}
					removed = string(m[1])
					return bytes.Join(slices.Delete(lines, i, i+1), []byte("\n"))
				}
				return content
			})
			if err != nil || removed == "" {
				t.Fatalf("remove a rule: %v (removed %q)", err, removed)
			}
			if err := h.sb.ET.Put("open", "suricata-4.0", third); err != nil {
				t.Fatal(err)
			}
			entries = h.sb.ThreatQ.Ledger.Len()
			s = h.runOnce(nil, vars)
			got = h.sb.ThreatQ.Ledger.Entries()[entries:]
			if len(got) != 1 || got[0].Op != "signature.status.set" || got[0].Value != "Expired" || s.Writer.Signatures.Load() != 1 {
				t.Errorf("third release: ledger %+v, %d written; want the removed rule's signature set to Expired, once", got, s.Writer.Signatures.Load())
			}
			wantStatuses["Active"]--
			wantStatuses["Expired"]++
			// Exactly one live signature per sid, at the expected status;
			// every older revision and the removed rule retired.
			live := map[string][]string{}
			statuses = map[string]int{}
			for _, sg := range h.sb.ThreatQ.Signatures() {
				statuses[sg.Status]++
				m := sidRE.FindStringSubmatch(sg.Value)
				if m == nil {
					t.Fatalf("signature %q has no sid", sg.Value)
				}
				sid := m[1]
				if sg.Status != "Expired" {
					live[sid] = append(live[sid], sg.Status)
				} else if !bumped[sid] && sid != removed {
					t.Errorf("sid %s: a signature retired, want none", sid)
				}
			}
			for sid, sts := range live {
				want := "Active"
				if sid == disable {
					want = "Review"
				}
				if len(sts) != 1 || (sts[0] != want && !tt.nonStandard) {
					t.Errorf("sid %s: live signatures %v, want one %s", sid, sts, want)
				}
			}
			if _, ok := live[removed]; ok {
				t.Errorf("the removed rule %s still has a live signature", removed)
			}
			if fmt.Sprint(statuses) != fmt.Sprint(wantStatuses) {
				t.Errorf("third release: statuses %v, want %v", statuses, wantStatuses)
			}
			next = third

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
