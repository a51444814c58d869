// Byte buffers for AssemblyScript plugins, shared by the ones in this
// repository (this plugin and plugins/howxm-nps/assemblyscript); a plugin
// elsewhere copies the file. Under the stub runtime nothing is ever freed,
// so a plugin allocates its buffers once (at start) and reuses them: only
// a value larger than any before makes one grow.

// Buffer is a growable byte buffer in linear memory.
export class Buffer {
  ptr: usize;
  cap: i32;
  len: i32 = 0;
  constructor(cap: i32) {
    this.ptr = heap.alloc(<usize>cap);
    this.cap = cap;
  }
  // reserve makes room for n bytes in all, at least doubling: it may move
  // the buffer (the old block stays readable under the stub runtime).
  reserve(n: i32): void {
    if (n > this.cap) {
      const c = max(n, this.cap * 2);
      this.ptr = heap.realloc(this.ptr, <usize>c);
      this.cap = c;
    }
  }
  reset(): void { this.len = 0; }
  // at is the address of byte i.
  at(i: i32): usize { return this.ptr + <usize>i; }
  byte(b: u8): void {
    this.reserve(this.len + 1);
    store<u8>(this.ptr + <usize>this.len, b);
    this.len++;
  }
  bytes(p: usize, n: i32): void {
    this.reserve(this.len + n);
    memory.copy(this.ptr + <usize>this.len, p, <usize>n);
    this.len += n;
  }
  text(t: Text): void { this.bytes(t.ptr, t.len); }
  // ascii appends s, which must be ASCII (one byte per character).
  ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.byte(<u8>s.charCodeAt(i));
  }
  // decimal appends v in base 10.
  decimal(v: i64): void {
    if (v < 0) { this.byte(0x2d); v = -v; }
    const start = this.len;
    do { this.byte(<u8>(0x30 + <i32>(v % 10))); v /= 10; } while (v > 0);
    for (let i = start, j = this.len - 1; i < j; i++, j--) {
      const a = load<u8>(this.at(i));
      store<u8>(this.at(i), load<u8>(this.at(j)));
      store<u8>(this.at(j), a);
    }
  }
}

// Text is a constant UTF-8 string, encoded once: declare it at the top
// level, never in a call (each encoding allocates).
export class Text {
  ptr: usize;
  len: i32;
  constructor(s: string) {
    const b = String.UTF8.encode(s);
    this.ptr = changetype<usize>(b);
    this.len = b.byteLength;
  }
}
