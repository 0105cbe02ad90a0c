package config

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Source says where configuration comes from.
type Source struct {
	// Environ is the process environment as KEY=VALUE strings;
	// os.Environ() when nil.
	Environ []string
	// EnvFile is an optional file of KEY=VALUE lines. Variables set in the
	// environment win over the file.
	EnvFile string
}

// Lookup returns the merged variables of s: the env file, then the
// environment over it. NAME_FILE variables are resolved by [Parse], only
// for the variables a configuration declares: the environment holds many
// *_FILE variables that are none of tqflow's business.
func (s Source) Lookup() (map[string]string, error) {
	vars := make(map[string]string)
	var errs []error
	if s.EnvFile != "" {
		fileVars, err := ReadEnvFile(s.EnvFile)
		if err != nil {
			errs = append(errs, err)
		}
		for k, v := range fileVars {
			vars[k] = v
		}
	}
	environ := s.Environ
	if environ == nil {
		environ = os.Environ()
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return vars, errors.Join(errs...)
}

// ReadEnvFile reads KEY=VALUE lines: blank lines and # comments are
// skipped, "export " is allowed, and a value may be single- or
// double-quoted. A malformed line is an error naming the file and line.
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read env file: %w", err)
	}
	defer func() { _ = f.Close() }()
	vars := make(map[string]string)
	var errs []error
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			errs = append(errs, fmt.Errorf("%s:%d: want KEY=VALUE", path, n))
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"') {
			uq, err := strconv.Unquote(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %s: bad quoting", path, n, k))
				continue
			}
			v = uq
		} else if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		}
		vars[k] = v
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("read env file %s: %w", path, err))
	}
	return vars, errors.Join(errs...)
}

// Parse fills cfg, a pointer to a struct with caarlos0/env tags, from vars,
// then runs its Validate method if it has one. Every problem is reported in
// one error: parse errors and validation errors together.
//
// Defaults are written once, in the tags, where help reads them too: a
// variable unset or empty takes its envDefault, or the default a
// [DefaultsTag] gives it where its struct is nested. Parse is where a
// configuration is validated: the services' Run functions take a
// configuration as valid, and one built in Go instead of parsed is
// validated by whoever builds it.
func Parse(cfg any, vars map[string]string) error {
	var errs []error
	opts := env.Options{Environment: vars}
	params, err := env.GetFieldParamsWithOptions(cfg, opts)
	if err != nil {
		return fmt.Errorf("read configuration fields: %w", err)
	}
	defaults, err := Defaults(cfg)
	if err != nil {
		return fmt.Errorf("read configuration defaults: %w", err)
	}
	vars, err = withSecretFiles(vars, params)
	if err != nil {
		errs = append(errs, err)
	}
	vars = withDefaults(vars, defaults)
	opts.Environment = vars
	if err := env.ParseWithOptions(cfg, opts); err != nil {
		var agg env.AggregateError
		if !errors.As(err, &agg) {
			agg.Errors = []error{err}
		}
		for _, e := range agg.Errors {
			errs = append(errs, nameVariable(e, params, vars))
		}
	}
	if v, ok := cfg.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// nameVariable rewrites an env parse error, which names a Go field, to name
// the variable the operator set instead: the set variable whose value the
// error quotes.
func nameVariable(err error, params []env.FieldParams, vars map[string]string) error {
	var pe env.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	for _, p := range params {
		v, ok := vars[p.Key]
		if ok && v != "" && strings.Contains(pe.Err.Error(), strconv.Quote(v)) {
			return fmt.Errorf("%s=%q: not a valid %s", p.Key, v, pe.Type)
		}
	}
	return err
}

// withSecretFiles returns vars with NAME read from the file NAME_FILE names,
// for every declared NAME that is unset (Docker and Kubernetes secrets).
func withSecretFiles(vars map[string]string, params []env.FieldParams) (map[string]string, error) {
	var out map[string]string
	var errs []error
	for _, p := range params {
		path := vars[p.Key+"_FILE"]
		if path == "" || vars[p.Key] != "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s_FILE: read secret file: %w", p.Key, err))
			continue
		}
		if out == nil {
			out = make(map[string]string, len(vars)+1)
			for k, v := range vars {
				out[k] = v
			}
		}
		out[p.Key] = strings.TrimRight(string(data), "\r\n")
	}
	if out == nil {
		out = vars
	}
	return out, errors.Join(errs...)
}
