package misp_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/tqflow/tqflow/pkg/misp"
)

// goldenCase is one row of testdata/golden.json: a value as sent and what
// MISP 2.5.1's own PHP (beforeValidateMassage and the value rules, run
// under php-cli with intl/ICU 72 by testdata/golden-gen.php) makes of it.
type goldenCase struct {
	Type  string  `json:"type"`
	In    string  `json:"in"`
	Out   *string `json:"out"`
	Error string  `json:"error"`
}

func loadGolden(t *testing.T) []goldenCase {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatalf("read golden cases: %v", err)
	}
	var cs []goldenCase
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatalf("decode golden cases: %v", err)
	}
	if len(cs) < 100 {
		t.Fatalf("only %d golden cases", len(cs))
	}
	return cs
}

func TestNormalizeGolden(t *testing.T) {
	t.Parallel()
	for _, c := range loadGolden(t) {
		got, err := misp.Normalize(c.Type, c.In)
		if c.Out != nil {
			if err != nil || got != *c.Out {
				t.Errorf("Normalize(%s, %q) = %q, %v; MISP stores %q", c.Type, c.In, got, err, *c.Out)
			}
			continue
		}
		var inv *misp.InvalidValueError
		if !errors.As(err, &inv) {
			t.Errorf("Normalize(%s, %q) = %q, %v; MISP refuses it: %s", c.Type, c.In, got, err, c.Error)
			continue
		}
		if inv.Reason != c.Error {
			t.Errorf("Normalize(%s, %q) reason %q; MISP says %q", c.Type, c.In, inv.Reason, c.Error)
		}
	}
}
