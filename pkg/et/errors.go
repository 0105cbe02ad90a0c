package et

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// Sentinel errors; test for them with errors.Is.
var (
	// ErrInvalidSource is a source name that is not one of the ET sources.
	ErrInvalidSource = errors.New("invalid source")
	// ErrOinkcodeRejected is ET Pro answering 401 or 403: the oinkcode is
	// wrong, expired or not entitled to the flavour. It is permanent.
	ErrOinkcodeRejected = errors.New("ET Pro rejected the oinkcode")
	// ErrUnknownFlavour is a 404 for a ruleset: the server has no such
	// flavour. It is permanent.
	ErrUnknownFlavour = errors.New("unknown flavour")
	// ErrNotFound is a 404 for a block-rules file. It is permanent.
	ErrNotFound = errors.New("not found")
	// ErrMD5Mismatch is a downloaded artefact whose md5 is not the one
	// published; see [MismatchError]. It is permanent.
	ErrMD5Mismatch = errors.New("md5 mismatch")
	// ErrTruncated is a body that ended before its Content-Length or its
	// chunked framing said it would. It is transient.
	ErrTruncated = errors.New("truncated body")
	// ErrTooLarge is an artefact larger than Config.MaxSize. It is
	// permanent.
	ErrTooLarge = errors.New("artefact too large")
	// ErrBadMD5File is a .md5 file that holds no md5. It is permanent.
	ErrBadMD5File = errors.New("no md5 in .md5 file")
)

// MismatchError is a downloaded artefact whose md5 differs from the one ET
// published: nothing written by that download may be used.
type MismatchError struct {
	// Published is the md5 read from the .md5 file.
	Published string
	// Downloaded is the md5 of the bytes received.
	Downloaded string
}

// Error implements error.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("md5 mismatch: published %s, downloaded %s", e.Published, e.Downloaded)
}

// Is makes errors.Is(err, ErrMD5Mismatch) true.
func (e *MismatchError) Is(target error) bool { return target == ErrMD5Mismatch }

// Transient reports false: the same bytes will not hash differently.
func (e *MismatchError) Transient() bool { return false }

// classified gives an error a transient-or-permanent verdict.
type classified struct {
	err       error
	transient bool
}

func (c classified) Error() string   { return c.err.Error() }
func (c classified) Unwrap() error   { return c.err }
func (c classified) Transient() bool { return c.transient }

func permanent(err error) error { return classified{err: err} }

func transient(err error) error { return classified{err: err, transient: true} }

// scrubber removes secrets (the oinkcode, passwords in base URLs, the
// process's other secrets) from errors that come from net/http, with
// pkg/httpx's scrubber.
type scrubber struct {
	s *httpx.Scrubber
}

// scrub returns err without a *url.Error on top (its URL may hold the
// oinkcode) and with any secret left in its text replaced; an error with
// another *url.Error deeper in its chain is rebuilt from its text too, so
// that nothing can reach a URL through Unwrap.
func (s scrubber) scrub(err error) error {
	if err == nil {
		return nil
	}
	if ue, ok := err.(*url.Error); ok { //nolint:errorlint // Only the top one, which net/http adds, is replaced.
		err = ue.Err
	}
	var deeper *url.Error
	if errors.As(err, &deeper) {
		return s.s.Rebuild(err)
	}
	return s.s.Error(err)
}

// redactedCode replaces the oinkcode in every URL this package shows.
const redactedCode = "<oinkcode>"
