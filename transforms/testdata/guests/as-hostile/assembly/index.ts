// The AssemblyScript test guest: config {"mode":"..."} picks what
// hookgate_handle does. "features" behaves, through what asc makes of
// SIMD, bulk memory and indirect calls (a table filled by an element
// segment), and sets a body the test computes the same way; "loop" never
// returns; "recurse" recurses until the stack overflows.
//
// The project in startloop/ never finishes its start function.

// @ts-ignore: decorator
@external("hookgate_v1", "meta_read")
declare function meta_read(key: i32, buf: usize, limit: i32): i32;
// @ts-ignore: decorator
@external("hookgate_v1", "body_read")
declare function body_read(buf: usize, limit: i32): i32;
// @ts-ignore: decorator
@external("hookgate_v1", "set_body")
declare function set_body(h: i32, p: usize, n: i32): i32;
// @ts-ignore: decorator
@external("hookgate_v1", "fail")
declare function fail(p: usize, n: i32): void;

function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  fail(0, 0);
  unreachable();
}

// Allocated once, by the start function.
const buf: usize = heap.alloc(256);
const out: usize = heap.alloc(64);
let spins: i64 = 0;

// Called through a function table.
const ops: StaticArray<(a: i32, b: i32) => i32> = [
  (a: i32, b: i32): i32 => a + b,
  (a: i32, b: i32): i32 => a * b,
  (a: i32, b: i32): i32 => a ^ b,
];

// mode returns the first byte of the config's "mode" value, which tells
// the modes apart.
function mode(): u8 {
  const n = meta_read(5, buf, 256);
  // {"mode":"x..."}: the value starts at offset 9.
  if (n < 10) return 0;
  return load<u8>(buf + 9);
}

export function hookgate_handle(bodyLen: i32, configId: i32): i32 {
  const m = mode();
  if (m == 0x66) return features(); // f
  if (m == 0x6c) { // l
    while (true) spins++;
  }
  if (m == 0x72) { // r
    spins = recurse(1);
    return 0;
  }
  fail(0, 0);
  return 1;
}

// features sets the body to 24 bytes from a body of at least 16:
//   [0:16)  body[i] + 1                 i8x16.add
//   16..18  n+7, n*3, n^0x55            indirect calls through ops
//   [19:24) 0x2a                        memory.fill
// and then copies [0:4) over [20:24)    memory.copy
// where n is the body's length.
function features(): i32 {
  const n = body_read(buf, 256);
  v128.store(out, i8x16.add(v128.load(buf), i8x16.splat(1)));
  store<u8>(out + 16, <u8>ops[0](n, 7));
  store<u8>(out + 17, <u8>ops[1](n, 3));
  store<u8>(out + 18, <u8>ops[2](n, 0x55));
  memory.fill(out + 19, 0x2a, 5);
  // A length the optimizer cannot see (4 for any body under 64 KiB), or
  // it turns the copy into a load and a store.
  memory.copy(out + 20, out, <usize>(4 + (n >> 16)));
  set_body(0, out, 24);
  return 0;
}

function recurse(n: i64): i64 {
  if (n == 0) return 0; // never: keeps the optimizer from proving it endless
  return recurse(n + 1) + n;
}
