package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/caarlos0/env/v11"
)

// ErrUnknownVariable is a variable with one of tqflow's prefixes that no
// configuration reads: most likely a misspelt setting, which would
// otherwise be ignored in silence (MISP_SCORE_TRESHOLD=8 exported every
// low-score indicator).
var ErrUnknownVariable = errors.New("unknown variable")

// Known is the set of variables a program reads: every key of its
// configuration structs, and extra names it reads by hand.
type Known struct {
	names    map[string]bool
	prefixes []string
}

// NewKnown returns the variables the configurations cfgs (pointers to
// structs with caarlos0/env tags, prefixes included) declare, plus extra
// names. prefixes are the prefixes that mark a variable as the program's:
// one of them on an undeclared variable is an error for [Known.Check].
func NewKnown(prefixes []string, extra []string, cfgs ...any) (*Known, error) {
	k := &Known{names: map[string]bool{}, prefixes: slices.Clone(prefixes)}
	for _, n := range extra {
		k.names[n] = true
	}
	for _, c := range cfgs {
		params, err := env.GetFieldParamsWithOptions(c, env.Options{Environment: map[string]string{}})
		if err != nil {
			return nil, fmt.Errorf("list configuration variables: %w", err)
		}
		for _, p := range params {
			k.names[p.Key] = true
		}
	}
	return k, nil
}

// Has reports whether name is known.
func (k *Known) Has(name string) bool { return k.names[name] }

// Check returns an error for every variable of vars that carries one of
// the prefixes and is not known (a NAME_FILE is known when NAME is),
// naming the nearest known variable when one is close; nil when there is
// none.
func (k *Known) Check(vars map[string]string) error {
	var unknown []string
	for name := range vars {
		if k.names[name] || !k.ours(name) {
			continue
		}
		if base, ok := strings.CutSuffix(name, "_FILE"); ok && k.names[base] {
			continue
		}
		unknown = append(unknown, name)
	}
	slices.Sort(unknown)
	var errs []error
	for _, name := range unknown {
		if near := k.nearest(name); near != "" {
			errs = append(errs, fmt.Errorf("%s: %w; did you mean %s?", name, ErrUnknownVariable, near))
		} else {
			errs = append(errs, fmt.Errorf("%s: %w to tqflow", name, ErrUnknownVariable))
		}
	}
	return errors.Join(errs...)
}

func (k *Known) ours(name string) bool {
	for _, p := range k.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// nearest returns the known name closest to name by edit distance (with
// transpositions), if it is close enough to be a slip: at most a third of
// the name's length, and never more than 4 edits. Ties go to the name
// sharing name's prefix, then alphabetically.
func (k *Known) nearest(name string) string {
	best, bestD := "", max(1, min(4, len(name)/3))+1
	for cand := range k.names {
		d := editDistance(name, cand, bestD)
		if d < bestD || d == bestD && best != "" && better(name, cand, best) {
			best, bestD = cand, d
		}
	}
	return best
}

func better(name, a, b string) bool {
	pa, pb := sharedPrefix(name, a), sharedPrefix(name, b)
	if pa != pb {
		return pa > pb
	}
	return a < b
}

func sharedPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and adjacent transpositions), or
// limit when it is at least limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], limit)
}

// Names returns the known names, sorted.
func (k *Known) Names() []string {
	out := make([]string, 0, len(k.names))
	for n := range k.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
