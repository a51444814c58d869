// Package abi holds the constants of hookgate's plugin ABI v1: the contract
// between the host (transforms) and a transform plugin, a WebAssembly module
// that imports the host functions of HostModule and exports ExportHandle.
// Host and guests share these constants (the Go SDK imports them too), so
// the package imports nothing: a host in another runtime, or a guest
// toolchain, can depend on it without pulling in wazero or the gateway.
//
// The constants name what crosses the boundary: the import and export
// names, one Func* constant per host function (parameters, results,
// packing, what a too-small buffer does, a worked example), the Errno*
// results, the Handle*, Meta* and Log* values passed in, the limits of the
// key-value store, and the Kind* of a failed call as the host reports it.
//
// # Versioning
//
// v1 only gains functions and capabilities (such as FuncJSONGet); what it
// has keeps its name, signature and meaning. Anything incompatible gets a
// new import module, hookgate_v2, beside this one.
//
// # Notes
//
// plugins/ABI.md says the same for plugin authors, with the shape of a call
// and the limits. Package abitest is the conformance kit: a table of what a
// guest must observe through each function, which any host (or, through its
// guest protocol, any guest toolchain) runs against itself.
package abi
