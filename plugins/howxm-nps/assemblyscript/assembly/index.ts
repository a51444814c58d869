// howxm-nps in AssemblyScript: the same plugin as ../main.go, written
// against ABI v1 (plugins/ABI.md) with no SDK, to measure what the guest
// toolchain costs (README.md, "The same plugin in AssemblyScript"). It
// keeps entry_submitted events whose NPS score is at or below max_score
// and turns each into a CRM ticket, byte for byte as the Go plugin does.
//
// Like the Go plugin, it asks the host for every value it needs in one
// json_get call (ABI.md, "Capability json_get") and writes the ticket from
// the payload's own JSON text. Unlike it, nothing here runs a collector or
// spills values to a stack in memory: AssemblyScript keeps locals in wasm
// locals, and the stub runtime never frees, so every buffer is allocated
// once (in the start function) and grown only when a larger event comes.

import {
  body_read, meta_read, json_get, emit, set_body, set_header, drop, fail,
  META_CONFIG, UNKNOWN_TARGET,
} from "../../../assemblyscript/assembly/hookgate";
import { Buffer, Text } from "../../../assemblyscript/assembly/buffer";
import { dtoa_buffered } from "util/number";

// abort is AssemblyScript's handler for failed bounds checks (asconfig.json
// points the compiler at it instead of an env.abort import, which hookgate
// does not provide): the call traps, and the host fails it as a trap.
function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  unreachable();
}

// ---- json_get records (ABI.md: 40 bytes each, little-endian) ----

const REC: i32 = 40;
const T_ABSENT: i32 = -1;
const T_NULL: i32 = 0;
const T_NUMBER: i32 = 2;
const T_STRING: i32 = 3;
const F_ESCAPED: i32 = 1; // the string value holds escapes
const F_KEY_ESCAPED: i32 = 2; // the element's key holds escapes

// The paths, by index: the same list as the Go plugin's.
const P_EVENT_TYPE = 0;
const P_SURVEY_ID = 1;
const P_SURVEY_NAME = 2;
const P_LABEL = 3; // of each question
const P_CODE = 4;
const P_TYPE = 5;
const P_ANSWER = 6; // each answer, keyed by question code
const P_SERIAL = 7;
const P_UID = 8;
const P_NAME = 9;
const P_EMAIL = 10;
const P_MOBILE = 11;
const P_LINK = 12;
const P_CREATED = 13;
const NPATHS = 14;

const PATHS: string[] = [
  "event_type", "campaign.id", "campaign.name",
  "campaign.fields.#.label", "campaign.fields.#.code", "campaign.fields.#.type",
  "entry.fields.#", "entry.serial_number",
  "entry.customer.uid", "entry.customer.name", "entry.customer.email", "entry.customer.mobile",
  "entry.system_link", "entry.created_at",
];

// pathList packs paths in json_get's format: each path's length as 4
// bytes, little-endian, then its bytes.
function pathList(paths: string[]): Buffer {
  const b = new Buffer(256);
  for (let i = 0; i < paths.length; i++) {
    const s = String.UTF8.encode(paths[i]);
    b.reserve(b.len + 4);
    store<i32>(b.at(b.len), s.byteLength);
    b.len += 4;
    b.bytes(changetype<usize>(s), s.byteLength);
  }
  return b;
}

// Doc is a JSON document in memory and json_get's records about it.
class Doc {
  json: usize = 0;
  recs: Buffer;
  answered: bool = false;
  constructor(recCap: i32) { this.recs = new Buffer(recCap * REC); }

  // run looks up every path of list in the n bytes at json. When the host
  // does not answer (the document is not valid JSON where the walk went,
  // or exceeds the ABI's limits), every path reads as absent.
  run(json: usize, n: i32, list: Buffer, npaths: i32): void {
    this.json = json;
    this.answered = false;
    if (n == 0) return;
    let got = json_get(json, n, list.ptr, list.len, this.recs.ptr, this.recs.cap);
    if (got > this.recs.cap) {
      this.recs.reserve(got);
      got = json_get(json, n, list.ptr, list.len, this.recs.ptr, this.recs.cap);
    }
    this.answered = got >= npaths * REC && got <= this.recs.cap;
  }

  // rec is the address of record k (k < the records returned).
  rec(k: i32): usize { return this.recs.ptr + <usize>(k * REC); }
  type(k: i32): i32 { return this.answered ? load<i32>(this.rec(k)) : T_ABSENT; }
  flags(k: i32): i32 { return load<i32>(this.rec(k), 4); }
  num(k: i32): f64 { return load<f64>(this.rec(k), 8); }
  start(k: i32): i32 { return load<i32>(this.rec(k), 16); }
  // rawLen is the length of record k's JSON text, 0 when absent (so a
  // value's "raw" is empty exactly when the Go SDK's Raw is "").
  rawLen(k: i32): i32 { return this.type(k) >= T_NULL ? load<i32>(this.rec(k), 20) : 0; }
  raw(k: i32): usize { return this.json + <usize>this.start(k); }
  // first byte of record k's raw text, 0 when absent
  head(k: i32): u8 { return this.rawLen(k) > 0 ? load<u8>(this.raw(k)) : 0; }

  // Elements of '#' path p: element j is record elem(p, j).
  count(p: i32): i32 { return this.answered ? max(load<i32>(this.rec(p), 28), 0) : 0; }
  elem(p: i32, j: i32): i32 { return load<i32>(this.rec(p), 24) + j * load<i32>(this.rec(p), 32); }
}

// ---- strings: a (pointer, length) pair, in strPtr and strLen ----

// str sets strPtr and strLen to record k's string content as the Go SDK's
// Str has it: unescaped into unesc when it holds escapes, empty unless a
// string.
let strPtr: usize = 0;
let strLen: i32 = 0;
function str(d: Doc, k: i32): void {
  strPtr = 0;
  strLen = 0;
  if (d.type(k) != T_STRING) return;
  const n = d.rawLen(k);
  if (n < 2) return;
  const p = d.raw(k) + 1;
  if ((d.flags(k) & F_ESCAPED) != 0) {
    unescape(p, n - 2);
  } else {
    strPtr = p;
    strLen = n - 2;
  }
}

// key sets strPtr and strLen to element record k's key, unescaped.
function key(d: Doc, k: i32): void {
  const at = load<i32>(d.rec(k), 24);
  const n = load<i32>(d.rec(k), 28);
  strPtr = 0;
  strLen = 0;
  if (at < 0 || n < 0) return;
  if ((d.flags(k) & F_KEY_ESCAPED) != 0) {
    unescape(d.json + <usize>at, n);
  } else {
    strPtr = d.json + <usize>at;
    strLen = n;
  }
}

// unesc holds the unescaped strings of one call. It is reserved at the
// body's size before any goes in: unescaping never lengthens a string,
// each string kept (event_type, codes, keys) comes from its own part of
// the body, and one only compared is dropped at once (unesc.len = mark),
// so it never moves while a call holds pointers into it.
const unesc = new Buffer(4096);

// unescape appends the unescaped content of the JSON string text at p
// (between its quotes) to unesc, and points strPtr and strLen at it. It
// decodes exactly as gjson does, which the Go SDK uses, including text
// that is not valid JSON (the host's walk checks only where a string
// ends): it stops at a control byte, at an unknown escape and at a \u
// with fewer than 4 bytes left; a \u escape that is not 4 hex digits is
// U+0000; a \u surrogate takes the \u escape after it as its pair, and a
// surrogate without a valid pair is U+FFFD.
function unescape(p: usize, n: i32): void {
  const from = unesc.len;
  for (let i = 0; i < n; i++) {
    let c = load<u8>(p + <usize>i);
    if (c < 0x20) break;
    if (c != 0x5c) { unesc.byte(c); continue; }
    if (++i >= n) break;
    c = load<u8>(p + <usize>i);
    if (c == 0x75) { // \uXXXX
      if (i + 5 > n) break;
      let r = hex4(p + <usize>(i + 1));
      i += 5;
      if (r >= 0xd800 && r < 0xe000 && n - i >= 6 && load<u8>(p + <usize>i) == 0x5c && load<u8>(p + <usize>(i + 1)) == 0x75) {
        const r2 = hex4(p + <usize>(i + 2));
        r = r < 0xdc00 && r2 >= 0xdc00 && r2 < 0xe000 ? 0x10000 + ((r - 0xd800) << 10) + (r2 - 0xdc00) : 0xfffd;
        i += 6;
      }
      utf8(r);
      i--;
      continue;
    }
    let o: i32 = -1;
    switch (c) {
      case 0x22: o = 0x22; break; // \"
      case 0x5c: o = 0x5c; break; // \\
      case 0x2f: o = 0x2f; break; // \/
      case 0x62: o = 0x08; break; // \b
      case 0x66: o = 0x0c; break; // \f
      case 0x6e: o = 0x0a; break; // \n
      case 0x72: o = 0x0d; break; // \r
      case 0x74: o = 0x09; break; // \t
    }
    if (o < 0) break;
    unesc.byte(<u8>o);
  }
  strPtr = unesc.at(from);
  strLen = unesc.len - from;
}

// hex4 reads the 4 hex digits at p as strconv.ParseUint(s, 16, 64) does
// for gjson: 0 when any of them is not a hex digit.
function hex4(p: usize): i32 {
  let r = 0;
  for (let i: usize = 0; i < 4; i++) {
    const c = <i32>load<u8>(p + i);
    let d = -1;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) d = (c | 0x20) - 0x57;
    if (d < 0) return 0;
    r = r * 16 + d;
  }
  return r;
}

// utf8 appends r as utf8.EncodeRune does: a lone surrogate as U+FFFD.
function utf8(r: i32): void {
  if (r >= 0xd800 && r < 0xe000) r = 0xfffd;
  if (r < 0x80) {
    unesc.byte(<u8>r);
  } else if (r < 0x800) {
    unesc.byte(<u8>(0xc0 | (r >> 6)));
    unesc.byte(<u8>(0x80 | (r & 0x3f)));
  } else if (r < 0x10000) {
    unesc.byte(<u8>(0xe0 | (r >> 12)));
    unesc.byte(<u8>(0x80 | ((r >> 6) & 0x3f)));
    unesc.byte(<u8>(0x80 | (r & 0x3f)));
  } else {
    unesc.byte(<u8>(0xf0 | (r >> 18)));
    unesc.byte(<u8>(0x80 | ((r >> 12) & 0x3f)));
    unesc.byte(<u8>(0x80 | ((r >> 6) & 0x3f)));
    unesc.byte(<u8>(0x80 | (r & 0x3f)));
  }
}

function equal(p: usize, n: i32, t: Text): bool {
  return n == t.len && memory.compare(p, t.ptr, <usize>n) == 0;
}

// ---- numbers ----

// numBuf holds dtoa's UTF-16 output (at most 28 characters).
const numBuf = heap.alloc(64);

// appendFloat appends v as jsonw.AppendFloat does (encoding/json's form,
// which is JavaScript's: exponent form below 1e-6 and from 1e21 on,
// "1e-7" and "1e+21"); NaN and infinities as null. Integers below 2^53
// are written exactly; other values by AssemblyScript's dtoa (Grisu2),
// which is shortest in all but rare cases (README.md).
function appendFloat(b: Buffer, v: f64, expForm: bool): void {
  if (isNaN(v) || !isFinite(v)) {
    b.bytes(TEXT_NULL.ptr, TEXT_NULL.len);
    return;
  }
  if (v == Math.trunc(v) && Math.abs(v) < 9007199254740992.0) {
    if (v == 0 && (reinterpret<u64>(v) >> 63) != 0) b.byte(0x2d); // -0
    b.decimal(<i64>v);
    return;
  }
  if (!expForm && (Math.abs(v) < 1e-6 || Math.abs(v) >= 1e21)) {
    // strconv's 'f' form would spell out the zeros; such a max_score is
    // not worth a second formatter. Refused at config load instead.
    unreachable();
  }
  let n = dtoa_buffered(numBuf, v);
  // dtoa writes a whole number from 2^53 on as "X.0"; Go writes "X".
  if (n > 2 && load<u16>(numBuf + (<usize>(n - 2) << 1)) == 0x2e && load<u16>(numBuf + (<usize>(n - 1) << 1)) == 0x30) n -= 2;
  for (let i: u32 = 0; i < n; i++) b.byte(<u8>load<u16>(numBuf + (<usize>i << 1)));
}

// The host parses a string score: "[<content>]" looked up at path "0"
// gives strconv.ParseFloat's value when the content is a JSON number.
const numDoc = new Doc(1);
const numPaths = pathList(["0"]);
const numText = new Buffer(64);

// parseNumber reports whether the n bytes at p are a JSON number and
// leaves its value in parsed.
let parsed: f64 = 0;
function parseNumber(p: usize, n: i32): bool {
  numText.reset();
  numText.byte(0x5b);
  numText.bytes(p, n);
  numText.byte(0x5d);
  numDoc.run(numText.ptr, numText.len, numPaths, 1);
  if (numDoc.type(0) != T_NUMBER || numDoc.start(0) != 1 || numDoc.rawLen(0) != n) return false;
  parsed = numDoc.num(0);
  return isFinite(parsed);
}

// ---- config ----

// Parsed config, cached by config id (the ABI never reuses an id for
// another config).
let haveConfig = false;
let configID: i32 = 0;
let maxScore: f64 = 6;
const target = new Buffer(64); // empty: replace the body instead of emitting
let hasTarget = false;
const aboveMax = new Buffer(64); // " above max_score 6"

const config = new Buffer(256);
const configDoc = new Doc(8);
// "#" makes the host walk every member, so a config that is not JSON is
// refused. The walk is not gjson's Valid, which the Go plugin asks: it
// does not look inside strings, and it refuses what is past its limits
// (README.md). hookgate hands a plugin the JSON of a TOML table, valid
// and within them.
const configPaths = pathList(["max_score", "target", "#"]);

// loadConfig reads and checks this step's config, and returns what is
// wrong with it, or null.
function loadConfig(): Text | null {
  let n = meta_read(META_CONFIG, config.ptr, config.cap);
  if (n > config.cap) {
    config.reserve(n);
    n = meta_read(META_CONFIG, config.ptr, config.cap);
  }
  config.len = max(n, 0);
  configDoc.run(config.ptr, config.len, configPaths, 3);
  if (!configDoc.answered) return ERR_CONFIG_JSON;
  maxScore = 6;
  if (configDoc.type(0) != T_ABSENT) {
    if (configDoc.type(0) != T_NUMBER) return ERR_MAX_SCORE;
    maxScore = configDoc.num(0);
    const a = Math.abs(maxScore);
    if (a >= 1e21 || (a != 0 && a < 1e-6)) return ERR_MAX_SCORE_FORM;
  }
  target.reset();
  hasTarget = false;
  if (configDoc.type(1) != T_ABSENT) {
    if (configDoc.type(1) != T_STRING) return ERR_TARGET;
    unesc.reset();
    unesc.reserve(config.len);
    str(configDoc, 1);
    target.bytes(strPtr, strLen);
    hasTarget = strLen > 0;
  }
  aboveMax.reset();
  aboveMax.text(TEXT_ABOVE_MAX);
  appendFloat(aboveMax, maxScore, false);
  return null;
}

// ---- the call ----

const body = new Buffer(4096);
const doc = new Doc(64);
const paths = pathList(PATHS);
const out = new Buffer(2048); // the ticket, and drop reasons

// Per question (element of campaign.fields): its code (pointer and
// length, the Go plugin's codes) and its kind; per answer (member of
// entry.fields): its key. Grown as needed, never shrunk.
const KIND_OTHER: u8 = 0;
const KIND_NPS: u8 = 1;
const KIND_ENDING: u8 = 2;
const questions = new Buffer(16 * 16); // per question: code ptr (8), code len (4), kind (4)
const answers = new Buffer(16 * 16); // per answer: key ptr (8), key len (4), record (4)
let nq = 0;
let na = 0;

const TEXT_NULL = new Text("null");
const TEXT_ENTRY_SUBMITTED = new Text("entry_submitted");
const TEXT_NPS_FIELD = new Text("NpsField");
const TEXT_ENDING_FIELD = new Text("EndingField");
const TEXT_ABOVE_MAX = new Text(" above max_score ");
const TEXT_CONTENT_TYPE = new Text("Content-Type");
const TEXT_JSON = new Text("application/json");
const ERR_CONFIG_JSON = new Text("howxm-nps: config is not valid JSON");
const ERR_MAX_SCORE = new Text("howxm-nps: config max_score must be a number, e.g. 6");
const ERR_MAX_SCORE_FORM = new Text("howxm-nps: config max_score must be 0 or between 1e-6 and 1e21, e.g. 6");
const ERR_TARGET = new Text("howxm-nps: config target must be a target name (a string)");
const R_EVENT_TYPE = new Text("howxm-nps: event_type is ");
const R_MISSING = new Text("missing");
const R_NOT_SUBMITTED = new Text(", not entry_submitted");
const R_NO_NPS_FIELD = new Text("howxm-nps: the survey has no NpsField question");
const R_NO_ANSWER = new Text("howxm-nps: no NPS answer (");
const R_ANSWER = new Text("howxm-nps: NPS answer ");
const R_NOT_A_NUMBER = new Text(" is not a number");
const E_EMIT = new Text("howxm-nps: emit(\"");
const E_UNKNOWN_TARGET = new Text("\"): unknown target");
const E_REFUSED = new Text("\"): refused");

export function hookgate_handle(bodyLen: i32, configId: i32): i32 {
  if (!haveConfig || configId != configID) {
    haveConfig = false; // a config that fails leaves nothing cached
    const err = loadConfig();
    if (err != null) {
      fail(err.ptr, err.len);
      return 1;
    }
    haveConfig = true;
    configID = configId;
  }

  body.reserve(bodyLen);
  let n = body_read(body.ptr, body.cap);
  if (n > body.cap) {
    body.reserve(n);
    n = body_read(body.ptr, body.cap);
  }
  body.len = max(n, 0);
  unesc.reset();
  unesc.reserve(body.len);
  doc.run(body.ptr, body.len, paths, NPATHS);

  str(doc, P_EVENT_TYPE);
  if (!equal(strPtr, strLen, TEXT_ENTRY_SUBMITTED)) {
    out.reset();
    out.text(R_EVENT_TYPE);
    if (doc.type(P_EVENT_TYPE) == T_ABSENT) {
      out.text(R_MISSING);
    } else {
      out.bytes(doc.raw(P_EVENT_TYPE), doc.rawLen(P_EVENT_TYPE));
    }
    out.text(R_NOT_SUBMITTED);
    return dropWith();
  }

  // The questions are an array and the answers an object: '#' would go
  // through either.
  nq = 0;
  let npsQ = -1;
  if (doc.head(P_LABEL) == 0x5b) { // [
    nq = doc.count(P_LABEL);
    questions.reserve(nq * 16);
    for (let j = 0; j < nq; j++) {
      const mark = unesc.len;
      str(doc, doc.elem(P_TYPE, j));
      let kind = KIND_OTHER;
      if (equal(strPtr, strLen, TEXT_NPS_FIELD)) kind = KIND_NPS;
      else if (equal(strPtr, strLen, TEXT_ENDING_FIELD)) kind = KIND_ENDING;
      unesc.len = mark; // compared, not kept
      str(doc, doc.elem(P_CODE, j));
      const q = questions.at(j * 16);
      store<usize>(q, strPtr);
      store<i32>(q, strLen, 8);
      store<i32>(q, kind, 12);
      if (kind == KIND_NPS && npsQ < 0) npsQ = j;
    }
  }
  na = 0;
  if (doc.head(P_ANSWER) == 0x7b) { // {
    na = doc.count(P_ANSWER);
    answers.reserve(na * 16);
    for (let j = 0; j < na; j++) {
      const k = doc.elem(P_ANSWER, j);
      key(doc, k);
      const a = answers.at(j * 16);
      store<usize>(a, strPtr);
      store<i32>(a, strLen, 8);
      store<i32>(a, k, 12);
    }
  }

  const npsCode = npsQ >= 0 ? load<usize>(questions.at(npsQ * 16)) : 0;
  const npsCodeLen = npsQ >= 0 ? load<i32>(questions.at(npsQ * 16), 8) : 0;
  if (npsCodeLen == 0) {
    out.reset();
    out.text(R_NO_NPS_FIELD);
    return dropWith();
  }
  const sk = answerTo(npsCode, npsCodeLen); // the score's record, or -1
  const st = sk >= 0 ? doc.type(sk) : T_ABSENT;
  const mark = unesc.len; // the score's content is read, not kept
  let emptyString = false;
  if (st == T_STRING) {
    str(doc, sk);
    emptyString = strLen == 0;
  }
  if (st == T_ABSENT || st == T_NULL || emptyString) {
    out.reset();
    out.text(R_NO_ANSWER);
    out.bytes(npsCode, npsCodeLen);
    out.byte(0x29); // )
    return dropWith();
  }
  let score: f64 = 0;
  if (st == T_NUMBER) {
    score = doc.num(sk);
  } else if (st == T_STRING && parseNumber(strPtr, strLen)) {
    score = parsed;
    unesc.len = mark;
  } else {
    out.reset();
    out.text(R_ANSWER);
    out.bytes(doc.raw(sk), doc.rawLen(sk));
    out.text(R_NOT_A_NUMBER);
    return dropWith();
  }
  if (score > maxScore) {
    // The usual outcome: built in out, allocating nothing.
    out.reset();
    out.text(TEXT_SCORE);
    if (st == T_STRING) {
      str(doc, sk);
      out.bytes(strPtr, strLen);
    } else {
      out.bytes(doc.raw(sk), doc.rawLen(sk));
    }
    out.bytes(aboveMax.ptr, aboveMax.len);
    return dropWith();
  }

  writeTicket(sk, st, score);
  let h = 0;
  if (hasTarget) {
    h = emit(target.ptr, target.len);
    if (h < 0) {
      out.reset();
      out.text(E_EMIT);
      out.bytes(target.ptr, target.len);
      out.text(h == UNKNOWN_TARGET ? E_UNKNOWN_TARGET : E_REFUSED);
      fail(out.ptr, out.len);
      return 1;
    }
  }
  // A refusal here (max_output) fails the call in the host already.
  set_body(h, out.ptr, out.len);
  set_header(h, TEXT_CONTENT_TYPE.ptr, TEXT_CONTENT_TYPE.len, TEXT_JSON.ptr, TEXT_JSON.len);
  return 0;
}

const TEXT_SCORE = new Text("howxm-nps: score ");

// dropWith drops the event with the reason in out (the host copies it).
function dropWith(): i32 {
  drop(out.ptr, out.len);
  return 0;
}

// answerTo returns the record of the first answer whose key is the n
// bytes at code, or -1. Codes are matched exactly, not as paths.
function answerTo(code: usize, n: i32): i32 {
  for (let j = 0; j < na; j++) {
    const a = answers.at(j * 16);
    if (load<i32>(a, 8) == n && memory.compare(load<usize>(a), code, <usize>n) == 0) return load<i32>(a, 12);
  }
  return -1;
}

// raw appends record k's JSON text, null when absent.
function raw(b: Buffer, k: i32): void {
  const n = doc.rawLen(k);
  if (n == 0) b.text(TEXT_NULL);
  else b.bytes(doc.raw(k), n);
}

// skipAnswer reports whether the answer at record k is left out of the
// ticket: missing, null, "" or the string "null" (Howxm's placeholder),
// escapes decoded.
function skipAnswer(k: i32): bool {
  const n = doc.rawLen(k);
  if (n == 0) return true;
  if (equal(doc.raw(k), n, TEXT_NULL)) return true;
  if (doc.head(k) == 0x22) { // "
    const mark = unesc.len;
    str(doc, k);
    const skip = strLen == 0 || equal(strPtr, strLen, TEXT_NULL);
    unesc.len = mark;
    return skip;
  }
  return false;
}

const T1 = new Text("{\"source\":\"howxm\",\"survey\":{\"id\":");
const T2 = new Text(",\"name\":");
const T3 = new Text("},\"serial_number\":");
const T4 = new Text(",\"score\":");
const T5 = new Text(",\"customer\":{\"uid\":");
const T6 = new Text(",\"email\":");
const T7 = new Text(",\"mobile\":");
const T8 = new Text("},\"answers\":[");
const T9 = new Text("{\"question\":");
const T10 = new Text(",\"answer\":");
const T11 = new Text("],\"link\":");
const T12 = new Text(",\"created_at\":");

// writeTicket writes the ticket into out, as the Go plugin's writeTicket
// does: each run of constant text in one copy, each value as its raw JSON.
function writeTicket(sk: i32, st: i32, score: f64): void {
  out.reset();
  out.text(T1);
  raw(out, P_SURVEY_ID);
  out.text(T2);
  raw(out, P_SURVEY_NAME);
  out.text(T3);
  raw(out, P_SERIAL);
  out.text(T4);
  if (st == T_NUMBER) out.bytes(doc.raw(sk), doc.rawLen(sk));
  else appendFloat(out, score, true);
  out.text(T5);
  raw(out, P_UID);
  out.text(T2);
  raw(out, P_NAME);
  out.text(T6);
  raw(out, P_EMAIL);
  out.text(T7);
  raw(out, P_MOBILE);
  out.text(T8);
  let written = 0;
  for (let i = 0; i < nq; i++) {
    const q = questions.at(i * 16);
    if (load<i32>(q, 12) == KIND_ENDING) continue;
    const codeLen = load<i32>(q, 8);
    if (codeLen == 0) continue;
    const k = answerTo(load<usize>(q), codeLen);
    if (k < 0 || skipAnswer(k)) continue;
    if (written++ > 0) out.byte(0x2c); // ,
    out.text(T9);
    raw(out, doc.elem(P_LABEL, i));
    out.text(T10);
    out.bytes(doc.raw(k), doc.rawLen(k));
    out.byte(0x7d); // }
  }
  out.text(T11);
  raw(out, P_LINK);
  out.text(T12);
  raw(out, P_CREATED);
  out.byte(0x7d);
}
