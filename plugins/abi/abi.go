package abi

// One constant per function, with its parameters, results, packing, errors
// and a worked example. Every function below follows these conventions:
//   - Pointers and lengths are i32 offsets into the guest's exported memory.
//   - Functions returning variable-length data follow buffer-limit-and-retry:
//     they return the full length n; the value is written at buf_ptr only
//     when n <= buf_limit; -1 (ErrnoAbsent) means there is no value.
//   - A pointer or length outside memory returns ErrnoBadArgument (or does
//     nothing, for functions without a result), and the call then fails with
//     KindABI naming the function. The host never panics on guest input.
//   - Everything read from guest memory is copied before the function
//     returns, so a later memory.grow cannot change what the host keeps.

// Module names.
const (
	// HostModule is the import module of every host function. Incompatible
	// changes get a new name (hookgate_v2); v1 only ever gains functions.
	HostModule = "hookgate_v1"
	// WASIModule is the only other import module a guest may use.
	WASIModule = "wasi_snapshot_preview1"
)

// Guest exports.
const (
	// ExportMemory is the guest's linear memory. Required.
	ExportMemory = "memory"

	// ExportHandle is hookgate_handle(body_len: i32, config_id: i32) -> i32.
	// Required.
	//
	// Called once per event. body_len is the length of the current body (so
	// the guest sizes its buffer before body_read); config_id identifies the
	// step's configuration, is stable while the configuration is loaded and
	// never reused for another one, so a guest may cache its parsed config
	// by id. The guest returns 0 when done, 1 when failed (after FuncFail).
	// Any other value fails the call with KindABI.
	//
	// Example: a body of 17 bytes in the step with config id 3 is the call
	// hookgate_handle(17, 3).
	ExportHandle = "hookgate_handle"

	// ExportInitialize is _initialize() -> (). Optional. Called once per
	// instance when it is created (Go -buildmode=c-shared reactors need it to
	// start their runtime). A trap here fails Load.
	ExportInitialize = "_initialize"
)

// Errno values: negative i32 results of host functions.
const (
	ErrnoAbsent        = -1 // no such value (header, query parameter, key)
	ErrnoBadHandle     = -2 // the handle does not name the event, the response or an emitted delivery
	ErrnoOutputLimit   = -3 // max_output would be exceeded; the call fails with KindOutput
	ErrnoUnknownTarget = -4 // emit named a target this chain cannot deliver to
	ErrnoBadArgument   = -5 // pointer/length outside memory, status out of range, negative delay, ...
)

// Handles: the first parameter of outcome functions.
const (
	HandleEvent    = 0  // the current event, as later plugins and the default deliveries see it
	HandleResponse = -1 // the answer to the sender (FuncRespond)
	// 1..n: deliveries created by FuncEmit, numbered in order within one call.
)

// Keys of FuncMetaRead.
const (
	MetaMethod  = 0 // request method, "POST"
	MetaPath    = 1 // request path, "/hooks/howxm"
	MetaQuery   = 2 // raw query string without '?'
	MetaRoute   = 3 // route name
	MetaEventID = 4 // event id, "evt_01JD..."
	MetaConfig  = 5 // this step's config as JSON, "{}" when none
	MetaHeaders = 6 // all request headers as "name: value\n" lines
)

// Reading the event.
const (
	// FuncBodyRead is body_read(buf_ptr: i32, buf_limit: i32) -> i32.
	//
	// Writes the current body (after earlier plugins' set_body on handle 0)
	// at buf_ptr and returns its length, or returns the length without
	// writing when it exceeds buf_limit. This is the one place the body
	// crosses into the guest.
	//
	// Example: with a 17-byte body, body_read(1024, 4096) writes 17 bytes at
	// 1024 and returns 17; body_read(1024, 8) writes nothing and returns 17.
	FuncBodyRead = "body_read"

	// FuncMetaRead is meta_read(key: i32, buf_ptr: i32, buf_limit: i32) -> i32.
	//
	// Reads one metadata value (Meta* keys) with buffer-limit-and-retry. An
	// unknown key returns ErrnoBadArgument.
	//
	// Example: meta_read(MetaMethod, 1024, 16) writes "POST" and returns 4.
	FuncMetaRead = "meta_read"

	// FuncHeaderGet is header_get(name_ptr, name_len, buf_ptr, buf_limit: i32) -> i32.
	//
	// The first request header with that name, ASCII case-insensitive, with
	// buffer-limit-and-retry; ErrnoAbsent when there is none.
	//
	// Example: header_get("content-type", 12, 1024, 64) writes
	// "application/json" and returns 16.
	FuncHeaderGet = "header_get"

	// FuncQueryGet is query_get(name_ptr, name_len, buf_ptr, buf_limit: i32) -> i32.
	//
	// The first query parameter with that name (compared after
	// URL-decoding), URL-decoded, with buffer-limit-and-retry; ErrnoAbsent
	// when there is none.
	//
	// Example: with query "a=1&email=x%40y.z", query_get("email", 5, 1024, 64)
	// writes "x@y.z" and returns 5.
	FuncQueryGet = "query_get"

	// FuncReceivedAt is received_at() -> i64: when the event arrived, unix
	// nanoseconds.
	FuncReceivedAt = "received_at"
)

// Changing the outcome. All return 0 or a negative Errno.
const (
	// FuncSetBody is set_body(h, ptr, len: i32) -> i32: replace the body of
	// h. Counts len bytes against max_output.
	//
	// Example: set_body(1, 2048, 30) makes the first emitted delivery's body
	// the 30 bytes at 2048.
	FuncSetBody = "set_body"

	// FuncSetMethod is set_method(h, ptr, len: i32) -> i32: the method of h
	// (the event or a delivery; ErrnoBadHandle for the response). A method
	// that is not an HTTP token returns ErrnoBadArgument.
	//
	// Example: set_method(1, "GET", 3) sends delivery 1 as a GET.
	FuncSetMethod = "set_method"

	// FuncSetPath is set_path(h, ptr, len: i32) -> i32: the path of h,
	// replacing the path of the target's URL (ErrnoBadHandle for the
	// response). A path not starting with '/', or holding a space, a control
	// character, '?' or '#', returns ErrnoBadArgument (the query is set with
	// set_query).
	//
	// Example: set_path(1, "/api.php", 8).
	FuncSetPath = "set_path"

	// FuncSetHeader is set_header(h, name_ptr, name_len, val_ptr, val_len: i32) -> i32.
	//
	// Sets header name on h, replacing every header of that name (ASCII
	// case-insensitive); val_len == -1 deletes it. Works on the event, a
	// delivery and the response. A name that is not an HTTP token, or a
	// value holding CR, LF or NUL, returns ErrnoBadArgument: values often
	// come from the payload, and must not inject headers.
	//
	// Example: set_header(1, "X-Score", 7, "3", 1); set_header(0, "Cookie", 6, 0, -1).
	FuncSetHeader = "set_header"

	// FuncSetQuery is set_query(h, name_ptr, name_len, val_ptr, val_len: i32) -> i32.
	//
	// Sets query parameter name on h to the raw (unencoded) value; the host
	// encodes it. An empty name returns ErrnoBadArgument. val_len == -1 deletes it. On the event it rewrites the raw
	// query string; on a delivery it is applied over the target's static
	// query. ErrnoBadHandle for the response.
	//
	// Example: set_query(1, "email", 5, "x@y.z", 5) sends ?email=x%40y.z.
	FuncSetQuery = "set_query"

	// FuncSetDelay is set_delay(h: i32, millis: i64) -> i32.
	//
	// Not-before delay, counted from received_at, for delivery h, or for
	// every delivery of the event when h == 0 (a delivery's own delay wins):
	// the emitted ones, or when nobody emits the default deliveries, which
	// keep the forwarded headers.
	// A negative delay returns ErrnoBadArgument; ErrnoBadHandle for the
	// response.
	//
	// Example: set_delay(1, 3600000) sends delivery 1 an hour after the event
	// arrived.
	FuncSetDelay = "set_delay"

	// FuncEmit is emit(target_ptr, target_len: i32) -> i32.
	//
	// Creates a delivery to the named target and returns its handle (1 for
	// the first emit of this call, 2 for the next, ...); ErrnoUnknownTarget
	// if the chain cannot deliver there. The delivery starts with the current
	// event's body and Content-Type header and the target's method and path.
	// Counts 64 + len(body) bytes against max_output.
	//
	// Example: emit("crm", 3) returns 1; emit("surveylab", 9) returns 2.
	FuncEmit = "emit"

	// FuncDrop is drop(reason_ptr, reason_len: i32) -> ().
	//
	// Drops the event: nothing is delivered (emitted deliveries included) and
	// the chain stops after this plugin. The reason is logged and, on sync
	// routes, returned to the sender.
	//
	// Example: drop("score above 6", 13).
	FuncDrop = "drop"

	// FuncRespond is respond(status: i32) -> i32: answer the sender with
	// status (100..599, else ErrnoBadArgument); headers and body through
	// handle -1. Deliveries still happen.
	//
	// Example: respond(200); set_body(-1, `{"ok":true}`, 11).
	FuncRespond = "respond"

	// FuncFail is fail(msg_ptr, msg_len: i32) -> (): records why this call
	// failed; the guest then returns 1 from hookgate_handle and the call
	// fails with KindFailed and this message.
	//
	// Example: fail("config: missing score", 21); return 1.
	FuncFail = "fail"
)

// Services.
const (
	// FuncLog is log(level, ptr, len: i32) -> (): one line to the gateway's
	// log with the plugin, route and event id; level 0 debug, 1 info, 2 warn,
	// 3 error (others are info). Rate-limited per plugin (10 lines/s, bursts
	// of 50); dropped lines are counted in the next line that gets through.
	//
	// Example: log(LogInfo, "kept score 3", 12).
	FuncLog = "log"

	// FuncNow is now() -> i64: wall clock, unix nanoseconds.
	FuncNow = "now"

	// FuncKVGet is kv_get(key_ptr, key_len, buf_ptr, buf_limit: i32) -> i32.
	//
	// The value of key in the plugin's store, with buffer-limit-and-retry;
	// ErrnoAbsent when absent or expired. A counter (kv_incr) reads as
	// decimal text.
	//
	// Example: after kv_incr("u:42", 4, 1, 0) twice, kv_get("u:42", 4, buf, 8)
	// writes "2" and returns 1.
	FuncKVGet = "kv_get"

	// FuncKVSet is kv_set(key_ptr, key_len, val_ptr, val_len: i32, ttl_millis: i64) -> i32.
	//
	// Sets key to value; ttl_millis <= 0 means no expiry. Keys are at most
	// MaxKVKey bytes and values at most MaxKVValue bytes (else
	// ErrnoBadArgument).
	//
	// Example: kv_set("seen:abc", 8, "1", 1, 86400000) remembers for a day.
	FuncKVSet = "kv_set"

	// FuncKVIncr is kv_incr(key_ptr, key_len: i32, delta: i64, ttl_millis: i64) -> i64.
	//
	// Atomically adds delta to the counter at key and returns the new value.
	// An absent, expired or non-numeric key counts as 0; the TTL is set only
	// when the key is created. A bad pointer returns 0 and fails the call.
	//
	// Example: kv_incr("u:42", 4, 1, 0) returns 1, then 2, then 3.
	FuncKVIncr = "kv_incr"

	// FuncKVDelete is kv_delete(key_ptr, key_len: i32) -> i32: deletes key;
	// 0 whether or not it existed.
	FuncKVDelete = "kv_delete"
)

// Levels of FuncLog: the first parameter. Any other value logs at LogInfo.
const (
	LogDebug = 0
	LogInfo  = 1
	LogWarn  = 2
	LogError = 3
)

// Capability "json_get": JSON lookups answered by the host. A v1 addition:
// a guest importing it needs a host that has it, and an older host refuses
// such a guest at Load, naming the import ("imports
// "hookgate_v1.json_get", which hookgate does not provide"); there is no
// run-time probe, since a wasm import must resolve for the module to load.
// The evaluator is plugins/sdk/jsonget, shared with the SDK's fake host.
const (
	// FuncJSONGet is json_get(json_ptr, json_len, paths_ptr, paths_len, out_ptr, out_limit: i32) -> i32.
	//
	// Looks up several JSON paths in the document at json_ptr (any JSON in
	// guest memory: the body after body_read, the config, a KV value) in
	// one native pass, and writes one record per path, then the element
	// records of '#' paths, at out_ptr. Returns the records' total size in
	// bytes, with buffer-limit-and-retry: written only when it is at most
	// out_limit (a smaller out_limit leaves the buffer untouched; grow it
	// to the result and call again). Returns ErrnoBadArgument, writing
	// nothing, when the host does not answer: the path list is malformed or
	// over the limits (jsonget.Max*: 64 paths, 16 KiB of list, 256
	// components, 65536 records), or the document is not valid JSON where
	// the walk went, nests deeper than 512 there, or is not an object or
	// array at the top. The guest then answers with its own parser: the
	// results would be the same (that is the contract), only slower. A
	// pointer or length outside memory is ErrnoBadArgument and fails the
	// call with KindABI, as everywhere.
	//
	// Paths (paths_ptr, paths_len): a sequence of entries, each a u32
	// little-endian length and that many bytes of path. A path is a gjson
	// path (github.com/tidwall/gjson SYNTAX.md) of object keys and array
	// indexes separated by '.', '\' escaping the next byte; its value is
	// gjson.Get's (the first match in document order, backtracking over
	// duplicate keys). Extension: a component that is exactly '#' (one per
	// path) stands for each element of an array, or each member of an
	// object, and "P.#.Q" gives, for each element E of P, the value of Q
	// in E (E itself for "P.#"). A path using any other gjson syntax ('*',
	// '?', '|', '@', '!', '[', ']', '{', '}', '#' inside a component, an
	// empty component, a numeric component with a leading zero or an
	// escape) gets a record of type -2, "not answered", and the guest
	// answers that one path itself. A list in which one '#' container lies
	// inside another's elements (e.g. "a.#.b" with "a.0.c.#") is not
	// answered at all.
	//
	// Records: 40 bytes each, little-endian, in path order:
	//
	//	0  i32 type   -2 not answered, -1 absent, 0 null, 1 false, 2 number,
	//	              3 string, 4 true, 5 object or array (gjson's Type)
	//	4  i32 flags  1: a string value holds '\' escapes (unescape it);
	//	              2: an element's key holds escapes
	//	8  f64 num    a number's value (strconv.ParseFloat of its text)
	//	16 i32 start  the value's JSON text is json[start : start+len]
	//	20 i32 len    (a string's text includes its quotes)
	//	24 i32 a      '#' path: index of its first element record;
	//	              element record: offset of its key in json (inside
	//	              the quotes), -1 for an array element
	//	28 i32 b      '#' path: number of elements; element record: key
	//	              length, -1 for an array element
	//	32 i32 stride '#' path: records from one element's to the next's
	//	36 i32 0      reserved
	//
	// A '#' path's own record describes the array or object it goes
	// through (type -1 with no elements when there is none; a scalar there
	// has no elements). Element j of '#' path p is record a_p + j*stride_p
	// (paths sharing a '#' share its element blocks, stride records each);
	// a value absent in one element is a type -1 record that still carries
	// the element's key.
	//
	// Example: document `{"score":3,"tags":["a","b"]}` (28 bytes) at 1024,
	// paths "score", "tags.#", "name" packed as
	// "\x05\0\0\0score\x06\0\0\0tags.#\x04\0\0\0name" (27 bytes) at 2048:
	// json_get(1024, 28, 2048, 27, 4096, 400) writes 5 records at 4096 and
	// returns 200:
	//
	//	0: type 2, num 3, start 9, len 1           score = 3
	//	1: type 5, start 18, len 9, a 3, b 2, stride 1   tags.# goes through ["a","b"], 2 elements
	//	2: type -1                                  name is absent
	//	3: type 3, start 19, len 3, a -1, b -1      element 0: "a"
	//	4: type 3, start 23, len 3, a -1, b -1      element 1: "b"
	//
	// With out_limit 100 it writes nothing and returns 200.
	FuncJSONGet = "json_get"
)

// Limits of the key-value store.
const (
	MaxKVKey     = 1 << 10  // bytes per key
	MaxKVValue   = 64 << 10 // bytes per value
	KVMaxEntries = 100_000  // entries per plugin; least recently used go first
)
