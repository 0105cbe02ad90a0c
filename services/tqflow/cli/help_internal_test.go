package cli

import (
	"reflect"
	"testing"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/config"
)

// TestHelpDefaultsAreTheParsers: for every command, the defaults its help
// shows are those parsing an empty environment gives: the configuration
// parsed with every variable set to its help default is the one parsed
// with none set. A default applied in code, not in the tags, fails it.
func TestHelpDefaultsAreTheParsers(t *testing.T) {
	t.Parallel()
	for name, o := range commandOptions {
		if o.config == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, cfg := range o.config() {
				typ := reflect.TypeOf(cfg).Elem()
				vars := map[string]string{}
				for _, v := range app.Vars(cfg) {
					if v.Default != "" {
						vars[v.Name] = v.Default
					}
				}
				// Validation errors are the same both ways; the values
				// are compared.
				unset, shown := reflect.New(typ), reflect.New(typ)
				_ = config.Parse(unset.Interface(), map[string]string{})
				_ = config.Parse(shown.Interface(), vars)
				if !reflect.DeepEqual(unset.Elem().Interface(), shown.Elem().Interface()) {
					t.Errorf("%s: parsed with no variable set:\n%+v\nwith the defaults the help shows:\n%+v", typ, unset.Elem(), shown.Elem())
				}
				if len(vars) == 0 {
					t.Errorf("%s: the help shows no default at all", typ)
				}
			}
		})
	}
}
