package rules

import (
	"errors"
	"fmt"
)

// ErrNotRule is returned by [Parse] for a blank line or a comment that is
// not a (commented-out) rule. Callers skip such lines silently.
var ErrNotRule = errors.New("not a rule")

// ErrMalformed is returned for an uncommented line that does not have the
// shape "header (options)" with nothing after the closing parenthesis.
var ErrMalformed = errors.New("malformed rule")

// ErrHeader is returned for a rule header that does not hold the seven
// fields action, protocol, source, source port, direction, destination and
// destination port (or a single action word), or whose '[' list is not
// closed.
var ErrHeader = errors.New("malformed rule header")

// ErrAction is returned for a rule whose action is not one suricata-update
// knows: alert, log, pass, activate, dynamic, drop, reject or sdrop.
var ErrAction = errors.New("unknown rule action")

// ErrOptionEnd is returned when the last option of a rule is not terminated
// by an unescaped ';'.
var ErrOptionEnd = errors.New("rule option not terminated by ';'")

// ErrNoSID is returned for a rule without a sid option, or with sid 0.
var ErrNoSID = errors.New("rule has no sid")

// ErrNumber is returned when gid, sid or rev is missing its value or is not
// an integer.
var ErrNumber = errors.New("invalid number")

// ErrNoValue is returned for an option that needs a value and has none
// (metadata).
var ErrNoValue = errors.New("option has no value")

// ErrEncoding is returned for a line that is not valid UTF-8.
var ErrEncoding = errors.New("line is not valid UTF-8")

// ErrLineTooLong is returned for a physical line longer than the parser's
// limit; the line is skipped.
var ErrLineTooLong = errors.New("line too long")

// ErrTruncated is returned when a ruleset archive ends before its end: a
// truncated gzip stream or tar member.
var ErrTruncated = errors.New("truncated archive")

// ErrClassification is returned for a "config classification:" line that is
// not "name,description,priority" with an integer priority.
var ErrClassification = errors.New("malformed classification")

// LineError is the error for one bad line of a rules file. The file readers
// hand it to their callback and go on with the next line.
type LineError struct {
	// File is the name of the file the line came from, as given to the
	// reader.
	File string
	// Line is the 1-based number of the line; for a rule continued over
	// several lines, the number of its first line.
	Line int
	// Err says what is wrong; it wraps one of the package's sentinels.
	Err error
}

// Error implements error.
func (e *LineError) Error() string {
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

// Unwrap returns the underlying error, so errors.Is finds the sentinel.
func (e *LineError) Unwrap() error { return e.Err }
