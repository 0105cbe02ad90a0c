// Package rulestest makes hostile ruleset tarballs for tests: a sparse
// member that claims exabytes, and gzip bombs of zeros.
package rulestest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
)

// GNUSparse returns a gzipped tar of one old-GNU sparse member (type 'S')
// named rules/emerging-bomb.rules that stores no data and claims 2^62
// bytes of hole: about a hundred bytes that a naive reader reads as zeros
// for ever.
func GNUSparse() []byte {
	var h [512]byte
	copy(h[0:], "rules/emerging-bomb.rules")
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], "00000000000\x00") // no data stored
	copy(h[136:], "00000000000\x00")
	h[156] = 'S'
	copy(h[257:], "ustar  \x00") // the GNU magic and version
	// realsize, in base-256: 2^62.
	h[483] = 0x80
	binary.BigEndian.PutUint64(h[487:495], 1<<62)
	for i := 148; i < 156; i++ {
		h[i] = ' '
	}
	sum := 0
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	var tarBytes bytes.Buffer
	tarBytes.Write(h[:])
	tarBytes.Write(make([]byte, 1024)) // end of archive
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	_, _ = zw.Write(tarBytes.Bytes())
	_ = zw.Close()
	return out.Bytes()
}

// Zeros returns a gzipped tar of n regular members rules/z<i>.rules of
// size zero bytes each: with a large size, a gzip bomb.
func Zeros(n int, size int64) []byte {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	zeros := make([]byte, 1<<20)
	for i := range n {
		_ = tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("rules/z%d.rules", i), Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
		for left := size; left > 0; {
			k := min(left, int64(len(zeros)))
			_, _ = tw.Write(zeros[:k])
			left -= k
		}
	}
	_ = tw.Close()
	_ = zw.Close()
	return out.Bytes()
}
