;; return_call and return_call_indirect, deep enough that only real tail
;; calls survive.
(module
  (type $t (func (param i32 i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $count_ind $count)
  (func $count (export "count") (param $n i32) (param $acc i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (local.get $acc))
      (else (return_call $count (i32.sub (local.get $n) (i32.const 1)) (i32.add (local.get $acc) (i32.const 1))))))
  (func (export "count_big") (result i32) (call $count (i32.const 1000000) (i32.const 0)))
  (func $count_ind (export "count_ind") (param $n i32) (param $acc i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (local.get $acc))
      (else (return_call_indirect (type $t)
        (i32.sub (local.get $n) (i32.const 1)) (i32.add (local.get $acc) (i32.const 2))
        (i32.and (local.get $n) (i32.const 1))))))
  (func (export "ind_big") (result i32) (call $count_ind (i32.const 300000) (i32.const 0))))
