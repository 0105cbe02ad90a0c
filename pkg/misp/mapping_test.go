package misp_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/pkg/sharedtest"
)

func TestMapType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, tq, value string
		want            misp.Mapping
		ok              bool
	}{
		{"ip", "IP Address", "198.51.100.7", misp.Mapping{Type: "ip-dst", Category: "Network activity", ToIDs: true}, true},
		{"cidr", "CIDR Block", "10.0.0.0/8", misp.Mapping{Type: "ip-dst", Category: "Network activity", ToIDs: true}, true},
		{"fqdn", "FQDN", "example.com", misp.Mapping{Type: "domain", Category: "Network activity", ToIDs: true}, true},
		{"sha256 folded name", "sha256", "", misp.Mapping{Type: "sha256", Category: "Payload delivery", ToIDs: true}, true},
		{"user agent spelling", "User Agent", "", misp.Mapping{Type: "user-agent", Category: "Network activity"}, true},
		{"email", "Email Address", "a@b.c", misp.Mapping{Type: "email-src", Category: "Payload delivery", ToIDs: true}, true},
		{"cve", "CVE", "CVE-2021-44228", misp.Mapping{Type: "vulnerability", Category: "External analysis"}, true},
		{"fuzzy ssdeep", "Fuzzy Hash", "3:abc:def", misp.Mapping{Type: "ssdeep", Category: "Payload delivery", ToIDs: true}, true},
		{"fuzzy not ssdeep", "Fuzzy Hash", "T1A2B3", misp.Mapping{Type: "text", Category: "Other", Lossy: true}, true},
		{"username lossy", "Username", "bob", misp.Mapping{Type: "text", Category: "Other", Lossy: true}, true},
		{"unknown", "Malware Family", "x", misp.Mapping{}, false},
		{"empty", "", "", misp.Mapping{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := misp.MapType(tt.tq, tt.value)
			if ok != tt.ok || got != tt.want {
				t.Errorf("MapType(%q, %q) = %+v, %v; want %+v, %v", tt.tq, tt.value, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// derivedMap is DERIVED_threatq_to_misp_type_map.json.
type derivedMap struct {
	Mapping []struct {
		ThreatQ         string   `json:"threatq_type"`
		Type            string   `json:"misp_type"`
		Category        string   `json:"category"`
		DefaultToIDs    bool     `json:"misp_default_to_ids"`
		ValidCategories []string `json:"valid_categories"`
	} `json:"mapping"`
}

func loadDescribeTypes(t *testing.T) *misp.DescribeTypes {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, "misp/describeTypes.json"))
	if err != nil {
		t.Fatal(err)
	}
	dt, err := misp.ParseDescribeTypes(b)
	if err != nil {
		t.Fatal(err)
	}
	return dt
}

// TestMapTypeAgainstDescribeTypes checks every mapping of the derived table
// against MISP's own type definitions.
func TestMapTypeAgainstDescribeTypes(t *testing.T) {
	t.Parallel()
	dt := loadDescribeTypes(t)
	b, err := os.ReadFile(sharedtest.Path(t, "misp/DERIVED_threatq_to_misp_type_map.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dm derivedMap
	if err := json.Unmarshal(b, &dm); err != nil {
		t.Fatal(err)
	}
	if len(dm.Mapping) < 30 {
		t.Fatalf("derived map has %d rows", len(dm.Mapping))
	}
	for _, row := range dm.Mapping {
		t.Run(row.ThreatQ, func(t *testing.T) {
			t.Parallel()
			value := ""
			if row.Type == "ssdeep" {
				value = "3:abc:def"
			}
			m, ok := misp.MapType(row.ThreatQ, value)
			if !ok {
				t.Fatalf("MapType(%q) not mapped", row.ThreatQ)
			}
			if m.Type != row.Type || m.Category != row.Category || m.ToIDs != row.DefaultToIDs {
				t.Errorf("MapType(%q) = %+v, derived map says %s/%s/%v", row.ThreatQ, m, row.Type, row.Category, row.DefaultToIDs)
			}
			if !dt.HasType(m.Type) {
				t.Errorf("type %q not in describeTypes", m.Type)
			}
			if !dt.Allowed(m.Type, m.Category) {
				t.Errorf("category %q not allowed for %q (allowed: %v)", m.Category, m.Type, dt.CategoriesFor(m.Type))
			}
			if want := dt.SaneDefaults[m.Type].ToIDs == 1; m.ToIDs != want {
				t.Errorf("ToIDs = %v, MISP default %v", m.ToIDs, want)
			}
			if !misp.Known(m.Type) {
				t.Errorf("Normalize does not handle %q", m.Type)
			}
		})
	}
}

// TestBuiltinDescribeTypes checks the built-in subset against the real file.
func TestBuiltinDescribeTypes(t *testing.T) {
	t.Parallel()
	dt := loadDescribeTypes(t)
	bi := misp.BuiltinDescribeTypes()
	for _, typ := range bi.Types {
		if got, want := bi.SaneDefaults[typ], dt.SaneDefaults[typ]; got != want {
			t.Errorf("%s defaults = %+v, describeTypes %+v", typ, got, want)
		}
		got, want := bi.CategoriesFor(typ), dt.CategoriesFor(typ)
		if len(got) != len(want) {
			t.Errorf("%s categories = %v, describeTypes %v", typ, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s categories = %v, describeTypes %v", typ, got, want)
				break
			}
		}
	}
}
