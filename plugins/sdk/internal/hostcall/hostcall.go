// Package hostcall is the SDK's thin layer over the hookgate_v1 host
// functions (see plugins/ABI.md; the constants are package abi's). Every
// function takes Go slices and strings and does the pointer/length
// packing, so the rest of the SDK reads like Go.
//
// Built for wasip1 the functions call the real imports; built for anything
// else they call an in-process fake host (fake.go) that follows the same
// rules, which is what lets plugin code run under plain `go test` through
// plugins/sdk/sdktest.
package hostcall

// Record is one record of json_get's answer (ABI.md, "json_get"): the
// same 40 bytes, little-endian, as the host writes them, so a guest reads
// the answer in place. jsonget.Record* name the offsets.
type Record struct {
	Type     int32 // jsonget.Type*
	Flags    int32 // jsonget.Flag*
	Num      float64
	Start    int32 // the value's JSON text: json[Start : Start+Len]
	Len      int32
	KeyStart int32 // element: its key's offset (-1 in an array); '#' path: its first element record
	KeyLen   int32 // element: its key's length (-1 in an array); '#' path: its element count
	Stride   int32 // '#' path: records from one element's record to the next's
	_        int32
}
