;; Imports of every kind that shifts indices (functions, globals), a start
;; function, recursion, loops, br_table, traps, numeric odds and ends.
(module
  (import "env" "add" (func $add (param i32 i32) (result i32)))
  (import "env" "log" (func $log (param i32)))
  (import "genv" "g42" (global $g42 i32))
  (import "genv" "gmut" (global $gmut (mut i32)))
  (memory (export "memory") 1)
  (global $started (mut i32) (i32.const 0))
  (global $fromImport i32 (global.get $g42))
  (global (export "exported_global") (mut i64) (i64.const -7))
  (data (i32.const 16) "hello")
  (start $init)

  (func $init
    (global.set $started (i32.const 100))
    (call $log (i32.const 1)))

  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_s (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add
        (call $fib (i32.sub (local.get $n) (i32.const 1)))
        (call $fib (i32.sub (local.get $n) (i32.const 2)))))))

  (func (export "fib20") (result i32) (call $fib (i32.const 20)))

  (func (export "sum_loop") (result i32) (local $i i32) (local $s i32)
    (loop $l
      (local.set $s (i32.add (local.get $s) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_s (local.get $i) (i32.const 1000))))
    (local.get $s))

  ;; Nested loops, a branch from the inner loop to the outer one, code
  ;; after the loops, and a br_table.
  (func (export "nested") (param $n i32) (result i32) (local $i i32) (local $j i32) (local $acc i32)
    (block $done
      (loop $outer
        (local.set $j (i32.const 0))
        (loop $inner
          (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $j))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (if (i32.and (i32.eq (local.get $j) (local.get $i)) (i32.lt_s (local.get $i) (local.get $n)))
            (then (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $outer)))
          (br_if $inner (i32.lt_s (local.get $j) (local.get $n))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $outer (i32.lt_s (local.get $i) (local.get $n)))))
    (block $b2 (block $b1 (block $b0
      (br_table $b0 $b1 $b2 (i32.rem_u (local.get $acc) (i32.const 3))))
      (local.set $acc (i32.add (local.get $acc) (i32.const 1000))))
      (local.set $acc (i32.add (local.get $acc) (i32.const 100))))
    (local.get $acc))

  (func (export "imports") (result i32)
    (call $log (i32.const 7))
    (global.set $gmut (i32.add (global.get $gmut) (i32.const 1)))
    (call $add (global.get $g42) (i32.add (global.get $fromImport) (global.get $gmut))))

  (func (export "started") (result i32) (global.get $started))

  (func (export "mem") (result i32) (local $i i32)
    (loop $l
      (i32.store8 offset=32 (local.get $i) (i32.add (local.get $i) (i32.load8_u (i32.const 16))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 200))))
    (i32.load offset=40 align=2 (i32.const 0)))

  (func (export "trap") (result i32) (unreachable))
  (func (export "divzero") (param i32) (result i32)
    (i32.div_s (i32.const 1) (i32.sub (local.get 0) (i32.const 5))))

  ;; Sign extension and saturating conversions.
  (func (export "numeric") (param $x i32) (result i64)
    (i64.add
      (i64.extend32_s (i64.extend_i32_u (i32.extend8_s (i32.mul (local.get $x) (i32.const 51)))))
      (i64.add (i64.trunc_sat_f64_s (f64.const 1e300)) (i64.extend_i32_s (i32.trunc_sat_f32_u (f32.const -5))))))

  (func (export "floats") (param f32 f64) (result f64)
    (f64.add (f64.promote_f32 (f32.sqrt (local.get 0))) (f64.nearest (local.get 1)))))
