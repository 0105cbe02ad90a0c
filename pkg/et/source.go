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

// SourceNone, alone in ET_SOURCES, fetches no rules (for an instance that
// only fetches IP lists); it is not a source.
const SourceNone = "none"

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
		if !strings.HasSuffix(file, ".rules") {
			return "", fmt.Errorf("%w: block:%s is not a rules file (the block rules end in .rules); "+
				"an IP list such as compromised-ips.txt goes in ET_BLOCK_LISTS as blockrules/%s", ErrInvalidSource, file, file)
		}
		return s, nil
	}
	return "", fmt.Errorf("%w: %q: want open, open-nogpl, pro, block or block:<file>", ErrInvalidSource, name)
}

const listPrefix = "list:"

// The directories ET publishes IP lists in.
const (
	// ListDirFWRules holds emerging-Block-IPs.txt (and firewall scripts,
	// which are not lists).
	ListDirFWRules = "fwrules"
	// ListDirBlockRules holds compromised-ips.txt (and the block rules,
	// which are rules).
	ListDirBlockRules = "blockrules"
)

// The IP lists ThreatQ's own "Proofpoint ET OSINT" feed reads
// (shared/contracts/et.md, corrections 3).
const (
	ListBlockIPs      = "fwrules/emerging-Block-IPs.txt"
	ListCompromisedIP = "blockrules/compromised-ips.txt"
)

// ListFile returns the source of an IP list, named by its path under the
// block-rules server: ListFile("fwrules/emerging-Block-IPs.txt").
func ListFile(path string) Source { return Source(listPrefix + path) }

// List returns the path of a "list:<dir>/<file>" source and true, or ""
// and false for any other source.
func (s Source) List() (string, bool) {
	p, ok := strings.CutPrefix(string(s), listPrefix)
	return p, ok
}

// ParseList reads an IP list as written in ET_BLOCK_LISTS: "<dir>/<file>"
// with dir fwrules or blockrules and a file ending in .txt. A rules file
// (*.rules) is refused with a message saying it is rules and where it
// belongs.
func ParseList(name string) (Source, error) {
	p := strings.TrimSpace(name)
	dir, file, ok := strings.Cut(p, "/")
	switch {
	case !ok || (dir != ListDirFWRules && dir != ListDirBlockRules) || !validSegment(file):
		return "", fmt.Errorf("%w: IP list %q: want fwrules/<file>.txt or blockrules/<file>.txt (e.g. %s, %s)", ErrInvalidSource, p, ListBlockIPs, ListCompromisedIP)
	case dir == ListDirBlockRules && strings.HasSuffix(file, ".rules"):
		return "", fmt.Errorf("%w: %s is a rules file, not an IP list: put block:%s in ET_SOURCES", ErrInvalidSource, p, file)
	case strings.HasSuffix(file, ".rules"):
		return "", fmt.Errorf("%w: %s is a firewall script (iptables/PF/PIX/IPF syntax), not an IP list: ET's IP list there is %s", ErrInvalidSource, p, ListBlockIPs)
	case !strings.HasSuffix(file, ".txt"):
		return "", fmt.Errorf("%w: IP list %q: want a .txt file (e.g. %s, %s)", ErrInvalidSource, p, ListBlockIPs, ListCompromisedIP)
	}
	return ListFile(p), nil
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
