// Package abi is the SDK's thin layer over the hookgate_v1 host functions
// (see plugins/ABI.md). Every function takes Go slices and strings and does
// the pointer/length packing, so the rest of the SDK reads like Go.
//
// Built for wasip1 the functions call the real imports; built for anything
// else they call an in-process fake host (fake.go) that follows the same
// rules, which is what lets plugin code run under plain `go test` through
// plugins/sdk/sdktest.
package abi

// Result codes of host functions returning i32 (ABI.md, "Errors").
const (
	Absent        = -1
	BadHandle     = -2
	OutputLimit   = -3
	UnknownTarget = -4
	BadArgument   = -5
)

// Handles saying what an outcome function changes.
const (
	HandleEvent    int32 = 0
	HandleResponse int32 = -1
)

// meta_read keys.
const (
	MetaMethod  int32 = 0
	MetaPath    int32 = 1
	MetaQuery   int32 = 2
	MetaRoute   int32 = 3
	MetaEventID int32 = 4
	MetaConfig  int32 = 5
	MetaHeaders int32 = 6
)

// Log levels.
const (
	LevelDebug int32 = 0
	LevelInfo  int32 = 1
	LevelWarn  int32 = 2
	LevelError int32 = 3
)

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
