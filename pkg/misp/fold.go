package misp

import (
	"sync"

	"golang.org/x/text/collate"
	"golang.org/x/text/language"
)

// foldCollator compares as MySQL's utf8mb3_unicode_ci does for MISP's
// value1 column, at primary strength: case, accents and width do not
// count. x/text's root (CLDR) collation stands in for MySQL's UCA 4.0.0
// weights; they agree on Latin, Greek and Cyrillic case and accents.
var foldCollator = struct {
	sync.Mutex
	c   *collate.Collator
	buf collate.Buffer
}{c: collate.New(language.Und, collate.IgnoreCase, collate.IgnoreDiacritics, collate.IgnoreWidth)}

// FoldKey returns the key under which MISP's duplicate rule sees a
// normalised value (MispAttribute::findAttributeByValue compares value1
// under utf8mb3_unicode_ci): two values with the same key are "a similar
// attribute" to MISP in the same event, type and category, so only one of
// them can be stored there (misp.md correction 1). "Invoice.exe" and
// "invoice.exe", "café" and "cafe" share a key. The key is binary; hash it
// before using it as a name.
func FoldKey(normalizedValue string) []byte {
	foldCollator.Lock()
	defer foldCollator.Unlock()
	k := foldCollator.c.KeyFromString(&foldCollator.buf, normalizedValue)
	out := append([]byte(nil), k...)
	foldCollator.buf.Reset()
	return out
}
