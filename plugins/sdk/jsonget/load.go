//go:build amd64 || arm64

package jsonget

import "unsafe"

// load64 reads s[i:i+8] as a little-endian uint64; i+8 <= len(s) is the
// caller's to check. The scans call it in their innermost loops: on amd64
// and arm64 (little-endian, with unaligned loads as cheap as aligned ones)
// it is one load, where encoding/binary adds bounds checks that cost the
// walk about a tenth more instructions (measured on the Howxm payload).
func load64(s []byte, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s)), i))
}
