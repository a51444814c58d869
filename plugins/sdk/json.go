package sdk

import (
	"unsafe"

	"github.com/tidwall/gjson"
)

// Reading JSON: the SDK wraps github.com/tidwall/gjson, which finds a value
// by path in one scan without decoding the document. It is many times
// faster than encoding/json in a wasm guest (about 9 µs instead of 80 µs
// per call on the Howxm payload). Path syntax:
// https://github.com/tidwall/gjson/blob/master/SYNTAX.md
//
// Writing JSON: plugins/sdk/jsonw.

// Result is a JSON value found by Get: .Exists(), .String(), .Int(),
// .Float(), .Bool(), .Raw (the JSON text), .Type, .Get(path), .ForEach.
type Result = gjson.Result

// JSON types of a Result.
const (
	Null   = gjson.Null
	False  = gjson.False
	Number = gjson.Number
	String = gjson.String
	True   = gjson.True
	JSON   = gjson.JSON // an object or an array
)

// str views b as a string without copying.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Get returns the value at path in json, e.g.
// sdk.Get(e.Body(), "entry.fields.field_1").Int().
//
// # Notes
//
// The Result points into json, with no copy: it is valid while json is,
// which for e.Body() means until the handler returns. Copy strings you keep
// (strings.Clone).
func Get(json []byte, path string) Result { return gjson.Get(str(json), path) }

// GetBytes returns the raw JSON text of the value at path as a sub-slice of
// json (no copy), or nil when absent. Useful with jsonw.Writer.Raw.
func GetBytes(json []byte, path string) []byte {
	r := gjson.Get(str(json), path)
	switch {
	case r.Raw == "":
		return nil
	case r.Index > 0 && r.Index+len(r.Raw) <= len(json):
		return json[r.Index : r.Index+len(r.Raw)]
	case unsafe.StringData(r.Raw) == unsafe.SliceData(json):
		return json[:len(r.Raw)]
	}
	return []byte(r.Raw) // a computed value (modifiers, #): not inside json
}

// GetMany returns the values at several paths in one call.
func GetMany(json []byte, paths ...string) []Result { return gjson.GetMany(str(json), paths...) }

// Parse returns json as a Result, to walk with .Get and .ForEach. Same
// lifetime rule as Get.
func Parse(json []byte) Result { return gjson.Parse(str(json)) }

// ForEach calls fn for each member of the object, or each element of the
// array, at path in json, until fn returns false. For arrays key is empty.
func ForEach(json []byte, path string, fn func(key, value Result) bool) {
	gjson.Get(str(json), path).ForEach(fn)
}

// Valid reports whether json is valid JSON.
func Valid(json []byte) bool { return gjson.Valid(str(json)) }
