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
			wantStatuses["Active"]--
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

// TestETBlockList is an ET IP list end to end, over three versions:
// fetcher, writer and the ThreatQ simulator. The ledger must hold every
// address once, created at ET_BLOCK_LIST_STATUS, and each address that left
// the list set once to ET_BLOCK_LIST_EXPIRED_STATUS; an unchanged list
// writes nothing; the bad line is reported with its line number. The
// expectations are written out by hand, not computed with pkg/et.
func TestETBlockList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sandbox.Options{Seed: 52})
	const list = "fwrules/emerging-Block-IPs.txt"
	vars := map[string]string{
		"JOBS": "et", "ET_SOURCES": "none", "ET_BLOCK_LISTS": list,
		"ET_BLOCK_LIST_STATUS": "Review", "ET_BLOCK_LIST_EXPIRED_STATUS": "Expired", "ET_BLOCK_LIST_SOURCE": "ET Block IPs",
	}
	versions := []string{
		"# Emerging Threats fwrules block list\n#\n198.51.100.7\n203.0.113.0/24\n192.0.2.1\n",
		"# v2: 192.0.2.1 left, 198.51.100.8 joined, a bad line\n198.51.100.7\n203.0.113.0/24\n\n198.51.100.8\n198.51.100.999\n",
		"# v3: 203.0.113.0/24 left, two joined\n198.51.100.7\n198.51.100.8\n192.0.2.128/25\n2001:db8::/32\n",
	}
	start := h.sb.ThreatQ.Ledger.Len()
	for i, v := range versions {
		if err := h.sb.ET.PutList(list, []byte(v)); err != nil {
			t.Fatal(err)
		}
		s := h.runOnce(nil, vars)
		if s.ET == nil || len(s.ET.Lists) != 1 || s.ET.Lists[0].Err != nil {
			t.Fatalf("v%d: ET report %+v", i+1, s.ET)
		}
		if i == 1 {
			r := s.ET.Lists[0]
			if r.BadLines != 1 || len(r.Bad) != 1 || r.Bad[0].Line != 6 || r.Bad[0].File != list {
				t.Errorf("v2: bad lines %d %v, want one at %s:6", r.BadLines, r.Bad, list)
			}
		}
		if s.DeadLetter != 0 {
			t.Errorf("v%d: %d dead letters", i+1, s.DeadLetter)
		}
		// The same list again writes nothing.
		n := h.sb.ThreatQ.Ledger.Len()
		if s := h.runOnce(nil, vars); s.Writer.Indicators.Load() != 0 || h.sb.ThreatQ.Ledger.Len() != n {
			t.Errorf("v%d again: %d indicator writes, ledger %d → %d", i+1, s.Writer.Indicators.Load(), n, h.sb.ThreatQ.Ledger.Len())
		}
	}
	got := map[string]int{}
	for _, e := range h.sb.ThreatQ.Ledger.Entries()[start:] {
		switch e.Op {
		case "indicator.create":
			got["create "+e.Name+" "+e.Value]++
		case "status.set":
			in, ok := indicatorByObject(h, e.Object)
			if !ok {
				t.Fatalf("ledger entry %+v names no indicator", e)
			}
			got["status "+in+" "+e.Value]++
		default:
			got[e.Op+" "+e.Object+" "+e.Name+"="+e.Value]++
		}
	}
	want := map[string]int{
		"create IP Address 198.51.100.7": 1, "create CIDR Block 203.0.113.0/24": 1, "create IP Address 192.0.2.1": 1,
		"create IP Address 198.51.100.8": 1, "create CIDR Block 192.0.2.128/25": 1, "create CIDR Block 2001:db8::/32": 1,
		"status 192.0.2.1 Expired": 1, "status 203.0.113.0/24 Expired": 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ledger %v,\nwant   %v", got, want)
	}
	final := map[string]string{
		"IP Address/198.51.100.7": "Review", "IP Address/198.51.100.8": "Review", "CIDR Block/192.0.2.128/25": "Review",
		"CIDR Block/2001:db8::/32": "Review", "IP Address/192.0.2.1": "Expired", "CIDR Block/203.0.113.0/24": "Expired",
	}
	for k, status := range final {
		typ, value, _ := strings.Cut(k, "/")
		in, ok := h.sb.ThreatQ.Lookup(typ, value)
		if !ok || in.Status != status || !slices.Contains(in.Sources, "ET Block IPs") {
			t.Errorf("%s: %+v (found %v), want status %s and source ET Block IPs", k, in, ok, status)
		}
	}
}

// indicatorByObject returns the value of the indicator a ledger object
// ("indicator/<id>") names.
func indicatorByObject(h *harness, object string) (string, bool) {
	id, err := strconv.ParseInt(strings.TrimPrefix(object, "indicator/"), 10, 64)
	if err != nil {
		return "", false
	}
	in, ok := h.sb.ThreatQ.Indicator(id)
	return in.Value, ok
}

// TestETRealRulesets runs the ET job on the two other real rulesets in
// shared/data/et, each asked for with the flavour its engine's tool would
// send: snort-2.9.7.0 (pulledpork asks for snort-2.9.7/, served here with
// the 2020 snort-2.9.0 tarball) and suricata-7.0.6 (suricata-update asks
// for suricata-7.0.6/, which ET, and etsim, map to the suricata-7.0.3 fork,
// served here with the 2025 tarball). Every enabled rule becomes one
// signature; the counts are the corpus README's.
func TestETRealRulesets(t *testing.T) {
	if raceEnabled {
		t.Skip("skipping under the race detector: two real rulesets through the pipeline take minutes there; make test runs it without")
	}
	t.Parallel()
	tests := []struct {
		corpus, flavor, put, path string
		enabled                   int
		typ                       string
		// names holds signature names as Suricata shows the msg, by sid:
		// the backslash before any character dropped.
		names map[string]string
	}{
		{"snort-2.9.0-2020", "snort-2.9.7.0", "snort-2.9.7", "/open/snort-2.9.7/emerging.rules.tar.gz", 19475, "Snort",
			map[string]string{"2018010": `ET TROJAN Suspicious UA (^IE[ds])`, "2008510": `ET TROJAN Suspicious User-Agent - Possible Trojan Downloader (xa2xa2HttpClient)`}},
		{"suricata-5.0-2025", "suricata-7.0.6", "suricata-7.0.3", "/open/suricata-7.0.6/emerging.rules.tar.gz", 14966, "Snort",
			map[string]string{"2039749": "ET RETIRED WinGOMonitor.go CnC Checkin", "2008458": "ET USER_AGENTS Downloader User-Agent (AutoDL/1.0)"}},
	}
	for _, tt := range tests {
		t.Run(tt.corpus, func(t *testing.T) {
			t.Parallel()
			tarball, err := os.ReadFile(sharedtest.Path(t, "et/"+tt.corpus+"/emerging.rules.tar.gz"))
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, sandbox.Options{Seed: 53})
			if err := h.sb.ET.Put("open", tt.put, tarball); err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{"JOBS": "et", "ET_FLAVOR": tt.flavor, "ET_SOURCES": "open"}
			s := h.runOnce(nil, vars)
			if !slices.Contains(h.sb.ET.Paths(), tt.path) {
				t.Errorf("paths asked for %q, want %s among them", h.sb.ET.Paths(), tt.path)
			}
			sigs := h.sb.ThreatQ.Signatures()
			statuses := map[string]int{}
			names := map[string]string{}
			for _, sg := range sigs {
				statuses[sg.Status]++
				if sg.Type != tt.typ {
					t.Fatalf("signature %q has type %q, want %s", sg.Name, sg.Type, tt.typ)
				}
				for sid := range tt.names {
					if strings.Contains(sg.Value, "sid:"+sid+";") {
						names[sid] = sg.Name
					}
				}
			}
			if fmt.Sprint(names) != fmt.Sprint(tt.names) {
				t.Errorf("signature names %q, want %q", names, tt.names)
			}
			if len(sigs) != tt.enabled || statuses["Active"] != tt.enabled {
				t.Errorf("%d signatures with statuses %v, want %d Active", len(sigs), statuses, tt.enabled)
			}
			if s.DeadLetter != 0 {
				t.Errorf("%d dead letters", s.DeadLetter)
			}
		})
	}
}
