package rules

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// classificationFile is the name of the classification file in a ruleset.
const classificationFile = "classification.config"

// Walk reads the ruleset at path (a .rules file, a directory or a gzipped
// tarball) with a zero [Parser]; see [Parser.Walk].
func Walk(path string, fn func(*Rule, error) error) error {
	var p Parser
	_, err := p.Walk(path, fn)
	return err
}

// WalkTarball reads a gzipped tar ruleset from r with a zero [Parser]; see
// [Parser.WalkTarball].
func WalkTarball(r io.Reader, name string, fn func(*Rule, error) error) error {
	var p Parser
	_, err := p.WalkTarball(r, name, fn)
	return err
}

// Walk reads the ruleset named name and calls fn as [Parser.ParseFile]
// does. The name is one of:
//   - a gzipped tar file (name ending in .tar.gz or .tgz), read as
//     [Parser.WalkTarball] does; classification.config is looked for in the
//     archive first, so rules are streamed with their priorities;
//   - a directory, whose regular *.rules files are read in name order, with the
//     directory's classification.config;
//   - a rules file, with the classification.config beside it.
//
// Rule.File is the member path inside a tarball ("rules/emerging-dns.rules")
// and the base name of a file on disk. When p.Classifications is not nil it
// is used instead of the ruleset's classification.config; malformed entries
// of the latter are handed to fn as *LineError values.
func (p *Parser) Walk(name string, fn func(*Rule, error) error) (Stats, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return Stats{}, fmt.Errorf("walk ruleset: %w", err)
	}
	q := *p
	switch {
	case fi.IsDir():
		ents, err := os.ReadDir(name)
		if err != nil {
			return Stats{}, fmt.Errorf("walk ruleset: %w", err)
		}
		if err := q.loadClassifications(filepath.Join(name, classificationFile), fn); err != nil {
			return Stats{}, err
		}
		var st Stats
		for _, e := range ents { // ReadDir sorts by name.
			if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".rules") {
				fst, err := q.parseDiskFile(filepath.Join(name, e.Name()), e.Name(), fn)
				st.Add(fst)
				if err != nil {
					return st, err
				}
			}
		}
		return st, nil
	case isTarball(name):
		if q.Classifications == nil {
			q.Classifications = findTarClassifications(name)
		}
		f, err := os.Open(name)
		if err != nil {
			return Stats{}, fmt.Errorf("walk ruleset: %w", err)
		}
		defer func() { _ = f.Close() }()
		return q.WalkTarball(f, name, fn)
	default:
		if err := q.loadClassifications(filepath.Join(filepath.Dir(name), classificationFile), fn); err != nil {
			return Stats{}, err
		}
		return q.parseDiskFile(name, filepath.Base(name), fn)
	}
}

func isTarball(name string) bool {
	return strings.HasSuffix(name, ".tar.gz") || strings.HasSuffix(name, ".tgz")
}

// loadClassifications sets p.Classifications from file when it is nil and
// the file exists.
func (p *Parser) loadClassifications(file string, fn func(*Rule, error) error) error {
	if p.Classifications != nil {
		return nil
	}
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("walk ruleset: %w", err)
	}
	defer func() { _ = f.Close() }()
	m, err := ParseClassificationConfig(f)
	p.Classifications = m
	return reportClassErrs(err, file, fn)
}

// reportClassErrs hands each *LineError joined in err to fn, named file, and
// returns any other error, or fn's.
func reportClassErrs(err error, file string, fn func(*Rule, error) error) error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var le *LineError
		if !errors.As(e, &le) {
			return fmt.Errorf("walk ruleset: %w", e)
		}
		le.File = file
		if ferr := fn(nil, le); ferr != nil {
			return ferr
		}
	}
	return nil
}

func (p *Parser) parseDiskFile(file, name string, fn func(*Rule, error) error) (Stats, error) {
	f, err := os.Open(file)
	if err != nil {
		return Stats{}, fmt.Errorf("walk ruleset: %w", err)
	}
	defer func() { _ = f.Close() }()
	return p.ParseFile(f, name, fn)
}

// findTarClassifications returns the classification.config of the tarball
// file, or an empty map when there is none or it cannot be read (the main
// pass reports read errors).
func findTarClassifications(file string) map[string]Classification {
	f, err := os.Open(file)
	if err != nil {
		return map[string]Classification{}
	}
	defer func() { _ = f.Close() }()
	tr, err := OpenTarball(context.Background(), f, TarLimits{})
	if err != nil {
		return map[string]Classification{}
	}
	for {
		hdr, err := tr.Next()
		if err != nil {
			return map[string]Classification{}
		}
		if hdr.Typeflag == tar.TypeReg && path.Base(hdr.Name) == classificationFile {
			m, _ := ParseClassificationConfig(tr) // errors are reported by the main pass
			return m
		}
	}
}

// heldFile is a rules file read from a tarball before its
// classification.config.
type heldFile struct {
	name string
	data []byte
	err  error // the read error that cut data short, if any
}

// WalkTarball reads a gzipped tar ruleset from r, named name in errors, and
// calls fn for the rules of every regular member whose name ends in .rules,
// in archive order, as [Parser.ParseFile] does; Rule.File is the member
// path.
//
// When p.Classifications is nil, the archive's classification.config gives
// the priorities; rules files that come before it in the archive are held in
// memory until it is read (ET tarballs put it after most rules files). To
// stream with no holding, set p.Classifications, to an empty map if need be.
//
// A truncated archive gives an error wrapping ErrTruncated that names the
// tarball, the member being read and the counts read so far; the rules
// handed to fn before stay handed, and the incomplete last line is dropped.
// The gzip trailer is checked after the last member.
//
// The archive is read as a [Tarball] within p.Limits: a sparse member, a
// member too large or an archive that decompresses to too much is an
// error.
func (p *Parser) WalkTarball(r io.Reader, name string, fn func(*Rule, error) error) (Stats, error) {
	return p.WalkTarballContext(context.Background(), r, name, fn)
}

// WalkTarballContext is [Parser.WalkTarball] stopping when ctx ends.
func (p *Parser) WalkTarballContext(ctx context.Context, r io.Reader, name string, fn func(*Rule, error) error) (Stats, error) {
	var st Stats
	tr, err := OpenTarball(ctx, r, p.Limits)
	if err != nil {
		return st, archiveErr(name, "", st, err)
	}
	q := *p
	hold := q.Classifications == nil
	var held []heldFile
	// fnErr tells fn's errors apart from read errors.
	var fnErr error
	call := func(rule *Rule, err error) error {
		if ferr := fn(rule, err); ferr != nil {
			fnErr = ferr
			return ferr
		}
		return nil
	}
	flush := func() error {
		for _, h := range held {
			var src io.Reader = bytes.NewReader(h.data)
			if h.err != nil {
				src = io.MultiReader(src, errReader{h.err})
			}
			fst, err := q.ParseFile(src, h.name, call)
			fst.Files = 0 // counted when read
			st.Add(fst)
			if err != nil {
				if errors.Is(err, fnErr) {
					return err
				}
				return archiveErr(name, h.name, st, h.err)
			}
		}
		held = nil
		return nil
	}
	member := ""
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return st, ferr
			}
			return st, archiveErr(name, member, st, err)
		}
		member = hdr.Name
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		base := path.Base(hdr.Name)
		switch {
		case base == classificationFile && p.Classifications == nil:
			m, cerr := ParseClassificationConfig(tr)
			var le *LineError
			if cerr != nil && !errors.As(cerr, &le) {
				if ferr := flush(); ferr != nil {
					return st, ferr
				}
				return st, archiveErr(name, member, st, cerr)
			}
			q.Classifications = m
			if err := reportClassErrs(cerr, hdr.Name, call); err != nil {
				return st, err
			}
			hold = false
			if err := flush(); err != nil {
				return st, err
			}
		case strings.HasSuffix(base, ".rules"):
			st.Files++
			if hold {
				data, err := io.ReadAll(tr)
				held = append(held, heldFile{name: hdr.Name, data: data, err: err})
				if err != nil {
					if ferr := flush(); ferr != nil {
						return st, ferr
					}
					return st, archiveErr(name, member, st, err)
				}
				continue
			}
			fst, err := q.ParseFile(tr, hdr.Name, call)
			fst.Files = 0
			st.Add(fst)
			if err != nil {
				if errors.Is(err, fnErr) {
					return st, err
				}
				return st, archiveErr(name, member, st, err)
			}
		}
	}
	// Reading the rest checks the gzip trailer (size and CRC).
	if err := tr.Finish(); err != nil {
		if ferr := flush(); ferr != nil {
			return st, ferr
		}
		return st, archiveErr(name, member, st, err)
	}
	if err := flush(); err != nil {
		return st, err
	}
	return st, nil
}

// archiveErr describes a read error in the tarball name at member.
func archiveErr(name, member string, st Stats, err error) error {
	where := ""
	if member != "" {
		where = fmt.Sprintf(" in or after member %q", member)
	}
	so := fmt.Sprintf("%d rules files, %d rules, %d lines read so far", st.Files, st.Rules(), st.Lines)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("read tarball %s: %w%s (%s): %w", name, ErrTruncated, where, so, err)
	}
	return fmt.Errorf("read tarball %s%s (%s): %w", name, where, so, err)
}

// errReader returns its error on every read.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
