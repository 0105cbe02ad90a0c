package et

import (
	"fmt"
	"strings"
)

// Source names one artefact ET publishes: a ruleset tarball (ET Open, ET
// Open without GPL rules, ET Pro) or one block-rules file ("block:<file>").
// The bare [SourceBlock] stands, in configuration, for the default set of
// block-rules files of the flavour's engine; [Client.Sources] expands it.
type Source string

// The ET sources.
const (
	// SourceOpen is ET Open: open/<flavour>/emerging.rules.tar.gz.
	SourceOpen Source = "open"
	// SourceOpenNoGPL is ET Open without the GPL rules (sids 1-3464 and the
	// ported "GPL ..." rules): open-nogpl/<flavour>/emerging.rules.tar.gz.
	SourceOpenNoGPL Source = "open-nogpl"
	// SourcePro is ET Pro, which needs an oinkcode:
	// <oinkcode>/<flavour>/etpro.rules.tar.gz.
	SourcePro Source = "pro"
	// SourceBlock is the block rules: plain files under blockrules/.
	SourceBlock Source = "block"
)

const blockPrefix = "block:"

// BlockFile returns the source of one block-rules file, e.g.
// BlockFile("emerging-drop.suricata.rules").
func BlockFile(name string) Source { return Source(blockPrefix + name) }

// String returns the source's name.
func (s Source) String() string { return string(s) }

// File returns the block-rules file name of a "block:<file>" source and
// true, or "" and false for any other source.
func (s Source) File() (string, bool) {
	name, ok := strings.CutPrefix(string(s), blockPrefix)
	return name, ok
}

// ParseSource reads a source name as written in configuration: "open",
// "open-nogpl", "pro", "block" or "block:<file>".
func ParseSource(name string) (Source, error) {
	s := Source(strings.TrimSpace(name))
	switch s {
	case SourceOpen, SourceOpenNoGPL, SourcePro, SourceBlock:
		return s, nil
	}
	if file, ok := s.File(); ok {
		if !validSegment(file) {
			return "", fmt.Errorf("%w: block-rules file %q is not a plain file name", ErrInvalidSource, file)
		}
		return s, nil
	}
	return "", fmt.Errorf("%w: %q: want open, open-nogpl, pro, block or block:<file>", ErrInvalidSource, name)
}

// Engine is the IDS engine a flavour is written for.
type Engine string

// The engines ET writes rules for.
const (
	EngineSuricata Engine = "suricata"
	EngineSnort    Engine = "snort"
)

// DefaultBlockFiles returns the block-rules files [SourceBlock] stands for:
// the IP-reputation rules in the engine's syntax (the ".suricata.rules"
// variants for Suricata), as listed in shared/contracts/et.md §1.3.
func DefaultBlockFiles(e Engine) []string {
	if e == EngineSnort {
		return []string{
			"emerging-botcc.rules",
			"emerging-ciarmy.rules",
			"emerging-compromised.rules",
			"emerging-drop.rules",
			"emerging-dshield.rules",
			"emerging-tor.rules",
		}
	}
	return []string{
		"emerging-botcc.suricata.rules",
		"emerging-ciarmy.suricata.rules",
		"emerging-compromised.suricata.rules",
		"emerging-drop.suricata.rules",
		"emerging-dshield.suricata.rules",
		"emerging-tor.suricata.rules",
		"threatview_CS_c2.suricata.rules",
	}
}

// validSegment reports whether s is a single, plain URL path segment that
// needs no escaping.
func validSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}
