//go:build wasip1

// Command guest is the conformance kit's guest (package abitest): it calls
// every hookgate_v1 host function through raw //go:wasmimport declarations,
// with literal names and numbers rather than package abi's constants (and
// no SDK), so that the kit pins the ABI itself: a constant changed on both
// sides would still fail it. Build it with
// plugintest.Build(tb, abitest.GuestDir), or abitest.Guest(tb).
//
// # The mode protocol
//
// A guest in another language runs the kit by implementing this protocol;
// abitest.Run then expects exactly what this guest produces.
//
// Every step's config is {"mode":"<mode>"}; the guest reads it with
// meta_read(5) and takes the text between `"mode":"` and the next `"`. The
// kit runs route "r", whose chain may deliver to "crm" and "surveylab",
// over abitest.Event(). Where a mode "reports", it emits to "crm" and sets
// that delivery's body (handle 1) to the report, whose exact text is built
// in handle below; numbers are decimal, records of json_get as in
// records().
//
//   - echo: reads everything (body_read with a zero limit first, which must
//     return body_len and write nothing; meta_read 0..6; header_get
//     "x-seq" and "x-absent"; query_get "email" and "nope"; received_at;
//     the config_id it was called with; now must be past 1e18) and reports
//     it, one value per line.
//   - set: changes the event: body {"new":true}, method PUT, path /changed,
//     header X-Added: yes, deletes header x-seq, query email = "a b@c",
//     deletes query a, adds z=1. Reports nothing.
//   - emit2: emits to crm (body {"ticket":1}, header X-Score: 3) and to
//     surveylab (GET /api.php, empty body, query email=x@y.z and crk=abc,
//     Content-Type deleted, delay 1500 ms), sets an event-wide delay of
//     60000 ms and logs "fanned out" at level 1.
//   - delay: sets an event-wide delay of 60000 ms and emits nothing.
//   - kv: kv_incr("count", 1, no TTL), kv_get it; kv_set "k" to v1, get,
//     to v2, get; kv_delete "k", get (-1); kv_set "short" with a 1 ms TTL;
//     reports "incr=N get=N v1=v1 v2=v2 deleted=-1".
//   - short: reports "short=" and kv_get("short")'s result (-1 once expired).
//   - respond: respond(201), header X-Reply: ok and body {"accepted":true}
//     on handle -1.
//   - drop: emits to crm, then drop("score above 6").
//   - fail: fail("config: missing score"), returns 1.
//   - failquiet: returns 1 without calling fail.
//   - badresult: returns 7.
//   - errors: emits to crm, then makes the 20 calls listed in handle (bad
//     target, bad handles, bad arguments, header and path injection, then
//     two valid calls) and reports their results separated by spaces.
//   - json: json_get on its own document jsonDoc with seven paths, then
//     with an 80-byte buffer (must stay untouched), then on the body, then
//     a malformed list, invalid JSON, 65 paths and an empty list; reports
//     the results and records.
//   - jsonbad: json_get with an output buffer outside memory, which must
//     return -5; the guest then returns 0 and the host fails the call
//     (kind abi, naming json_get). Any other result: fail and return 1.
//   - log: logs "line 0", "line 1", "line 2" at levels 0, 1, 2.
//
// Any other mode calls fail("unknown mode <mode>") and returns 1.
package main

import (
	"math"
	"strconv"
	"strings"
	"unsafe"
)

//go:wasmimport hookgate_v1 body_read
func bodyRead(buf unsafe.Pointer, limit uint32) int32

//go:wasmimport hookgate_v1 meta_read
func metaRead(key int32, buf unsafe.Pointer, limit uint32) int32

//go:wasmimport hookgate_v1 header_get
func headerGet(name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, limit uint32) int32

//go:wasmimport hookgate_v1 query_get
func queryGet(name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, limit uint32) int32

//go:wasmimport hookgate_v1 received_at
func receivedAt() int64

//go:wasmimport hookgate_v1 set_body
func setBody(h int32, p unsafe.Pointer, n uint32) int32

//go:wasmimport hookgate_v1 set_method
func setMethod(h int32, p unsafe.Pointer, n uint32) int32

//go:wasmimport hookgate_v1 set_path
func setPath(h int32, p unsafe.Pointer, n uint32) int32

//go:wasmimport hookgate_v1 set_header
func setHeader(h int32, name unsafe.Pointer, nameLen uint32, val unsafe.Pointer, valLen int32) int32

//go:wasmimport hookgate_v1 set_query
func setQuery(h int32, name unsafe.Pointer, nameLen uint32, val unsafe.Pointer, valLen int32) int32

//go:wasmimport hookgate_v1 set_delay
func setDelay(h int32, millis int64) int32

//go:wasmimport hookgate_v1 emit
func emit(target unsafe.Pointer, n uint32) int32

//go:wasmimport hookgate_v1 drop
func drop(reason unsafe.Pointer, n uint32)

//go:wasmimport hookgate_v1 respond
func respond(status int32) int32

//go:wasmimport hookgate_v1 fail
func fail(msg unsafe.Pointer, n uint32)

//go:wasmimport hookgate_v1 log
func logLine(level int32, p unsafe.Pointer, n uint32)

//go:wasmimport hookgate_v1 now
func now() int64

//go:wasmimport hookgate_v1 kv_get
func kvGet(key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, limit uint32) int32

//go:wasmimport hookgate_v1 kv_set
func kvSet(key unsafe.Pointer, keyLen uint32, val unsafe.Pointer, valLen uint32, ttlMillis int64) int32

//go:wasmimport hookgate_v1 kv_incr
func kvIncr(key unsafe.Pointer, keyLen uint32, delta int64, ttlMillis int64) int64

//go:wasmimport hookgate_v1 kv_delete
func kvDelete(key unsafe.Pointer, keyLen uint32) int32

//go:wasmimport hookgate_v1 json_get
func jsonGet(json unsafe.Pointer, jsonLen uint32, paths unsafe.Pointer, pathsLen uint32, out unsafe.Pointer, outLimit uint32) int32

// jsonGetAt is json_get with raw addresses, for passing one outside memory.
//
//go:wasmimport hookgate_v1 json_get
func jsonGetAt(json unsafe.Pointer, jsonLen uint32, paths unsafe.Pointer, pathsLen uint32, out uint32, outLimit uint32) int32

// ptr returns a pointer to s's bytes (nil for ""), for passing to the host.
func ptr(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

func sz(s string) uint32 { return uint32(len(s)) }

var buf = make([]byte, 64)

// get calls a buffer-limit-and-retry function, growing buf once if needed.
// It returns the value and the raw result (negative for errors).
func get(f func(p unsafe.Pointer, limit uint32) int32) (string, int32) {
	n := f(unsafe.Pointer(&buf[0]), uint32(len(buf)))
	if n > int32(len(buf)) {
		buf = make([]byte, n)
		n = f(unsafe.Pointer(&buf[0]), uint32(len(buf)))
	}
	if n < 0 {
		return "", n
	}
	return string(buf[:n]), n
}

func meta(key int32) string {
	v, _ := get(func(p unsafe.Pointer, l uint32) int32 { return metaRead(key, p, l) })
	return v
}

func header(name string) (string, int32) {
	return get(func(p unsafe.Pointer, l uint32) int32 { return headerGet(ptr(name), sz(name), p, l) })
}

func query(name string) (string, int32) {
	return get(func(p unsafe.Pointer, l uint32) int32 { return queryGet(ptr(name), sz(name), p, l) })
}

func kv(key string) (string, int32) {
	return get(func(p unsafe.Pointer, l uint32) int32 { return kvGet(ptr(key), sz(key), p, l) })
}

func body(bodyLen int32) (string, int32) {
	// Ask with a zero limit first: the host must report the length and
	// write nothing (buffer-limit-and-retry).
	var one [1]byte
	if n := bodyRead(unsafe.Pointer(&one[0]), 0); n != bodyLen {
		return "", -100
	}
	if bodyLen == 0 {
		return "", 0
	}
	b := make([]byte, bodyLen)
	n := bodyRead(unsafe.Pointer(&b[0]), uint32(bodyLen))
	return string(b[:max(n, 0)]), n
}

func mode() string {
	cfg := meta(5)
	_, rest, ok := strings.Cut(cfg, `"mode":"`)
	if !ok {
		return ""
	}
	m, _, _ := strings.Cut(rest, `"`)
	return m
}

func emitTo(target string) int32 { return emit(ptr(target), sz(target)) }

func set(f func(h int32, p unsafe.Pointer, n uint32) int32, h int32, v string) int32 {
	return f(h, ptr(v), sz(v))
}

func setKV(f func(h int32, n unsafe.Pointer, nl uint32, v unsafe.Pointer, vl int32) int32, h int32, name, val string) int32 {
	return f(h, ptr(name), sz(name), ptr(val), int32(len(val)))
}

func delKV(f func(h int32, n unsafe.Pointer, nl uint32, v unsafe.Pointer, vl int32) int32, h int32, name string) int32 {
	return f(h, ptr(name), sz(name), nil, -1)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// pathList packs paths for json_get: a u32 little-endian length, then the
// path, for each.
func pathList(paths ...string) []byte {
	var b []byte
	for _, p := range paths {
		n := len(p)
		b = append(b, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
		b = append(b, p...)
	}
	return b
}

func le32(b []byte) int32 {
	return int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
}

// records renders json_get records as text, one line each.
func records(out []byte) string {
	var sb strings.Builder
	for i := 0; i+40 <= len(out); i += 40 {
		r := out[i:]
		bits := uint64(uint32(le32(r[8:]))) | uint64(uint32(le32(r[12:])))<<32
		sb.WriteString(itoa(int64(i/40)) + ": type=" + itoa(int64(le32(r))) + " flags=" + itoa(int64(le32(r[4:]))) +
			" num=" + strconv.FormatFloat(math.Float64frombits(bits), 'g', -1, 64) +
			" start=" + itoa(int64(le32(r[16:]))) + " len=" + itoa(int64(le32(r[20:]))) +
			" a=" + itoa(int64(le32(r[24:]))) + " b=" + itoa(int64(le32(r[28:]))) + " stride=" + itoa(int64(le32(r[32:]))) + "\n")
	}
	return sb.String()
}

// jsonDoc is what the "json" mode looks up in: any JSON in guest memory.
const jsonDoc = `{"score":3,"tags":["a","b"],"who":{"na\u006de":"A\"B"},"n":-1.5e2}`

//go:wasmexport hookgate_handle
func handle(bodyLen, configID int32) int32 {
	switch m := mode(); m {
	case "echo":
		// Report everything the guest can read as lines in the body of a
		// delivery to "crm".
		b, n := body(bodyLen)
		seq, _ := header("x-seq")
		_, absentH := header("x-absent")
		email, _ := query("email")
		_, absentQ := query("nope")
		var sb strings.Builder
		sb.WriteString("body=" + b + " n=" + itoa(int64(n)) + "\n")
		sb.WriteString("method=" + meta(0) + "\npath=" + meta(1) + "\nquery=" + meta(2) + "\n")
		sb.WriteString("route=" + meta(3) + "\nevent=" + meta(4) + "\nconfig=" + meta(5) + "\n")
		sb.WriteString("headers=" + meta(6))
		sb.WriteString("x-seq=" + seq + " absent=" + itoa(int64(absentH)) + "\n")
		sb.WriteString("email=" + email + " absent=" + itoa(int64(absentQ)) + "\n")
		sb.WriteString("received_at=" + itoa(receivedAt()) + "\n")
		sb.WriteString("config_id=" + itoa(int64(configID)) + "\n")
		if t := now(); t < 1e18 {
			sb.WriteString("now is wrong\n")
		}
		h := emitTo("crm")
		set(setBody, h, sb.String())
	case "set":
		// Change everything about the event; a later "echo" step sees it.
		set(setBody, 0, `{"new":true}`)
		set(setMethod, 0, "PUT")
		set(setPath, 0, "/changed")
		setKV(setHeader, 0, "X-Added", "yes")
		delKV(setHeader, 0, "x-seq")
		setKV(setQuery, 0, "email", "a b@c")
		delKV(setQuery, 0, "a")
		setKV(setQuery, 0, "z", "1")
	case "emit2":
		// Fan out to two targets, each with its own request.
		h1 := emitTo("crm")
		h2 := emitTo("surveylab")
		set(setBody, h1, `{"ticket":1}`)
		setKV(setHeader, h1, "X-Score", "3")
		set(setMethod, h2, "GET")
		set(setPath, h2, "/api.php")
		set(setBody, h2, "")
		setKV(setQuery, h2, "email", "x@y.z")
		setKV(setQuery, h2, "crk", "abc")
		delKV(setHeader, h2, "Content-Type")
		setDelay(h2, 1500)
		setDelay(0, 60000)
		logLine(1, ptr("fanned out"), 10)
	case "delay":
		// An event-wide delay and no emit: the default deliveries are
		// delayed, and the host makes none of them itself.
		setDelay(0, 60000)
	case "kv":
		// Count events; report store operations in one delivery.
		n := kvIncr(ptr("count"), 5, 1, 0)
		s, _ := kv("count")
		kvSet(ptr("k"), 1, ptr("v1"), 2, 0)
		v1, _ := kv("k")
		kvSet(ptr("k"), 1, ptr("v2"), 2, 0)
		v2, _ := kv("k")
		kvDelete(ptr("k"), 1)
		_, gone := kv("k")
		kvSet(ptr("short"), 5, ptr("x"), 1, 1) // 1 ms TTL
		h := emitTo("crm")
		set(setBody, h, "incr="+itoa(n)+" get="+s+" v1="+v1+" v2="+v2+" deleted="+itoa(int64(gone)))
	case "short":
		_, r := kv("short")
		h := emitTo("crm")
		set(setBody, h, "short="+itoa(int64(r)))
	case "respond":
		if r := respond(201); r != 0 {
			return 1
		}
		setKV(setHeader, -1, "X-Reply", "ok")
		set(setBody, -1, `{"accepted":true}`)
	case "drop":
		emitTo("crm") // dropped too
		drop(ptr("score above 6"), 13)
	case "fail":
		fail(ptr("config: missing score"), 21)
		return 1
	case "failquiet":
		return 1
	case "badresult":
		return 7
	case "errors":
		// Every error code, reported in the body of one delivery.
		h := emitTo("crm")
		r := []int32{
			emitTo("nope"),                // -4
			set(setBody, 9, "x"),          // -2
			set(setMethod, -1, "GET"),     // -2
			setDelay(h, -5),               // -5
			setDelay(-1, 5),               // -2
			respond(99),                   // -5
			respond(600),                  // -5
			metaRead(99, ptr("x"), 1),     // -5
			setKV(setHeader, 3, "a", "b"), // -2
			setKV(setQuery, -1, "a", "b"), // -2
			// Values that would corrupt the request: -5 each.
			setKV(setHeader, h, "X-A", "v\r\nX-Evil: 1"),
			setKV(setHeader, h, "Bad Name", "v"),
			setKV(setHeader, h, "", "v"),
			setKV(setQuery, h, "", "v"),
			set(setMethod, h, "GE T"),
			set(setPath, h, "no-slash"),
			set(setPath, h, "/a b"),
			set(setPath, h, "/a?x=1"),
			// And what is fine: 0 each.
			setKV(setHeader, h, "X-Ok", "v\tw"),
			set(setPath, h, "/a%20b"),
		}
		var sb strings.Builder
		for _, v := range r {
			sb.WriteString(itoa(int64(v)) + " ")
		}
		set(setBody, h, sb.String())
	case "json":
		// json_get on a document of the guest's own, then on the body,
		// then the buffer and error rules; all reported in one delivery.
		list := pathList("score", "tags.#", "nope", "who.name", "n", "tags.1", "a*")
		out := make([]byte, 400)
		n := jsonGet(ptr(jsonDoc), sz(jsonDoc), unsafe.Pointer(&list[0]), uint32(len(list)), unsafe.Pointer(&out[0]), uint32(len(out)))
		var sb strings.Builder
		sb.WriteString("n=" + itoa(int64(n)) + "\n")
		if n > 0 && int(n) <= len(out) {
			sb.WriteString(records(out[:n]))
		}
		// Too small: the full size comes back and nothing is written.
		small := make([]byte, 80)
		for i := range small {
			small[i] = 0xAA
		}
		r := jsonGet(ptr(jsonDoc), sz(jsonDoc), unsafe.Pointer(&list[0]), uint32(len(list)), unsafe.Pointer(&small[0]), uint32(len(small)))
		untouched := true
		for _, c := range small {
			untouched = untouched && c == 0xAA
		}
		sb.WriteString("small=" + itoa(int64(r)) + " untouched=" + strconv.FormatBool(untouched) + "\n")
		// The body, read into guest memory first.
		b, _ := body(bodyLen)
		one := pathList("score")
		r = jsonGet(ptr(b), sz(b), unsafe.Pointer(&one[0]), uint32(len(one)), unsafe.Pointer(&out[0]), uint32(len(out)))
		sb.WriteString("body=" + itoa(int64(r)) + " " + records(out[:max(r, 0)]))
		// Not answered: a malformed path list, JSON that is not valid where
		// the walk goes, too many paths.
		bad := []byte{9, 0, 0, 0, 'x'}
		invalid := `{"a":tru,"score":1}`
		many := pathList(make([]string, 65)...)
		sb.WriteString("badlist=" + itoa(int64(jsonGet(ptr(jsonDoc), sz(jsonDoc), unsafe.Pointer(&bad[0]), uint32(len(bad)), unsafe.Pointer(&out[0]), 400))) +
			" invalid=" + itoa(int64(jsonGet(ptr(invalid), sz(invalid), unsafe.Pointer(&one[0]), uint32(len(one)), unsafe.Pointer(&out[0]), 400))) +
			" many=" + itoa(int64(jsonGet(ptr(jsonDoc), sz(jsonDoc), unsafe.Pointer(&many[0]), uint32(len(many)), unsafe.Pointer(&out[0]), 400))) +
			" nopaths=" + itoa(int64(jsonGet(ptr(jsonDoc), sz(jsonDoc), nil, 0, unsafe.Pointer(&out[0]), 400))) + "\n")
		h := emitTo("crm")
		set(setBody, h, sb.String())
	case "jsonbad":
		// An output buffer outside memory: -5, and the call fails.
		one := pathList("score")
		r := jsonGetAt(ptr(jsonDoc), sz(jsonDoc), unsafe.Pointer(&one[0]), uint32(len(one)), 0xFFFFFF00, 400)
		if r != -5 {
			s := "json_get returned " + itoa(int64(r))
			fail(ptr(s), sz(s))
			return 1
		}
	case "log":
		for i := range 3 {
			s := "line " + itoa(int64(i))
			logLine(int32(i), ptr(s), sz(s))
		}
	default:
		s := "unknown mode " + m
		fail(ptr(s), sz(s))
		return 1
	}
	return 0
}

func main() {}
