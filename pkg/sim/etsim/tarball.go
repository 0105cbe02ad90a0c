package etsim

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// maxMember caps one tarball member RewriteTarball reads into memory; the
// largest real ET rules file is about 10 MB.
const maxMember = 256 << 20

// RewriteTarball rebuilds the tar.gz in with every regular file passed
// through edit, which gets the member's name (e.g. "rules/emerging-scan.rules")
// and content and returns the content to store: the same slice to keep it,
// a different one to change it. Headers (names, modes, times) and the order
// of members are kept; only sizes follow the new contents.
func RewriteTarball(in []byte, edit func(file string, content []byte) []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(in))
	if err != nil {
		return nil, fmt.Errorf("open gzip stream: %w", err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar header: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, fmt.Errorf("write tar header %s: %w", hdr.Name, err)
			}
			continue
		}
		if hdr.Size > maxMember {
			return nil, fmt.Errorf("read %s: %d bytes is more than %d", hdr.Name, hdr.Size, maxMember)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", hdr.Name, err)
		}
		if edit != nil {
			content = edit(hdr.Name, content)
		}
		nh := *hdr
		nh.Size = int64(len(content))
		if err := tw.WriteHeader(&nh); err != nil {
			return nil, fmt.Errorf("write tar header %s: %w", hdr.Name, err)
		}
		if _, err := tw.Write(content); err != nil {
			return nil, fmt.Errorf("write %s: %w", hdr.Name, err)
		}
	}
	if err := zr.Close(); err != nil {
		return nil, fmt.Errorf("close gzip stream: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar stream: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("close gzip writer: %w", err)
	}
	return out.Bytes(), nil
}
