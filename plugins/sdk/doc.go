// Package sdk is the Go SDK for hookgate transform plugins: WebAssembly
// modules that filter and reshape webhook events between ingest and
// delivery. It hides ABI v1 (plugins/ABI.md) behind a small API.
//
// A plugin is a main package that registers one handler:
//
//	package main
//
//	import "github.com/hookgate/hookgate/plugins/sdk"
//
//	func init() { sdk.Handle(handle) }
//
//	func handle(e *sdk.Event) error {
//		score := sdk.Get(e.Body(), "entry.fields.field_1")
//		if !score.Exists() || score.Int() > 6 {
//			return e.Drop("no low NPS score")
//		}
//		e.Emit("crm").SetHeader("X-Score", score.Raw)
//		return nil
//	}
//
//	func main() {}
//
// built with the standard toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter.wasm ./plugins/filter
//
// The SDK holds the //go:wasmexport hookgate_handle export and the
// hookgate_v1 imports; the host calls _initialize (which runs init
// functions, hence sdk.Handle in init) and then hookgate_handle per event.
//
// # Reading
//
// Event.Body reads the body once into a buffer reused across calls.
// Metadata (Method, Path, Query, Header, Route, ID, ReceivedAt, Config) is
// read on demand, never all at once. Read JSON with Get, GetMany,
// GetManyInto or a Query (gjson paths and Results, no decoding): the host
// finds the values in one native pass over the document (ABI capability
// json_get), which in a wasm guest is many times cheaper than walking the
// JSON in Go. A Query, declared once, reads many values per event with one
// host call, including one value per element of an array ("items.#.id").
// Parse, ForEach and the Scanner walk JSON in the guest. Write JSON with
// plugins/sdk/jsonw, or by hand for a fixed shape. Avoid encoding/json in a
// handler: in a wasm guest it costs about ten times as much per call.
//
// Parse the step's config once with LoadConfig (or a ConfigCache), not per
// call: the parsed value is kept by config id.
//
// # Deciding
//
// Change the event (SetBody, SetMethod, SetPath, SetHeader, SetQuery,
// Delay), drop it (Drop), create deliveries to named targets (Emit, with
// chainable setters), or answer the sender (Respond). Returning an error
// fails the call: the event is not delivered and the gateway logs the
// message with the plugin's name. An outcome call the host refuses (an
// unknown target, max_output exceeded) also fails the call, even if the
// handler returns nil.
//
// # Services
//
// Log and Logf write to the gateway log; KV is a per-plugin key-value store
// with TTLs and atomic counters; Now is the gateway's clock.
//
// # Testing
//
// Built for anything but wasip1, the imports are replaced by an in-process
// fake host: plugins/sdk/sdktest runs a handler on an Input and returns its
// Result, so plugins are tested with plain `go test`.
//
// # Notes
//
// Everything the SDK hands out (Body, Results of Get, KV.Get values,
// *Delivery) lives in buffers reused by the next call. Copy what you keep
// past the handler. One instance handles one call at a time, so a plugin
// may keep its own reused buffers (a jsonw.Writer) in package variables.
package sdk
