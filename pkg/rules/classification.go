package rules

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Classification is one entry of a classification.config file.
type Classification struct {
	// Name is the classtype, e.g. "trojan-activity".
	Name string
	// Description is the human-readable description.
	Description string
	// Priority is the priority given to rules of this classtype.
	Priority int
}

// ParseClassificationConfig reads a classification.config file, made of
// "config classification: name,description,priority" lines; blank lines,
// '#' comments and other lines are ignored. The map, keyed by name, holds
// every well-formed entry even when the error is not nil; the error joins a
// *LineError (wrapping ErrClassification) for each malformed entry, or is a
// read error.
func ParseClassificationConfig(r io.Reader) (map[string]Classification, error) {
	const prefix = "config classification:"
	m := make(map[string]Classification)
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), DefaultMaxLineBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		c, ok := parseClassification(line[len(prefix):])
		if !ok {
			errs = append(errs, &LineError{File: "classification.config", Line: n, Err: ErrClassification})
			continue
		}
		m[c.Name] = c
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("read classification.config: %w", err))
	}
	return m, errors.Join(errs...)
}

// parseClassification parses "name,description,priority"; the description
// may hold commas.
func parseClassification(s string) (Classification, bool) {
	first := strings.IndexByte(s, ',')
	last := strings.LastIndexByte(s, ',')
	if first < 0 || first == last {
		return Classification{}, false
	}
	name := strings.TrimSpace(s[:first])
	prio, ok := pyInt(strings.TrimSpace(s[last+1:]))
	if name == "" || !ok {
		return Classification{}, false
	}
	return Classification{Name: name, Description: strings.TrimSpace(s[first+1 : last]), Priority: prio}, true
}
