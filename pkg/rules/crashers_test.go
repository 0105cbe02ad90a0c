package rules_test

import (
	"testing"

	"github.com/tqflow/tqflow/pkg/rules"
)

// crasherRows are inputs found by FuzzParse that once broke an invariant,
// kept as rows of TestParse (their files are in testdata/fuzz/FuzzParse).
var crasherRows = []struct {
	name    string
	line    string
	wantErr error
	check   func(t *testing.T, r *rules.Rule)
}{}
