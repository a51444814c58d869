;; Atomics on the plugin's (unshared) memory: hookgate_handle adds the body
;; length to a counter three times with i32.atomic.rmw.add, swaps it with
;; i64.atomic.rmw.cmpxchg, fences, and sets the body to 8 bytes: the
;; i32 counter (3 * n) and the value the exchange left at offset 8
;; (n * 1000 when the comparison held), little-endian. Needs
;; --enable-threads.
(module
  (import "hookgate_v1" "set_body" (func $set_body (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "hookgate_handle") (param $n i32) (param i32) (result i32)
    (i32.atomic.store (i32.const 0) (i32.const 0))
    (i64.atomic.store (i32.const 8) (i64.const 42))
    (drop (i32.atomic.rmw.add (i32.const 0) (local.get $n)))
    (drop (i32.atomic.rmw.add (i32.const 0) (local.get $n)))
    (drop (i32.atomic.rmw.add (i32.const 0) (local.get $n)))
    (drop (i64.atomic.rmw.cmpxchg (i32.const 8) (i64.const 42)
      (i64.mul (i64.extend_i32_u (local.get $n)) (i64.const 1000))))
    (atomic.fence)
    (i32.store (i32.const 16) (i32.atomic.load (i32.const 0)))
    (i32.store (i32.const 20) (i32.wrap_i64 (i64.atomic.load (i32.const 8))))
    (drop (call $set_body (i32.const 0) (i32.const 16) (i32.const 8)))
    (i32.const 0)))
