package e2e_test

import (
	"bytes"
	"os"
	"path"
	"testing"

	"github.com/tqflow/tqflow/pkg/sharedtest"
	"github.com/tqflow/tqflow/pkg/sim/etsim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
)

// TestETBadLinesCounted: a new release that adds lines which are not
// rules (an unbalanced parenthesis, a rule without a sid) to one rules
// file writes nothing for them and counts exactly those two as bad lines.
// It moved here from the fetcher's tests, which must not run the
// signature-loader (issue 15); one rules file keeps it quick.
func TestETBadLinesCounted(t *testing.T) {
	t.Parallel()
	tarball, err := os.ReadFile(sharedtest.Path(t, "et/suricata-2017/emerging.rules.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	const file = "emerging-info.rules"
	h := newHarness(t, sandbox.Options{Seed: 52})
	if err := h.sb.ET.Put("open", "suricata-4.0", tarball); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"JOBS": "et", "ET_FLAVOR": "suricata-4.0", "ET_SOURCES": "open", "ET_RULESETS": file,
		"ET_STANDARD_STATUS": "Active", "ET_NONSTANDARD_STATUS": "Review",
	}
	first := h.runOnce(nil, vars)
	if first.Loader == nil || first.Loader.Files.Load() != 1 || first.Writer.Signatures.Load() == 0 {
		t.Fatalf("first run: loader %+v, %d signatures; want 1 file loaded and its rules written", first.Loader, first.Writer.Signatures.Load())
	}
	before := first.Loader.BadLines.Load()
	next, err := etsim.RewriteTarball(tarball, func(name string, content []byte) []byte {
		if path.Base(name) != file {
			return content
		}
		return append(bytes.Clone(content), "this line is garbage (\nalert tcp any any -> any any (msg:\"no sid\"; rev:1;)\n"...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.sb.ET.Put("open", "suricata-4.0", next); err != nil {
		t.Fatal(err)
	}
	entries := h.sb.ThreatQ.Ledger.Len()
	second := h.runOnce(nil, vars)
	if second.Loader.Files.Load() != 1 {
		t.Fatalf("second run loaded %d files, want 1", second.Loader.Files.Load())
	}
	if bad := second.Loader.BadLines.Load() - before; bad != 2 {
		t.Errorf("the new release counted %d more bad lines, want the 2 added", bad)
	}
	if n := h.sb.ThreatQ.Ledger.Len(); n != entries || second.Writer.Signatures.Load() != 0 {
		t.Errorf("the bad lines wrote: ledger %d → %d entries, %d signatures", entries, n, second.Writer.Signatures.Load())
	}
	if second.DeadLetter != 0 {
		t.Errorf("%d dead letters", second.DeadLetter)
	}
}
