package et

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// ThreatQ indicator types of the addresses of an IP list.
const (
	TypeIPAddress   = "IP Address"
	TypeIPv6Address = "IPv6 Address"
	TypeCIDRBlock   = "CIDR Block"
)

// Limits of [ParseIPList].
const (
	// MaxIPListLine is the longest line read; a longer one is a bad line.
	MaxIPListLine = 4 << 10
	// MaxIPListEntries is the most addresses kept from one list; the rest
	// are reported as one error.
	MaxIPListEntries = 1 << 20
	// maxBadLines is the most bad lines kept in an IPList.
	maxBadLines = 1000
)

// ErrBadLine is a line of an IP list that is neither an address, a CIDR
// block, a comment nor blank.
var ErrBadLine = errors.New("not an IP address or CIDR block")

// ErrTooManyEntries is an IP list with more than [MaxIPListEntries]
// addresses.
var ErrTooManyEntries = errors.New("too many addresses in the IP list")

// IPEntry is one address of an IP list.
type IPEntry struct {
	// Value is the address or CIDR block in canonical form (netip's).
	Value string
	// Type is its ThreatQ indicator type: [TypeIPAddress],
	// [TypeIPv6Address] or [TypeCIDRBlock].
	Type string
	// Line is the 1-based line it was read from.
	Line int
}

// LineError is a bad line of an IP list.
type LineError struct {
	// File is the list's name, as given to ParseIPList.
	File string
	// Line is the 1-based line number.
	Line int
	// Text is the line, shortened to 80 bytes.
	Text string
	// Err says what is wrong; it wraps [ErrBadLine].
	Err error
}

// Error implements error: "<file>:<line>: <what> (<text>)".
func (e *LineError) Error() string {
	return fmt.Sprintf("%s:%d: %v: %q", e.File, e.Line, e.Err, e.Text)
}

// Unwrap returns what is wrong.
func (e *LineError) Unwrap() error { return e.Err }

// IPList is a parsed IP list.
type IPList struct {
	// Entries are the addresses in the order of the file, each once.
	Entries []IPEntry
	// Bad are the bad lines, at most 1000 (BadCount counts them all).
	Bad []*LineError
	// BadCount is the number of bad lines.
	BadCount int
	// Lines is the number of lines read; Comments and Blank count the
	// comment and blank ones; Duplicates the addresses seen before.
	Lines, Comments, Blank, Duplicates int
}

// ParseIPList reads an ET IP list, such as fwrules/emerging-Block-IPs.txt
// or blockrules/compromised-ips.txt: one IPv4 or IPv6 address or CIDR
// block per line; '#' starts a comment, at the start of a line or after
// white space; blank lines are skipped; CRLF line ends are accepted. A line
// that is anything else (a rule, a range, a CIDR block with host bits set,
// bad UTF-8, more than [MaxIPListLine] bytes) is a bad line: it is
// reported with its file and line number and skipped, never fatal. The
// error is only for a failed read or more than [MaxIPListEntries]
// addresses.
func ParseIPList(r io.Reader, file string) (*IPList, error) {
	l := &IPList{}
	seen := make(map[string]bool)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, tooLong, err := readLine(br)
		if len(line) > 0 || tooLong || err == nil {
			l.Lines++
			l.parseLine(line, tooLong, file, seen)
			if len(l.Entries) > MaxIPListEntries {
				return nil, fmt.Errorf("parse IP list %s: %w: more than %d", file, ErrTooManyEntries, MaxIPListEntries)
			}
		}
		if errors.Is(err, io.EOF) {
			return l, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read IP list %s line %d: %w", file, l.Lines+1, err)
		}
	}
}

// readLine returns the next line without its end; tooLong says it was cut
// at MaxIPListLine (the rest is skipped). err is io.EOF after the last
// line.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return buf, tooLong, err
		}
		if !tooLong {
			buf = append(buf, chunk...)
			if len(buf) > MaxIPListLine {
				buf, tooLong = buf[:MaxIPListLine], true
			}
		}
		if !isPrefix {
			return buf, tooLong, nil
		}
	}
}

func (l *IPList) parseLine(raw []byte, tooLong bool, file string, seen map[string]bool) {
	bad := func(what string) {
		l.BadCount++
		if len(l.Bad) < maxBadLines {
			text := string(raw)
			if len(text) > 80 {
				text = strings.ToValidUTF8(text[:80], "") + "..."
			}
			l.Bad = append(l.Bad, &LineError{File: file, Line: l.Lines, Text: strings.ToValidUTF8(text, "?"), Err: fmt.Errorf("%w: %s", ErrBadLine, what)})
		}
	}
	switch {
	case tooLong:
		bad(fmt.Sprintf("line longer than %d bytes", MaxIPListLine))
		return
	case !utf8.Valid(raw):
		bad("not UTF-8")
		return
	}
	s := raw
	if i := bytes.IndexByte(s, '#'); i >= 0 {
		if i == 0 || isBlank(s[i-1]) {
			s = s[:i]
		}
	}
	s = bytes.TrimSpace(s)
	if len(s) == 0 {
		if bytes.IndexByte(raw, '#') >= 0 {
			l.Comments++
		} else {
			l.Blank++
		}
		return
	}
	e, what := parseAddress(string(s))
	if what != "" {
		bad(what)
		return
	}
	if seen[e.Value] {
		l.Duplicates++
		return
	}
	seen[e.Value] = true
	e.Line = l.Lines
	l.Entries = append(l.Entries, e)
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// parseAddress reads one address or CIDR block; what says why it is not
// one.
func parseAddress(s string) (IPEntry, string) {
	if strings.ContainsAny(s, " \t") {
		return IPEntry{}, "more than one field"
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			return IPEntry{}, "bad CIDR block"
		case p.Masked() != p:
			return IPEntry{}, "CIDR block with host bits set (want " + p.Masked().String() + ")"
		}
		return IPEntry{Value: p.String(), Type: TypeCIDRBlock}, ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return IPEntry{}, "bad address"
	}
	a = a.Unmap()
	if a.Is4() {
		return IPEntry{Value: a.String(), Type: TypeIPAddress}, ""
	}
	return IPEntry{Value: a.String(), Type: TypeIPv6Address}, ""
}
