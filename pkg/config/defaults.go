package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/caarlos0/env/v11"
)

// DefaultsTag is the struct tag that gives the variables of a nested
// configuration their defaults where it is nested, over their own
// envDefault tags. A configuration several services share, such as
// bus.WorkerConfig, has no defaults of its own; each service writes its
// defaults once, beside the prefix it nests it under:
//
//	bus.WorkerConfig `envPrefix:"ENRICHER_" envDefaults:"CONCURRENCY=8,DRAIN_TIMEOUT=20s"`
//
// Keys are the nested configuration's variables without the prefix, and
// values are as a variable would give them; a value cannot hold a comma.
// [Parse] applies them, and help reads them with [Defaults].
const DefaultsTag = "envDefaults"

// Defaults returns the defaults that [DefaultsTag] tags in cfg (a struct
// with caarlos0/env tags, or a pointer to one) give, by full variable
// name. A tag on a field that is not a struct, a malformed entry, or a key
// that is not a variable of the tagged field is an error.
func Defaults(cfg any) (map[string]string, error) {
	t := reflect.TypeOf(cfg)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("configuration defaults: %T is not a struct", cfg)
	}
	out := map[string]string{}
	if err := walkDefaults(t, "", out, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// walkDefaults adds the defaults of the struct type t, its variables under
// prefix, to out: a tag's defaults replace those tags nested deeper give.
func walkDefaults(t reflect.Type, prefix string, out map[string]string, depth int) error {
	if depth > 8 {
		return nil
	}
	var errs []error
	for i := range t.NumField() {
		f := t.Field(i)
		tag, tagged := f.Tag.Lookup(DefaultsTag)
		if !f.IsExported() || f.Tag.Get("env") == "-" {
			if tagged {
				errs = append(errs, fmt.Errorf("%s.%s: an %s tag on a field the parser skips", t, f.Name, DefaultsTag))
			}
			continue
		}
		if f.Type.Kind() != reflect.Struct {
			if tagged {
				errs = append(errs, fmt.Errorf("%s.%s: an %s tag on a field that is not a struct", t, f.Name, DefaultsTag))
			}
			continue
		}
		p := prefix + f.Tag.Get("envPrefix")
		if err := walkDefaults(f.Type, p, out, depth+1); err != nil {
			errs = append(errs, err)
		}
		if !tagged {
			continue
		}
		params, err := env.GetFieldParams(reflect.New(f.Type).Interface())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: read its variables: %w", t, f.Name, err))
			continue
		}
		for entry := range strings.SplitSeq(tag, ",") {
			key, value, ok := strings.Cut(strings.TrimSpace(entry), "=")
			if !ok || key == "" {
				errs = append(errs, fmt.Errorf("%s.%s: %s entry %q: want KEY=VALUE", t, f.Name, DefaultsTag, entry))
				continue
			}
			if !slices.ContainsFunc(params, func(fp env.FieldParams) bool { return fp.Key == key }) {
				errs = append(errs, fmt.Errorf("%s.%s: %s entry %q: %s is not one of its variables", t, f.Name, DefaultsTag, entry, key))
				continue
			}
			out[p+key] = value
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns vars with every variable of defaults that vars does
// not set, or sets empty, given its default, as caarlos0/env does with an
// envDefault tag.
func withDefaults(vars, defaults map[string]string) map[string]string {
	var out map[string]string
	for k, d := range defaults {
		if vars[k] != "" {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(vars)+len(defaults))
			for k, v := range vars {
				out[k] = v
			}
		}
		out[k] = d
	}
	if out == nil {
		return vars
	}
	return out
}
