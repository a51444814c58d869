//go:build wasip1

package hostcall

import "unsafe"

// The imports take explicit (pointer, length) pairs rather than Go strings so
// that a length of -1 (delete, in set_header/set_query) can be passed.

//go:wasmimport hookgate_v1 body_read
func bodyRead(buf unsafe.Pointer, limit int32) int32

//go:wasmimport hookgate_v1 meta_read
func metaRead(key int32, buf unsafe.Pointer, limit int32) int32

//go:wasmimport hookgate_v1 header_get
func headerGet(name unsafe.Pointer, nameLen int32, buf unsafe.Pointer, limit int32) int32

//go:wasmimport hookgate_v1 query_get
func queryGet(name unsafe.Pointer, nameLen int32, buf unsafe.Pointer, limit int32) int32

//go:wasmimport hookgate_v1 received_at
func receivedAt() int64

//go:wasmimport hookgate_v1 set_body
func setBody(h int32, p unsafe.Pointer, n int32) int32

//go:wasmimport hookgate_v1 set_method
func setMethod(h int32, p unsafe.Pointer, n int32) int32

//go:wasmimport hookgate_v1 set_path
func setPath(h int32, p unsafe.Pointer, n int32) int32

//go:wasmimport hookgate_v1 set_header
func setHeader(h int32, name unsafe.Pointer, nameLen int32, val unsafe.Pointer, valLen int32) int32

//go:wasmimport hookgate_v1 set_query
func setQuery(h int32, name unsafe.Pointer, nameLen int32, val unsafe.Pointer, valLen int32) int32

//go:wasmimport hookgate_v1 set_delay
func setDelay(h int32, millis int64) int32

//go:wasmimport hookgate_v1 emit
func emit(target unsafe.Pointer, n int32) int32

//go:wasmimport hookgate_v1 drop
func drop(reason unsafe.Pointer, n int32)

//go:wasmimport hookgate_v1 respond
func respond(status int32) int32

//go:wasmimport hookgate_v1 fail
func fail(msg unsafe.Pointer, n int32)

//go:wasmimport hookgate_v1 log
func log(level int32, p unsafe.Pointer, n int32)

//go:wasmimport hookgate_v1 now
func now() int64

//go:wasmimport hookgate_v1 kv_get
func kvGet(key unsafe.Pointer, keyLen int32, buf unsafe.Pointer, limit int32) int32

//go:wasmimport hookgate_v1 kv_set
func kvSet(key unsafe.Pointer, keyLen int32, val unsafe.Pointer, valLen int32, ttlMillis int64) int32

//go:wasmimport hookgate_v1 kv_incr
func kvIncr(key unsafe.Pointer, keyLen int32, delta int64, ttlMillis int64) int64

//go:wasmimport hookgate_v1 kv_delete
func kvDelete(key unsafe.Pointer, keyLen int32) int32

func bp(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }
func sp(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

func BodyRead(buf []byte) int32            { return bodyRead(bp(buf), int32(len(buf))) }
func MetaRead(key int32, buf []byte) int32 { return metaRead(key, bp(buf), int32(len(buf))) }
func ReceivedAt() int64                    { return receivedAt() }
func SetBody(h int32, b []byte) int32      { return setBody(h, bp(b), int32(len(b))) }
func SetMethod(h int32, s string) int32    { return setMethod(h, sp(s), int32(len(s))) }
func SetPath(h int32, s string) int32      { return setPath(h, sp(s), int32(len(s))) }
func SetDelay(h int32, millis int64) int32 { return setDelay(h, millis) }
func Emit(target string) int32             { return emit(sp(target), int32(len(target))) }
func Drop(reason string)                   { drop(sp(reason), int32(len(reason))) }
func Respond(status int32) int32           { return respond(status) }
func Fail(msg string)                      { fail(sp(msg), int32(len(msg))) }
func Log(level int32, msg string)          { log(level, sp(msg), int32(len(msg))) }
func Now() int64                           { return now() }
func KVDelete(key string) int32            { return kvDelete(sp(key), int32(len(key))) }
func KVIncr(key string, delta, ttl int64) int64 {
	return kvIncr(sp(key), int32(len(key)), delta, ttl)
}

func HeaderGet(name string, buf []byte) int32 {
	return headerGet(sp(name), int32(len(name)), bp(buf), int32(len(buf)))
}

func QueryGet(name string, buf []byte) int32 {
	return queryGet(sp(name), int32(len(name)), bp(buf), int32(len(buf)))
}

func SetHeader(h int32, name, val string) int32 {
	return setHeader(h, sp(name), int32(len(name)), sp(val), int32(len(val)))
}

func DelHeader(h int32, name string) int32 {
	return setHeader(h, sp(name), int32(len(name)), nil, -1)
}

func SetQuery(h int32, name, val string) int32 {
	return setQuery(h, sp(name), int32(len(name)), sp(val), int32(len(val)))
}

func DelQuery(h int32, name string) int32 {
	return setQuery(h, sp(name), int32(len(name)), nil, -1)
}

func KVGet(key string, buf []byte) int32 {
	return kvGet(sp(key), int32(len(key)), bp(buf), int32(len(buf)))
}

func KVSet(key string, val []byte, ttlMillis int64) int32 {
	return kvSet(sp(key), int32(len(key)), bp(val), int32(len(val)), ttlMillis)
}

//go:wasmimport hookgate_v1 json_get
func jsonGet(json unsafe.Pointer, jsonLen int32, paths unsafe.Pointer, pathsLen int32, out unsafe.Pointer, outLimit int32) int32

// JSONGet asks the host to look up the path list paths in json, writing the
// records to out; it returns their size in bytes (see ABI.md, json_get).
// The records are read in place: wasm is little-endian and Record has the
// ABI's layout.
func JSONGet(json, paths []byte, out []Record) int32 {
	return jsonGet(bp(json), int32(len(json)), bp(paths), int32(len(paths)),
		unsafe.Pointer(unsafe.SliceData(out)), int32(len(out)*int(unsafe.Sizeof(Record{}))))
}
