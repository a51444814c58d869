package sdk

import (
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Reading JSON: gjson's paths and Result type
// (https://github.com/tidwall/gjson/blob/master/SYNTAX.md), answered by the
// host's json_get where it can (see query.go), by gjson in the guest where
// it cannot, with the same results. Writing JSON: plugins/sdk/jsonw.

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

// str views b as a string without copying. (unsafe.String would check a
// length and a pointer that a slice always has right: in a Go guest each
// inlined copy of those checks is a branch and a panic call more of
// machine code, and str is inlined everywhere.)
func str(b []byte) string { return *(*string)(unsafe.Pointer(&b)) }

// Get returns the value at path in json, e.g.
// sdk.Get(e.Body(), "entry.fields.field_1").Int(). The host finds it, in
// one native pass; for several values of one document, GetMany or a Query
// find them all in that one pass.
//
// # Notes
//
// The Result points into json, with no copy: it is valid while json is,
// which for e.Body() means until the handler returns. Copy strings you keep
// (strings.Clone).
func Get(json []byte, path string) Result {
	if r, ok := get(json, path); ok {
		return r
	}
	return gjson.Get(str(json), path)
}

// GetBytes returns the raw JSON text of the value at path as a sub-slice of
// json (no copy), or nil when absent. Useful with jsonw.Writer.Raw.
func GetBytes(json []byte, path string) []byte {
	r := Get(json, path)
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

// GetMany returns the values at several paths, found in one pass by the
// host. It allocates the returned slice; GetManyInto does not.
func GetMany(json []byte, paths ...string) []Result {
	return GetManyInto(make([]Result, 0, len(paths)), json, paths...)
}

// GetManyInto is GetMany appending to dst[:0] (reuse one slice per plugin:
// no allocation once it has grown). Paths are gjson's, '#' included.
func GetManyInto(dst []Result, json []byte, paths ...string) []Result {
	dst = dst[:0]
	getList = getList[:0]
	for _, p := range paths {
		if hostable(json, p) {
			getList = appendPath(getList, p)
		}
	}
	n, ok := 0, false
	if len(getList) > 0 {
		n, ok = hostGet(json, getList, &getRecs)
	}
	k := 0
	for _, p := range paths {
		if hostable(json, p) {
			k++
			if ok && k <= n {
				if r, ok := decode(json, &getRecs[k-1]); ok {
					dst = append(dst, r)
					continue
				}
			}
		}
		dst = append(dst, gjson.Get(str(json), p))
	}
	return dst
}

// hostable reports whether json_get takes path with gjson's meaning: '#'
// is each element to json_get, a count or a computed array to gjson.
func hostable(json []byte, path string) bool {
	return len(json) > 0 && strings.IndexByte(path, '#') < 0
}

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
