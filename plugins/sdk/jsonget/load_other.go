//go:build !(amd64 || arm64)

package jsonget

import "encoding/binary"

// load64 reads s[i:i+8] as a little-endian uint64: see load.go. Elsewhere
// encoding/binary keeps it correct on big-endian hosts and on those where
// an unaligned load is slow or faults.
func load64(s []byte, i int) uint64 {
	return binary.LittleEndian.Uint64(s[i:])
}
