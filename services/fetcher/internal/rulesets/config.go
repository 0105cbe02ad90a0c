package rulesets

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/tqflow/tqflow/pkg/et"
	"github.com/tqflow/tqflow/services/fetcher/internal/blocklists"
)

// Config is the ET job's configuration. The fetcher nests it without a
// prefix: its fields carry their full variable names.
type Config struct {
	// ET says what to download and from where (ET_SOURCES, ET_FLAVOR,
	// ET_OINKCODE, ET_OPEN_URL, ...).
	ET et.Config `envPrefix:"ET_"`
	// Rulesets selects the rules files to publish from a ruleset tarball:
	// file names (emerging-malware.rules) or categories (malware), compared
	// case-insensitively; empty or "all" selects every file. Block-rules
	// files are chosen by ET_SOURCES and always published.
	Rulesets []string `env:"ET_RULESETS" envSeparator:","`
	// BlockListStatus is the ThreatQ status of the addresses on the IP
	// lists of ET_BLOCK_LISTS; BlockListExpiredStatus that of an address
	// that left its list; BlockListSource the ThreatQ source of both.
	BlockListStatus        string `env:"ET_BLOCK_LIST_STATUS" envDefault:"Active"`
	BlockListExpiredStatus string `env:"ET_BLOCK_LIST_EXPIRED_STATUS" envDefault:"Expired"`
	BlockListSource        string `env:"ET_BLOCK_LIST_SOURCE" envDefault:"Emerging Threats"`
}

// lists returns the IP-list job c describes, without its connections.
func (c Config) lists() *blocklists.Job {
	j := &blocklists.Job{Status: c.BlockListStatus, ExpiredStatus: c.BlockListExpiredStatus, Source: c.BlockListSource}
	if j.Status == "" {
		j.Status = "Active"
	}
	if j.ExpiredStatus == "" {
		j.ExpiredStatus = "Expired"
	}
	if j.Source == "" {
		j.Source = "Emerging Threats"
	}
	return j
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if err := c.ET.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(c.ET.BlockLists) > 0 {
		if err := c.lists().Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range c.Rulesets {
		s = strings.TrimSpace(s)
		if s == "" || strings.ContainsAny(s, "/\\ \t") {
			errs = append(errs, fmt.Errorf("ET_RULESETS: %q: want a rules file name (emerging-malware.rules), a category (malware) or all", s))
		}
	}
	return errors.Join(errs...)
}

// Selection is the set of rules files chosen by ET_RULESETS.
type Selection struct {
	all   bool
	names map[string]bool
}

// NewSelection returns the selection of entries: file names or categories,
// case-insensitive; none, or "all", selects everything.
func NewSelection(entries []string) Selection {
	s := Selection{names: map[string]bool{}}
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch e {
		case "":
		case "all", "*":
			s.all = true
		default:
			s.names[e] = true
		}
	}
	if len(s.names) == 0 {
		s.all = true
	}
	return s
}

// String returns the selection in a canonical form: "all", or its entries
// sorted and comma-separated.
func (s Selection) String() string {
	if s.all {
		return "all"
	}
	names := make([]string, 0, len(s.names))
	for n := range s.names {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// All reports whether every file is selected.
func (s Selection) All() bool { return s.all }

// Match reports whether the rules file (a tarball member path or a file
// name) is selected, and the selection entry that chose it ("" for all).
func (s Selection) Match(file string) (bool, string) {
	if s.all {
		return true, ""
	}
	for _, k := range keys(file) {
		if s.names[k] {
			return true, k
		}
	}
	return false, ""
}

// Unmatched returns the entries that matched none of files, sorted, so
// that a typo in ET_RULESETS is said rather than silently selecting
// nothing.
func (s Selection) Unmatched(files []string) []string {
	if s.all {
		return nil
	}
	hit := map[string]bool{}
	for _, f := range files {
		for _, k := range keys(f) {
			hit[k] = true
		}
	}
	var out []string
	for n := range s.names {
		if !hit[n] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Category returns the category of a rules file: its base name without
// ".rules", a ".suricata" variant suffix and an "emerging-" or "etpro-"
// prefix, in upper case (emerging-malware.rules gives MALWARE, as ET's own
// msg prefixes name it; botcc.rules gives BOTCC).
func Category(file string) string {
	return strings.ToUpper(category(file))
}

func category(file string) string {
	b := strings.ToLower(path.Base(file))
	b = strings.TrimSuffix(b, ".rules")
	b = strings.TrimSuffix(b, ".suricata")
	for _, p := range []string{"emerging-", "etpro-"} {
		b = strings.TrimPrefix(b, p)
	}
	return b
}

// keys returns the names a file can be selected by.
func keys(file string) []string {
	b := strings.ToLower(path.Base(file))
	return []string{b, strings.TrimSuffix(b, ".rules"), category(file)}
}
