package mispsim

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
)

// describeTypes is the simulator's reading of /attributes/describeTypes.json
// (MispAttribute::generateTypeDefinitions and $categoryDefinitions).
type describeTypes struct {
	SaneDefaults map[string]struct {
		DefaultCategory string `json:"default_category"`
		ToIDs           int    `json:"to_ids"`
	} `json:"sane_defaults"`
	Types                []string            `json:"types"`
	Categories           []string            `json:"categories"`
	CategoryTypeMappings map[string][]string `json:"category_type_mappings"`
}

func parseDescribeTypes(b []byte) (*describeTypes, error) {
	var wrapped struct {
		Result *describeTypes `json:"result"`
	}
	if err := json.Unmarshal(b, &wrapped); err != nil {
		return nil, err
	}
	dt := wrapped.Result
	if dt == nil || len(dt.CategoryTypeMappings) == 0 || len(dt.SaneDefaults) == 0 {
		return nil, errors.New("no result.sane_defaults or result.category_type_mappings")
	}
	return dt, nil
}

func (d *describeTypes) hasType(t string) bool {
	_, ok := d.SaneDefaults[t]
	return ok || slices.Contains(d.Types, t)
}

func (d *describeTypes) hasCategory(c string) bool {
	_, ok := d.CategoryTypeMappings[c]
	return ok || slices.Contains(d.Categories, c)
}

func (d *describeTypes) allowed(t, c string) bool {
	return slices.Contains(d.CategoryTypeMappings[c], t)
}

func (d *describeTypes) defaults(t string) (string, bool) {
	sd := d.SaneDefaults[t]
	return sd.DefaultCategory, sd.ToIDs == 1
}

// builtinTypes is the part of MISP 2.5.1's type table the simulator knows
// without a describeTypes.json: the types of misp.md §7, each with its
// default category, default to_ids and the categories that allow it.
func builtinTypes() *describeTypes {
	const (
		pd = "Payload delivery"
		na = "Network activity"
		ea = "External analysis"
		ad = "Artifacts dropped"
		pi = "Payload installation"
		pm = "Persistence mechanism"
	)
	rows := []struct {
		typ, def string
		toIDs    int
		cats     []string
	}{
		{"ip-dst", na, 1, []string{pd, na, ea}}, {"ip-src", na, 1, []string{pd, na, ea}},
		{"domain", na, 1, []string{pd, na, ea}}, {"hostname", na, 1, []string{pd, na, ea}},
		{"url", na, 1, []string{pd, na, ea}}, {"uri", na, 1, []string{na}},
		{"md5", pd, 1, []string{pd, ad, pi, ea}}, {"sha1", pd, 1, []string{pd, ad, pi, ea}},
		{"sha256", pd, 1, []string{pd, ad, pi, ea}}, {"sha384", pd, 1, []string{pd, ad, pi}},
		{"sha512", pd, 1, []string{pd, ad, pi}}, {"ssdeep", pd, 1, []string{pd, ad, pi}},
		{"email-src", pd, 1, []string{pd, na, "Social network"}}, {"email-dst", na, 1, []string{pd, na, "Social network"}},
		{"email-subject", pd, 0, []string{pd, na}}, {"email-attachment", pd, 1, []string{pd}},
		{"email-x-mailer", pd, 0, []string{pd}},
		{"filename", pd, 1, []string{pd, ad, pi, pm, ea}}, {"mutex", ad, 1, []string{ad}},
		{"regkey", pm, 1, []string{ad, pm, ea}}, {"windows-service-name", ad, 0, []string{ad}},
		{"user-agent", na, 0, []string{pd, na, ea}}, {"vulnerability", ea, 0, []string{pd, pi, ea}},
		{"AS", na, 0, []string{pd, na, ea}}, {"mac-address", na, 0, []string{pd, na, ea}},
		{"ja3-fingerprint-md5", na, 1, []string{pd, na, ea}}, {"btc", "Financial fraud", 1, []string{"Financial fraud"}},
		{"text", "Other", 0, []string{"Internal reference", "Antivirus detection", pd, ad, pi, pm, na,
			"Payload type", "Attribution", ea, "Financial fraud", "Support Tool", "Social network", "Person", "Other"}},
	}
	dt := &describeTypes{CategoryTypeMappings: map[string][]string{}}
	dt.SaneDefaults = map[string]struct {
		DefaultCategory string `json:"default_category"`
		ToIDs           int    `json:"to_ids"`
	}{}
	for _, r := range rows {
		dt.SaneDefaults[r.typ] = struct {
			DefaultCategory string `json:"default_category"`
			ToIDs           int    `json:"to_ids"`
		}{r.def, r.toIDs}
		dt.Types = append(dt.Types, r.typ)
		for _, c := range r.cats {
			if _, ok := dt.CategoryTypeMappings[c]; !ok {
				dt.Categories = append(dt.Categories, c)
			}
			dt.CategoryTypeMappings[c] = append(dt.CategoryTypeMappings[c], r.typ)
		}
	}
	return dt
}

// composite reports whether MISP treats t as a composite (value1|value2)
// type: malware-sample and every type with a "|" (getCompositeTypes).
func composite(t string) bool { return t == "malware-sample" || strings.Contains(t, "|") }
