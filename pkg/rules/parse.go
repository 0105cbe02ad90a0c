package rules

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Parse parses one logical line: a rule, a rule commented out with any
// number of leading '#' and white space (Enabled false), a blank line or a
// comment. A blank line and a comment that is not a rule give ErrNotRule; an
// uncommented line that is not a valid rule, and a commented-out rule that
// suricata-update would fail on, give an error wrapping one of ErrMalformed,
// ErrHeader, ErrAction, ErrOptionEnd, ErrNoSID, ErrNumber, ErrNoValue or
// ErrEncoding.
//
// Parse follows suricata-update's rule.py; it differs on purpose in these
// points:
//   - header fields are separated by any run of white space (suricata-update
//     splits on spaces only), and a '[' list may nest or follow '!';
//   - an option ends at the first ';' outside a backslash escape, so "\\;"
//     ends an option as it does in Suricata (suricata-update reads it as an
//     escaped ';');
//   - msg is unescaped as Suricata's detect-msg.c does it (a backslash
//     before any byte is dropped), so Msg is the text Suricata puts in an
//     alert; the raw value stays in Options; flowbits set NoAlert only for
//     the exact value "noalert";
//   - numbers are parsed like Python's int() but ASCII only, and must fit
//     in an int;
//   - a priority that is not an integer is kept in Options only.
func Parse(line string) (*Rule, error) {
	r := new(Rule)
	if !utf8.ValidString(line) {
		return nil, ErrEncoding
	}
	if err := parseInto(r, line); err != nil {
		return nil, err
	}
	return r, nil
}

// actions are the rule actions suricata-update accepts.
var actions = [...]string{"alert", "log", "pass", "activate", "dynamic", "drop", "reject", "sdrop"}

func isAction(s string) bool {
	for _, a := range actions {
		if s == a {
			return true
		}
	}
	return false
}

// parseInto parses line, which must be valid UTF-8, into r, which must be
// zeroed.
func parseInto(r *Rule, line string) error {
	s := trimSpace(line)
	if s == "" {
		return ErrNotRule
	}
	enabled := s[0] != '#'
	// notRule is what a line that does not look like a rule gives: silence
	// for a comment, an error for an uncommented line.
	notRule := func(err error) error {
		if enabled {
			return err
		}
		return ErrNotRule
	}
	body := trimLeftSpaceHash(s)
	open := strings.IndexByte(body, '(')
	if open <= 0 || body[len(body)-1] != ')' || strings.IndexByte(body[:open], ')') >= 0 {
		return notRule(ErrMalformed)
	}
	opts := body[open+1 : len(body)-1]
	if strings.IndexByte(opts, '\n') >= 0 {
		return notRule(ErrMalformed)
	}
	var f [7]string
	n, ok := splitHeader(body[:open], &f)
	switch {
	case !ok || n == 0 || (n > 1 && n < 7):
		return notRule(ErrHeader)
	case !isAction(f[0]):
		return notRule(ErrAction)
	}
	r.Enabled = enabled
	r.Action, r.Proto, r.Src, r.SrcPort, r.Direction, r.Dst, r.DstPort = f[0], f[1], f[2], f[3], f[4], f[5], f[6]
	r.GID = 1
	r.Raw = body
	if err := parseOptions(r, opts); err != nil {
		return err
	}
	if r.SID == 0 {
		return ErrNoSID
	}
	return nil
}

// splitHeader splits h into at most 7 fields on runs of white space outside
// '[' ']' lists. It returns the number of fields found (extra fields are
// ignored, as suricata-update does) and false for an unclosed list.
func splitHeader(h string, f *[7]string) (int, bool) {
	n := 0
	i := 0
	for n < len(f) {
		for i < len(h) && isSpaceAt(h, i) {
			_, size := utf8.DecodeRuneInString(h[i:])
			i += size
		}
		if i >= len(h) {
			return n, true
		}
		start := i
		depth := 0
		for i < len(h) {
			c := h[i]
			if c == '[' {
				depth++
			} else if c == ']' && depth > 0 {
				depth--
			} else if depth == 0 && isSpaceAt(h, i) {
				break
			}
			i++
		}
		if depth > 0 {
			return n, false
		}
		f[n] = h[start:i]
		n++
	}
	return n, true
}

// parseOptions splits opts on unescaped ';' and fills r.
func parseOptions(r *Rule, opts string) error {
	r.Options = make([]Option, 0, strings.Count(opts, ";"))

	for {
		opts = trimLeftSpace(opts)
		if opts == "" {
			return nil
		}
		end := optionEnd(opts)
		if end < 0 {
			return fmt.Errorf("parse option %q: %w", truncate(opts), ErrOptionEnd)
		}
		opt := trimSpace(opts[:end])
		opts = opts[end+1:]
		if opt == "" {
			continue
		}
		name, val, hasVal := strings.Cut(opt, ":")
		name = trimSpace(name)
		val = trimSpace(val)
		r.Options = append(r.Options, Option{Name: name, Value: val})
		if err := applyOption(r, name, val, hasVal); err != nil {
			return err
		}
	}
}

// optionEnd returns the index of the first ';' in s outside a backslash
// escape, or -1.
func optionEnd(s string) int {
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], ';')
		if j < 0 {
			return -1
		}
		k := strings.IndexByte(s[i:i+j], '\\')
		if k < 0 {
			return i + j
		}
		i += k + 2 // skip the backslash and the byte it escapes
	}
	return -1
}

func applyOption(r *Rule, name, val string, hasVal bool) error {
	switch name {
	case "sid", "gid", "rev":
		n, ok := pyInt(val)
		if !hasVal || !ok {
			return fmt.Errorf("parse option %s %q: %w", name, truncate(val), ErrNumber)
		}
		switch name {
		case "sid":
			r.SID = n
		case "gid":
			r.GID = n
		default:
			r.Rev = n
		}
	case "msg":
		if len(val) >= 1 && val[0] == '"' && val[len(val)-1] == '"' {
			if len(val) == 1 {
				val = ""
			} else {
				val = val[1 : len(val)-1]
			}
		}
		r.Msg = unescapeMsg(val)
	case "classtype":
		r.Classtype = val
	case "priority":
		if n, ok := pyInt(val); ok {
			r.Priority = n
		}
	case "reference":
		if val != "" {
			if r.References == nil {
				r.References = make([]Reference, 0, 4)
			}
			t, v, _ := strings.Cut(val, ",")
			r.References = append(r.References, Reference{Type: trimSpace(t), Value: trimSpace(v)})
		}
	case "metadata":
		if !hasVal {
			return fmt.Errorf("parse option metadata: %w", ErrNoValue)
		}
		if r.Metadata == nil {
			r.Metadata = make([]KV, 0, strings.Count(val, ",")+1)
		}
		for val != "" {
			var entry string
			entry, val, _ = strings.Cut(val, ",")
			entry = trimSpace(entry)
			if entry == "" {
				continue
			}
			k, v := entry, ""
			if i := indexSpace(entry); i >= 0 {
				k, v = entry[:i], trimSpace(entry[i:])
			}
			r.Metadata = append(r.Metadata, KV{Key: k, Value: v})
		}
	case "flowbits":
		r.Flowbits = append(r.Flowbits, val)
		if val == "noalert" {
			r.NoAlert = true
		}
	case "noalert":
		r.NoAlert = true
	}
	return nil
}

// unescapeMsg does what Suricata's DetectMsgSetup (src/detect-msg.c) does to
// a msg value: every backslash not itself escaped is dropped and the byte
// after it kept, whatever that byte is (\w gives w, \\ gives \, \; gives
// ;); a lone backslash at the end is dropped. It works on bytes, as
// Suricata does.
func unescapeMsg(s string) string {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	escape := false
	for ; i < len(s); i++ {
		c := s[i]
		if !escape && c == '\\' {
			escape = true
			continue
		}
		escape = false
		b = append(b, c)
	}
	return string(b)
}

// pyInt parses s like Python's int(s) on an already stripped string: an
// optional sign, ASCII digits, and single underscores between digits. It
// reports false on overflow.
func pyInt(s string) (int, bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	const limit = int(^uint(0) >> 1)
	n := 0
	prevDigit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			d := int(c - '0')
			if n > (limit-d)/10 {
				return 0, false
			}
			n = n*10 + d
			prevDigit = true
		case c == '_' && prevDigit && i+1 < len(s):
			prevDigit = false
		default:
			return 0, false
		}
	}
	if !prevDigit {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// isPySpace reports whether r is white space for Python's str.strip and the
// regular expression \s: Unicode white space plus the ASCII separators
// U+001C to U+001F.
func isPySpace(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiSpace[r]
	}
	return unicode.IsSpace(r)
}

// asciiSpace marks the ASCII bytes isPySpace accepts.
var asciiSpace = [utf8.RuneSelf]bool{' ': true, '\t': true, '\n': true, '\v': true, '\f': true, '\r': true, 0x1c: true, 0x1d: true, 0x1e: true, 0x1f: true}

// isSpaceAt reports whether s has Python white space at byte i.
func isSpaceAt(s string, i int) bool {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiSpace[c]
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return isPySpace(r)
}

func indexSpace(s string) int {
	for i := 0; i < len(s); i++ {
		if isSpaceAt(s, i) {
			return i
		}
	}
	return -1
}

func trimLeftSpace(s string) string {
	for s != "" {
		c := s[0]
		if c < utf8.RuneSelf {
			if !asciiSpace[c] {
				return s
			}
			s = s[1:]
			continue
		}
		r, size := utf8.DecodeRuneInString(s)
		if !isPySpace(r) {
			return s
		}
		s = s[size:]
	}
	return s
}

// trimLeftSpaceHash drops the leading run of '#' and white space.
func trimLeftSpaceHash(s string) string {
	for s != "" {
		if s[0] == '#' {
			s = s[1:]
			continue
		}
		t := trimLeftSpace(s)
		if len(t) == len(s) {
			return s
		}
		s = t
	}
	return s
}

func trimRightSpace(s string) string {
	for s != "" {
		c := s[len(s)-1]
		if c < utf8.RuneSelf {
			if !asciiSpace[c] {
				return s
			}
			s = s[:len(s)-1]
			continue
		}
		r, size := utf8.DecodeLastRuneInString(s)
		if !isPySpace(r) {
			return s
		}
		s = s[:len(s)-size]
	}
	return s
}

func trimSpace(s string) string { return trimRightSpace(trimLeftSpace(s)) }

// truncate shortens s for an error message.
func truncate(s string) string {
	const most = 40
	if len(s) <= most {
		return s
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
