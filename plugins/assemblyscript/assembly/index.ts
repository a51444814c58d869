// A hookgate plugin in AssemblyScript, written against ABI v1
// (plugins/ABI.md) with no SDK: it keeps an event whose body contains a
// configured string, marks it with a header, and drops every other event.
//
// Config (the route's transform step):
//
//   { "contains": "entry_submitted",   required: the string to look for
//     "header":   "X-Matched",         optional, default "X-Matched"
//     "value":    "yes" }              optional, default "true"
//
// A kept event also gets X-Match-Count: how many events this plugin has
// kept for that string (a counter in the key-value store, shared by every
// instance and every route using the plugin).
//
// Memory: the stub runtime never frees, so nothing is allocated per event.
// The body, the config and the strings built for the host live in buffers
// that are allocated once and grown only when something larger arrives.

import {
  body_read, meta_read, set_header, drop, fail, kv_incr, META_CONFIG,
} from "./hookgate";
import { Buffer } from "./buffer";

// abort is AssemblyScript's handler for failed assertions and bounds
// checks (asconfig.json points the compiler at it instead of an env.abort
// import, which hookgate does not provide): the call fails, saying so.
function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const msg = "assemblyscript: abort";
  const b = String.UTF8.encode(msg);
  fail(changetype<usize>(b), b.byteLength);
  unreachable();
}

// Top-level state, initialised by the module's start function.
const body = new Buffer(4096);
const config = new Buffer(256);
const scratch = new Buffer(256);
const counterKey = new Buffer(64);

// The parsed config, cached by config id: the ABI promises an id is never
// reused for another config. The strings point into `config`.
let configID: i32 = 0;
let needle: usize = 0;
let needleLen: i32 = 0;
let headerName: usize = 0;
let headerNameLen: i32 = 0;
let headerValue: usize = 0;
let headerValueLen: i32 = 0;

const defaultHeader = String.UTF8.encode("X-Matched");
const defaultValue = String.UTF8.encode("true");
const countHeader = String.UTF8.encode("X-Match-Count");

export function hookgate_handle(bodyLen: i32, configId: i32): i32 {
  if (configId != configID) {
    const err = loadConfig();
    if (err != null) {
      scratch.reset();
      scratch.ascii("assemblyscript: config: ");
      scratch.ascii(err);
      fail(scratch.ptr, scratch.len);
      return 1;
    }
    configID = configId;
  }

  body.reserve(bodyLen);
  body.len = readInto(body, (p: usize, limit: i32): i32 => body_read(p, limit));

  if (!contains(body.ptr, body.len, needle, needleLen)) {
    scratch.reset();
    scratch.ascii("assemblyscript: no \"");
    scratch.bytes(needle, needleLen);
    scratch.ascii("\" in the body");
    drop(scratch.ptr, scratch.len);
    return 0;
  }

  if (set_header(0, headerName, headerNameLen, headerValue, headerValueLen) != 0) {
    return failWith("set_header refused the configured header");
  }
  counterKey.reset();
  counterKey.ascii("matches:");
  counterKey.bytes(needle, needleLen);
  const n = kv_incr(counterKey.ptr, counterKey.len, 1, 0);
  scratch.reset();
  scratch.decimal(n);
  if (set_header(0, changetype<usize>(countHeader), countHeader.byteLength, scratch.ptr, scratch.len) != 0) {
    return failWith("set_header refused X-Match-Count");
  }
  return 0;
}

function failWith(msg: string): i32 {
  scratch.reset();
  scratch.ascii("assemblyscript: ");
  scratch.ascii(msg);
  fail(scratch.ptr, scratch.len);
  return 1;
}

// readInto calls a buffer-limit-and-retry host function with b's buffer,
// growing it once when the value is larger, and returns the value's length
// (-1 when absent).
function readInto(b: Buffer, f: (p: usize, limit: i32) => i32): i32 {
  let n = f(b.ptr, b.cap);
  if (n > b.cap) {
    b.reserve(n);
    n = f(b.ptr, b.cap);
  }
  return n;
}

// loadConfig reads this step's config JSON and finds the three strings in
// it; it returns what is wrong, or null.
function loadConfig(): string | null {
  const n = readInto(config, (p: usize, limit: i32): i32 => meta_read(META_CONFIG, p, limit));
  if (n < 0) return "cannot read the config";
  config.len = n;
  needle = 0;
  needleLen = jsonString(config.ptr, n, "contains");
  if (needleLen == -2) return "\"contains\" must be a string without escapes";
  if (needleLen < 0) return "\"contains\" is required";
  needle = found;
  headerNameLen = jsonString(config.ptr, n, "header");
  if (headerNameLen == -2) return "\"header\" must be a string without escapes";
  if (headerNameLen < 0) {
    headerName = changetype<usize>(defaultHeader);
    headerNameLen = defaultHeader.byteLength;
  } else {
    headerName = found;
  }
  headerValueLen = jsonString(config.ptr, n, "value");
  if (headerValueLen == -2) return "\"value\" must be a string without escapes";
  if (headerValueLen < 0) {
    headerValue = changetype<usize>(defaultValue);
    headerValueLen = defaultValue.byteLength;
  } else {
    headerValue = found;
  }
  return null;
}

// found is where the last successful jsonString found its value.
let found: usize = 0;

// jsonString finds the top-level key `"key"` in the JSON object at p and
// returns the length of its string value (setting found to its start), -1
// when the key is absent, or -2 when the value is not a plain string. It
// is enough for a flat config object of strings: escapes are refused, not
// decoded.
function jsonString(p: usize, n: i32, key: string): i32 {
  scratch.reset();
  scratch.byte(0x22);
  scratch.ascii(key);
  scratch.byte(0x22);
  let depth = 0;
  let i = 0;
  while (i < n) {
    const c = load<u8>(p + <usize>i);
    if (c == 0x7b || c == 0x5b) { depth++; i++; continue; } // { [
    if (c == 0x7d || c == 0x5d) { depth--; i++; continue; } // } ]
    if (c != 0x22) { i++; continue; }
    // A string starts at i: a key when depth is 1 and a ':' follows.
    const end = stringEnd(p, n, i);
    if (end < 0) return -2;
    let j = skipSpace(p, n, end + 1);
    const isKey = depth == 1 && j < n && load<u8>(p + <usize>j) == 0x3a;
    if (isKey && end + 1 - i == scratch.len && memory.compare(p + <usize>i, scratch.ptr, <usize>scratch.len) == 0) {
      j = skipSpace(p, n, j + 1);
      if (j >= n || load<u8>(p + <usize>j) != 0x22) return -2;
      const vend = stringEnd(p, n, j);
      if (vend < 0) return -2;
      for (let k = j + 1; k < vend; k++) {
        if (load<u8>(p + <usize>k) == 0x5c) return -2; // backslash
      }
      found = p + <usize>(j + 1);
      return vend - j - 1;
    }
    i = end + 1;
  }
  return -1;
}

// stringEnd returns the index of the quote closing the string opened at i.
function stringEnd(p: usize, n: i32, i: i32): i32 {
  for (let k = i + 1; k < n; k++) {
    const c = load<u8>(p + <usize>k);
    if (c == 0x5c) { k++; continue; }
    if (c == 0x22) return k;
  }
  return -1;
}

function skipSpace(p: usize, n: i32, i: i32): i32 {
  while (i < n) {
    const c = load<u8>(p + <usize>i);
    if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
    i++;
  }
  return i;
}

// contains reports whether the n bytes at p hold the m bytes at q.
function contains(p: usize, n: i32, q: usize, m: i32): bool {
  if (m == 0) return true;
  const first = load<u8>(q);
  for (let i = 0; i + m <= n; i++) {
    if (load<u8>(p + <usize>i) == first && memory.compare(p + <usize>i, q, <usize>m) == 0) return true;
  }
  return false;
}
