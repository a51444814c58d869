//go:build !wasm

package jsonw

// load64 reads s[i:i+8] as a little-endian uint64 (one load on amd64 and
// arm64, where the compiler fuses the byte loads).
func load64(s string, i int) uint64 {
	b := s[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}
