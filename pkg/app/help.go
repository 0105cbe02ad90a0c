package app

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
)

// Var is one environment variable a configuration reads, as its struct
// tags declare it: the tags are the one source of truth, for parsing and
// for help.
type Var struct {
	// Name is the full variable, prefixes included (CTR_CLIENT_ID).
	Name string
	// Default is the value used when the variable is unset: the one a
	// [config.DefaultsTag] where its struct is nested gives, else its
	// envDefault tag. Empty when there is none.
	Default string
	// Secret says the value is a credential: it may come from NAME_FILE.
	Secret bool
}

var (
	secretType   = reflect.TypeFor[config.Secret]()
	durationType = reflect.TypeFor[time.Duration]()
)

// Vars lists the variables cfgs (pointers to, or values of, structs with
// caarlos0/env tags) read, sorted by name, each once, with the defaults
// their tags give: the values cfgs hold do not matter. A variable read by
// two configurations keeps the first default found.
func Vars(cfgs ...any) []Var {
	seen := map[string]bool{}
	var out []Var
	for _, c := range cfgs {
		v := reflect.ValueOf(c)
		for v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			continue
		}
		// A configuration whose DefaultsTag tags are wrong fails every
		// Parse (and its service's tests); its help shows the envDefault
		// tags alone.
		defaults, _ := config.Defaults(c)
		walkVars(v.Type(), "", func(x Var) {
			if d, ok := defaults[x.Name]; ok {
				x.Default = d
			}
			if !seen[x.Name] {
				seen[x.Name] = true
				out = append(out, x)
			}
		})
	}
	slices.SortFunc(out, func(a, b Var) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// walkVars calls fn for every variable of the struct type t under prefix,
// following caarlos0/env's rules: env:"-" is skipped, envPrefix nests,
// a struct field without an env tag is walked with no added prefix.
func walkVars(t reflect.Type, prefix string, fn func(Var)) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walkVars(f.Type, prefix+f.Tag.Get("envPrefix"), fn)
			}
			continue
		}
		x := Var{Name: prefix + name, Secret: f.Type == secretType}
		x.Default = f.Tag.Get("envDefault")
		fn(x)
	}
}

// PrintVars writes vars as the "Environment" section of a command's help.
func PrintVars(w io.Writer, vars []Var) {
	if len(vars) == 0 {
		return
	}
	fmt.Fprint(w, "\nEnvironment (also from tqflow.env in the -c directory, or --env-file; a secret X may be given as a file in X_FILE):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range vars {
		d := v.Default
		switch {
		case v.Secret:
			d = "(secret)"
		case d == "":
			d = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, d)
	}
	_ = tw.Flush()
}
