package rules

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Bounds of a ruleset archive, where [TarLimits] leaves them zero. ET's
// tarballs are about 5 MB compressed and 40 MB decompressed; their largest
// member, emerging-all.rules where shipped, about 30 MB.
const (
	DefaultMaxMember = 128 << 20
	DefaultMaxTotal  = 1 << 30
)

// ErrSparseMember is a tar member stored sparse: its holes read as zeros
// that are not in the archive, so a few hundred bytes can claim exabytes.
// No ruleset has one; it is refused.
var ErrSparseMember = errors.New("sparse tar member")

// ErrMemberTooLarge is a tar member larger than TarLimits.MaxMember.
var ErrMemberTooLarge = errors.New("tar member too large")

// ErrArchiveTooLarge is an archive that decompresses to more than
// TarLimits.MaxTotal (a gzip bomb).
var ErrArchiveTooLarge = errors.New("archive decompresses to too much")

// TarLimits bounds what a [Tarball] reads.
type TarLimits struct {
	// MaxMember is the largest member accepted; DefaultMaxMember when
	// zero.
	MaxMember int64
	// MaxTotal is the most decompressed bytes read, headers and padding
	// included; DefaultMaxTotal when zero.
	MaxTotal int64
}

func (l TarLimits) withDefaults() TarLimits {
	if l.MaxMember <= 0 {
		l.MaxMember = DefaultMaxMember
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = DefaultMaxTotal
	}
	return l
}

// Tarball reads a gzipped tar archive from an untrusted source within
// bounds: it refuses sparse members and members over MaxMember, stops
// after MaxTotal decompressed bytes, and stops when its context ends,
// checked on every read. Read reads the current member, as tar.Reader
// does. It is not safe for concurrent use.
type Tarball struct {
	gz  *gzip.Reader
	tr  *tar.Reader
	cnt *boundedReader
	lim TarLimits
}

// OpenTarball starts reading the gzipped tar r.
func OpenTarball(ctx context.Context, r io.Reader, lim TarLimits) (*Tarball, error) {
	lim = lim.withDefaults()
	gz, err := gzip.NewReader(&ctxReader{ctx: ctx, r: r})
	if err != nil {
		return nil, fmt.Errorf("open gzip stream: %w", err)
	}
	cnt := &boundedReader{ctx: ctx, r: gz, left: lim.MaxTotal}
	return &Tarball{gz: gz, tr: tar.NewReader(cnt), cnt: cnt, lim: lim}, nil
}

// Next advances to the next member and returns its header; io.EOF after
// the last. A sparse member ([ErrSparseMember]) or one over MaxMember
// ([ErrMemberTooLarge]) is an error: the archive is not to be trusted.
func (t *Tarball) Next() (*tar.Header, error) {
	hdr, err := t.tr.Next()
	if err != nil {
		return nil, err
	}
	if sparse(hdr) {
		return nil, fmt.Errorf("member %q: %w", hdr.Name, ErrSparseMember)
	}
	if hdr.Size > t.lim.MaxMember {
		return nil, fmt.Errorf("member %q of %d bytes: %w (limit %d)", hdr.Name, hdr.Size, ErrMemberTooLarge, t.lim.MaxMember)
	}
	return hdr, nil
}

// Read reads from the current member.
func (t *Tarball) Read(p []byte) (int, error) { return t.tr.Read(p) }

// Finish reads what follows the last member, which checks the gzip
// trailer (size and CRC), still within the bounds.
func (t *Tarball) Finish() error {
	if _, err := io.Copy(io.Discard, t.cnt); err != nil {
		return fmt.Errorf("read gzip trailer: %w", err)
	}
	return nil
}

// sparse reports whether hdr is a sparse member in any of tar's forms: the
// old GNU type 'S', or the PAX GNU.sparse records (formats 0.0 to 1.0).
func sparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// ctxReader stops reading when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("read archive: %w", err)
	}
	return c.r.Read(p)
}

// boundedReader reads at most left bytes, then fails with
// ErrArchiveTooLarge, and stops when its context ends.
type boundedReader struct {
	ctx  context.Context
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, fmt.Errorf("read archive: %w", err)
	}
	if b.left <= 0 {
		// One byte more tells a stream that ends exactly at the bound
		// from one that goes on.
		var one [1]byte
		if n, err := b.r.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, ErrArchiveTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
