;; Tail calls: hookgate_handle sums 1..(1,000,000 + body length) with a
;; self-recursive return_call and a return_call_indirect, which would
;; overflow the stack without tail calls, and sets the body to the sum as
;; 8 little-endian bytes. Needs --enable-tail-call.
(module
  (import "hookgate_v1" "set_body" (func $set_body (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (type $step (func (param i64 i64) (result i64)))
  (table 1 funcref)
  (elem (i32.const 0) $sum)

  ;; $sum(acc, k) = acc + k + (k-1) + ... + 1, alternating direct and
  ;; indirect tail calls.
  (func $sum (type $step)
    (if (result i64) (i64.eqz (local.get 1))
      (then (local.get 0))
      (else
        (if (result i64) (i64.eqz (i64.and (local.get 1) (i64.const 1)))
          (then (return_call $sum (i64.add (local.get 0) (local.get 1)) (i64.sub (local.get 1) (i64.const 1))))
          (else (return_call_indirect (type $step)
            (i64.add (local.get 0) (local.get 1)) (i64.sub (local.get 1) (i64.const 1)) (i32.const 0)))))))

  (func (export "hookgate_handle") (param $len i32) (param i32) (result i32)
    (i64.store (i32.const 0)
      (call $sum (i64.const 0) (i64.add (i64.const 1000000) (i64.extend_i32_u (local.get $len)))))
    (drop (call $set_body (i32.const 0) (i32.const 0) (i32.const 8)))
    (i32.const 0)))
