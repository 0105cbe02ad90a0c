package threatq_test

import (
	"slices"
	"testing"

	"github.com/tqflow/tqflow/pkg/threatq"
)

// TestDefaultFieldsIsACopy: a caller changing the projection it was given
// changes no other caller's.
func TestDefaultFieldsIsACopy(t *testing.T) {
	t.Parallel()
	a := threatq.DefaultFields()
	want := slices.Clone(a)
	a[0] = "changed"
	if b := threatq.DefaultFields(); !slices.Equal(b, want) {
		t.Errorf("DefaultFields() = %q after a caller changed its copy, want %q", b, want)
	}
	if !slices.Contains(want, "attributes") || !slices.Contains(want, "sources") {
		t.Errorf("DefaultFields() = %q: attributes and sources must be asked for (contract §4.4)", want)
	}
}
