;; Multi-value blocks and loops with parameters and results, block types
;; as type indices, typed select.
(module
  (type $pp (func (param i32 i32) (result i32 i32)))
  (type $p_r (func (param i32) (result i32)))
  (func $swap (param i32 i32) (result i32 i32) (local.get 1) (local.get 0))
  (func (export "mv") (param i32 i32) (result i32 i64 i32)
    (call $swap (local.get 0) (local.get 1))
    (drop)
    (i64.const 9)
    (local.get 0))
  (func (export "block_params") (result i32)
    (i32.const 3) (i32.const 4)
    (block (type $pp) (param i32 i32) (result i32 i32)
      (call $swap))
    (i32.sub))
  (func (export "loop_params") (param $n i32) (result i32) (local $k i32)
    (i32.const 0)                 ;; acc
    (local.get $n)                ;; counter
    (loop $l (param i32 i32) (result i32)
      (local.set $k)
      (i32.add (local.get $k))    ;; acc += k
      (local.tee $k (i32.sub (local.get $k) (i32.const 1)))
      (local.get $k)
      (br_if $l)
      (drop)))
  (func (export "loop_results") (result i32 i32) (local $i i32)
    (loop $l (result i32 i32)
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (local.get $i)
      (i32.mul (local.get $i) (local.get $i))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 10)))))
  (func (export "if_type") (param $x i32) (result i32)
    (local.get $x)
    (if (type $p_r) (param i32) (result i32) (i32.and (local.get $x) (i32.const 1))
      (then (i32.mul (i32.const 3)))
      (else (i32.add (i32.const 100)))))
  (func (export "selects") (param $x i32) (result i32)
    (i32.add
      (select (result i32) (i32.const 10) (i32.const 20) (i32.and (local.get $x) (i32.const 1)))
      (i32.add
        (select (i32.const 1) (i32.const 2) (local.get $x))
        (ref.is_null (select (result funcref) (ref.null func) (ref.func $swap) (local.get $x))))))
  (elem declare func $swap))
