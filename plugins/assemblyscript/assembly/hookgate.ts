// The hookgate_v1 host functions, declared by hand from plugins/ABI.md
// for the AssemblyScript plugins in this repository (this plugin and
// plugins/howxm-nps/assemblyscript); a plugin elsewhere copies the file.
// Pointers and lengths are offsets and byte counts in the plugin's own
// memory; results below 0 are the ABI's error codes. A module imports only
// the functions it calls, so a plugin that uses none of json_get runs on a
// host without that capability.

export const META_CONFIG: i32 = 5;
export const UNKNOWN_TARGET: i32 = -4;

// @ts-ignore: decorator
@external("hookgate_v1", "body_read")
export declare function body_read(buf: usize, limit: i32): i32;

// @ts-ignore: decorator
@external("hookgate_v1", "meta_read")
export declare function meta_read(key: i32, buf: usize, limit: i32): i32;

// json_get is a capability (ABI.md, "Capability json_get").
// @ts-ignore: decorator
@external("hookgate_v1", "json_get")
export declare function json_get(json: usize, jsonLen: i32, paths: usize, pathsLen: i32, out: usize, outLimit: i32): i32;

// @ts-ignore: decorator
@external("hookgate_v1", "emit")
export declare function emit(target: usize, len: i32): i32;

// @ts-ignore: decorator
@external("hookgate_v1", "set_body")
export declare function set_body(h: i32, ptr: usize, len: i32): i32;

// @ts-ignore: decorator
@external("hookgate_v1", "set_header")
export declare function set_header(h: i32, name: usize, nameLen: i32, val: usize, valLen: i32): i32;

// @ts-ignore: decorator
@external("hookgate_v1", "drop")
export declare function drop(reason: usize, len: i32): void;

// @ts-ignore: decorator
@external("hookgate_v1", "fail")
export declare function fail(msg: usize, len: i32): void;

// @ts-ignore: decorator
@external("hookgate_v1", "kv_incr")
export declare function kv_incr(key: usize, keyLen: i32, delta: i64, ttlMillis: i64): i64;
