//go:build wasm

package jsonw

import "unsafe"

// load64 reads s[i:i+8] as a little-endian uint64 in one i64.load (wasm
// is little-endian and allows unaligned loads); the caller checks bounds.
func load64(s string, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.StringData(s)), i))
}
