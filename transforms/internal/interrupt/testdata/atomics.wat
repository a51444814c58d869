;; Threads: atomics on unshared memory (a shared one is refused: see
;; shared.wat), including the fence.
(module
  (memory (export "memory") 1 1)
  (func (export "atomics") (result i32)
    (i32.atomic.store (i32.const 0) (i32.const 5))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 3)))
    (drop (i32.atomic.rmw.cmpxchg (i32.const 0) (i32.const 8) (i32.const 42)))
    (atomic.fence)
    (i64.atomic.store offset=8 (i32.const 0) (i64.const 7))
    (drop (i64.atomic.rmw32.xchg_u (i32.const 8) (i64.const 9)))
    (i32.atomic.store8 (i32.const 20) (i32.const 255))
    (drop (i32.atomic.rmw16.or_u (i32.const 22) (i32.const 0x1234)))
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1)))
    (i32.add (i32.atomic.load (i32.const 0)) (i32.wrap_i64 (i64.atomic.load (i32.const 8)))))
  (func (export "atomic_loop") (result i32) (local $i i32)
    (loop $l
      (drop (i32.atomic.rmw.add offset=64 (i32.const 0) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 500))))
    (i32.atomic.load offset=64 (i32.const 0))))
