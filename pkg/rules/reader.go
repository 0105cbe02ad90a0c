package rules

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"unicode/utf8"
)

// DefaultMaxLineBytes is the longest physical line a [Parser] reads when its
// MaxLineBytes is zero. ET's longest rule is about 3.3 KB.
const DefaultMaxLineBytes = 1 << 20

// Parser reads rules files. The zero value is ready to use.
type Parser struct {
	// Classifications, when not nil, gives the priority of rules that have
	// a classtype and no priority option. When nil, Walk and WalkTarball
	// use the ruleset's own classification.config if they find one.
	Classifications map[string]Classification
	// MaxLineBytes bounds one physical line; a longer line is skipped with
	// ErrLineTooLong. Zero means DefaultMaxLineBytes.
	MaxLineBytes int
	// Limits bounds the tarballs WalkTarball and Walk read.
	Limits TarLimits
}

// Stats accounts for every physical line read: Lines equals Enabled +
// Disabled + Comments + Blank + Errors + Continued.
type Stats struct {
	// Files is the number of rules files read.
	Files int
	// Lines is the number of physical lines read.
	Lines int
	// Enabled is the number of uncommented rules.
	Enabled int
	// Disabled is the number of commented-out rules.
	Disabled int
	// Comments is the number of comment lines that are not rules.
	Comments int
	// Blank is the number of empty or all-white-space lines.
	Blank int
	// Errors is the number of lines reported as a *LineError.
	Errors int
	// Continued is the number of physical lines ending in a backslash,
	// joined to the line after them.
	Continued int
}

// Rules returns Enabled + Disabled.
func (s Stats) Rules() int { return s.Enabled + s.Disabled }

// Add adds the counts of o to s.
func (s *Stats) Add(o Stats) {
	s.Files += o.Files
	s.Lines += o.Lines
	s.Enabled += o.Enabled
	s.Disabled += o.Disabled
	s.Comments += o.Comments
	s.Blank += o.Blank
	s.Errors += o.Errors
	s.Continued += o.Continued
}

// ParseFile reads the rules file r with a zero [Parser]; see
// [Parser.ParseFile].
func ParseFile(r io.Reader, name string, fn func(*Rule, error) error) error {
	var p Parser
	_, err := p.ParseFile(r, name, fn)
	return err
}

// Rules returns an iterator over the rules file r read with a zero
// [Parser]; see [Parser.Rules].
func Rules(r io.Reader, name string) iter.Seq2[*Rule, error] {
	var p Parser
	return p.Rules(r, name)
}

// ParseFile reads the rules file r, named name in Rule.File and
// LineError.File, and calls fn for every rule in order, with a nil error, and
// for every bad line, with a nil rule and a *LineError; after a bad line it
// goes on. Blank lines and comments that are not rules are skipped. Lines
// may end in LF, CRLF or CR (as Python reads them); a line ending in a
// backslash is joined to the next one and the rule keeps the number of its
// first line. A UTF-8 byte order mark at the start is ignored.
//
// ParseFile stops when fn returns an error, and returns that error as is; it
// also stops on a read error, which it returns wrapped, without parsing the
// incomplete last line. The Stats account for the lines read so far.
func (p *Parser) ParseFile(r io.Reader, name string, fn func(*Rule, error) error) (Stats, error) {
	st := Stats{Files: 1}
	most := p.MaxLineBytes
	if most <= 0 {
		most = DefaultMaxLineBytes
	}
	lr := lineReader{br: bufio.NewReaderSize(r, 64<<10), max: most}
	var (
		cont      []byte // the continued lines so far, backslashes removed
		contStart int
	)
	var rule *Rule // reused after lines that are not rules
	emit := func(line []byte, num int) error {
		if len(trimRightSpaceBytes(line)) == 0 {
			st.Blank++
			return nil
		}
		if rule == nil {
			rule = new(Rule)
		} else {
			*rule = Rule{}
		}
		err := parseInto(rule, string(line))
		switch {
		case err == nil:
			r := rule
			rule = nil
			if r.Enabled {
				st.Enabled++
			} else {
				st.Disabled++
			}
			r.File, r.Line = name, num
			p.fillPriority(r)
			return fn(r, nil)
		case errors.Is(err, ErrNotRule):
			st.Comments++
			return nil
		default:
			st.Errors++
			return fn(nil, &LineError{File: name, Line: num, Err: err})
		}
	}
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		num := lr.n
		if errors.Is(err, ErrLineTooLong) {
			st.Lines++
			st.Errors++
			cont = cont[:0]
			if ferr := fn(nil, &LineError{File: name, Line: num, Err: err}); ferr != nil {
				return st, ferr
			}
			continue
		}
		if err != nil {
			return st, fmt.Errorf("read %s after line %d: %w", name, lr.n, err)
		}
		st.Lines++
		if num == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		if !utf8.Valid(line) {
			// As suricata-update 1.3: the line is reported and a rule
			// continued onto it is dropped.
			if len(cont) > 0 {
				num = contStart
				cont = cont[:0]
			}
			st.Errors++
			if ferr := fn(nil, &LineError{File: name, Line: num, Err: ErrEncoding}); ferr != nil {
				return st, ferr
			}
			continue
		}
		if t := trimRightSpaceBytes(line); len(t) > 0 && t[len(t)-1] == '\\' {
			if len(cont) == 0 {
				contStart = num
			}
			cont = append(cont, t[:len(t)-1]...)
			cont = append(cont, ' ')
			st.Continued++
			continue
		}
		if len(cont) > 0 {
			cont = append(cont, line...)
			line, num = cont, contStart
			cont = cont[:0]
		}
		if ferr := emit(line, num); ferr != nil {
			return st, ferr
		}
	}
	if len(cont) > 0 {
		// A continuation at the end of the file: suricata-update drops it,
		// we parse what there is.
		// Its last line is accounted for as the logical line.
		st.Continued--
		if ferr := emit(cont, contStart); ferr != nil {
			return st, ferr
		}
	}
	return st, nil
}

// Rules returns an iterator over the rules file r with the semantics of
// [Parser.ParseFile]: it yields (rule, nil) for every rule and (nil,
// *LineError) for every bad line and goes on; a read error is yielded last,
// wrapped. Stopping the loop stops reading.
func (p *Parser) Rules(r io.Reader, name string) iter.Seq2[*Rule, error] {
	return func(yield func(*Rule, error) bool) {
		errStop := errors.New("stop")
		_, err := p.ParseFile(r, name, func(rule *Rule, err error) error {
			if !yield(rule, err) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(nil, err)
		}
	}
}

func (p *Parser) fillPriority(r *Rule) {
	if r.Priority != 0 || r.Classtype == "" || p.Classifications == nil {
		return
	}
	if c, ok := p.Classifications[r.Classtype]; ok {
		r.Priority = c.Priority
	}
}

func trimRightSpaceBytes(b []byte) []byte {
	for len(b) > 0 {
		c := b[len(b)-1]
		if c < utf8.RuneSelf {
			if !asciiSpace[c] {
				return b
			}
			b = b[:len(b)-1]
			continue
		}
		r, size := utf8.DecodeLastRune(b)
		if !isPySpace(r) {
			return b
		}
		b = b[:len(b)-size]
	}
	return b
}

// lineReader splits its input into lines ending in LF, CRLF or CR, as
// Python's universal newlines do.
type lineReader struct {
	br      *bufio.Reader
	max     int
	acc     []byte
	pending [][]byte
	n       int   // number of the line last returned
	err     error // sticky error after the last line
}

// next returns the next line without its terminator, valid until the next
// call. It returns io.EOF after the last line, ErrLineTooLong for an
// over-long line (which it skips), or the read error; the data before a read
// error is dropped.
func (lr *lineReader) next() ([]byte, error) {
	if len(lr.pending) > 0 {
		l := lr.pending[0]
		lr.pending = lr.pending[1:]
		lr.n++
		return l, nil
	}
	if lr.err != nil {
		return nil, lr.err
	}
	chunk, err := lr.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		tooLong := false
		lr.acc = append(lr.acc[:0], chunk...)
		for errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = lr.br.ReadSlice('\n')
			if tooLong || len(lr.acc)+len(chunk) > lr.max {
				tooLong = true
				continue
			}
			lr.acc = append(lr.acc, chunk...)
		}
		if tooLong {
			if err != nil {
				lr.err = err
			}
			lr.n++
			return nil, ErrLineTooLong
		}
		chunk = lr.acc
	}
	switch {
	case err == io.EOF:
		if len(chunk) == 0 {
			lr.err = io.EOF
			return nil, io.EOF
		}
		lr.err = io.EOF
	case err != nil:
		lr.err = err
		return nil, err
	}
	body := chunk
	if n := len(body); n > 0 && body[n-1] == '\n' {
		body = body[:n-1]
	}
	if n := len(body); n > 0 && body[n-1] == '\r' {
		body = body[:n-1]
	}
	if bytes.IndexByte(body, '\r') < 0 {
		lr.n++
		return body, nil
	}
	lr.pending = bytes.Split(body, []byte{'\r'})
	return lr.next()
}
