package misp

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// TypeDefault is a type's default category and to_ids, from describeTypes'
// sane_defaults.
type TypeDefault struct {
	DefaultCategory string `json:"default_category"`
	ToIDs           int    `json:"to_ids"`
}

// DescribeTypes is what GET /attributes/describeTypes.json tells: the
// attribute types, the categories, each type's defaults and which types each
// category allows.
type DescribeTypes struct {
	SaneDefaults         map[string]TypeDefault `json:"sane_defaults"`
	Types                []string               `json:"types"`
	Categories           []string               `json:"categories"`
	CategoryTypeMappings map[string][]string    `json:"category_type_mappings"`
}

// ParseDescribeTypes decodes describeTypes.json, wrapped in {"result":…}
// as MISP and PyMISP serve it, or bare.
func ParseDescribeTypes(b []byte) (*DescribeTypes, error) {
	var wrapped struct {
		Result *DescribeTypes `json:"result"`
	}
	if err := json.Unmarshal(b, &wrapped); err != nil {
		return nil, fmt.Errorf("decode describeTypes: %w", err)
	}
	dt := wrapped.Result
	if dt == nil {
		dt = new(DescribeTypes)
		if err := json.Unmarshal(b, dt); err != nil {
			return nil, fmt.Errorf("decode describeTypes: %w", err)
		}
	}
	if len(dt.Types) == 0 || len(dt.CategoryTypeMappings) == 0 {
		return nil, errors.New("decode describeTypes: no types or no category mappings")
	}
	return dt, nil
}

// HasType reports whether t is a known attribute type.
func (d *DescribeTypes) HasType(t string) bool {
	if _, ok := d.SaneDefaults[t]; ok {
		return true
	}
	return slices.Contains(d.Types, t)
}

// HasCategory reports whether c is a known category.
func (d *DescribeTypes) HasCategory(c string) bool {
	if _, ok := d.CategoryTypeMappings[c]; ok {
		return true
	}
	return slices.Contains(d.Categories, c)
}

// Allowed reports whether attributes of type t may have category c.
func (d *DescribeTypes) Allowed(t, c string) bool {
	return slices.Contains(d.CategoryTypeMappings[c], t)
}

// CategoriesFor returns the categories that allow type t, sorted.
func (d *DescribeTypes) CategoriesFor(t string) []string {
	var out []string
	for c, types := range d.CategoryTypeMappings {
		if slices.Contains(types, t) {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// BuiltinDescribeTypes returns the part of MISP 2.5.1's describeTypes that
// covers the types [MapType] produces: their defaults and the categories
// that allow them. Simulators use it when not given the full file.
func BuiltinDescribeTypes() *DescribeTypes {
	dt := &DescribeTypes{
		SaneDefaults:         map[string]TypeDefault{},
		CategoryTypeMappings: map[string][]string{},
	}
	seenCat := map[string]bool{}
	for _, r := range typeRows {
		if _, ok := dt.SaneDefaults[r.mispType]; ok {
			continue
		}
		toIDs := 0
		if r.defaultToIDs {
			toIDs = 1
		}
		dt.SaneDefaults[r.mispType] = TypeDefault{DefaultCategory: r.defaultCategory, ToIDs: toIDs}
		dt.Types = append(dt.Types, r.mispType)
		for _, c := range r.validCategories {
			dt.CategoryTypeMappings[c] = append(dt.CategoryTypeMappings[c], r.mispType)
			if !seenCat[c] {
				seenCat[c] = true
				dt.Categories = append(dt.Categories, c)
			}
		}
	}
	return dt
}
