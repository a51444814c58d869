;; Element segments in all eight encodings, ref.func in global
;; initialisers and in code, tables and the table instructions.
(module
  (import "env" "add" (func $add (param i32 i32) (result i32)))
  (type $v_i (func (result i32)))
  (type $ii (func (param i32) (result i32)))
  (table $t 8 funcref)
  (table $t2 6 funcref)
  (table $ext 2 externref)
  (func $one (type $v_i) (i32.const 1))
  (func $two (type $v_i) (i32.const 2))
  (func $three (type $v_i) (i32.const 3))
  (func $four (type $v_i) (i32.const 4))
  (func $double (type $ii) (i32.mul (local.get 0) (i32.const 2)))
  (func $triple (type $ii) (i32.mul (local.get 0) (i32.const 3)))
  (global $gref funcref (ref.func $three))
  (global $gmut (mut funcref) (ref.null func))
  (elem (i32.const 0) $one $two)                                      ;; flags 0
  (elem $p1 func $three $four)                                        ;; flags 1
  (elem (table $t2) (i32.const 0) func $four $one)                    ;; flags 2
  (elem declare func $double)                                         ;; flags 3
  (elem (i32.const 2) funcref (ref.func $three) (ref.null func))      ;; flags 4
  (elem $p5 funcref (ref.func $two) (ref.null func) (ref.func $one))  ;; flags 5
  (elem (table $t2) (i32.const 2) funcref (ref.func $two) (ref.null func)) ;; flags 6
  (elem declare funcref (ref.func $triple) (ref.null func))           ;; flags 7

  (func $slot (param $t i32) (param $i i32) (result i32)
    ;; -1 for a null slot, else what the function there returns.
    (if (result i32) (local.get $t)
      (then (if (result i32) (ref.is_null (table.get $t2 (local.get $i)))
        (then (i32.const -1))
        (else (call_indirect $t2 (type $v_i) (local.get $i)))))
      (else (if (result i32) (ref.is_null (table.get $t (local.get $i)))
        (then (i32.const -1))
        (else (call_indirect $t (type $v_i) (local.get $i)))))))

  (func (export "a_tables") (result i32) (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 7))
        (i32.add (call $slot (i32.const 0) (local.get $i)) (call $slot (i32.const 1) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 6))))
    (local.get $acc))

  (func (export "table_ops") (result i32) (local $acc i32)
    (table.init $t $p1 (i32.const 4) (i32.const 0) (i32.const 2))
    (table.init $t $p5 (i32.const 6) (i32.const 0) (i32.const 2))
    (elem.drop $p1)
    (table.copy $t2 $t (i32.const 4) (i32.const 4) (i32.const 2))
    (table.set $t (i32.const 7) (global.get $gref))
    (global.set $gmut (ref.func $double))
    (local.set $acc (call_indirect $t2 (type $v_i) (i32.const 5)))
    (local.set $acc (i32.add (local.get $acc) (i32.mul (i32.const 10) (call_indirect $t (type $v_i) (i32.const 7)))))
    (local.set $acc (i32.add (local.get $acc) (i32.mul (i32.const 100) (table.size $t))))
    (drop (table.grow $t (ref.null func) (i32.const 2)))
    (table.fill $t (i32.const 8) (ref.func $four) (i32.const 2))
    (local.set $acc (i32.add (local.get $acc) (i32.mul (i32.const 1000) (call_indirect $t (type $v_i) (i32.const 9)))))
    (table.set $t (i32.const 1) (global.get $gmut))
    (local.set $acc (i32.add (local.get $acc) (call_indirect $t (type $ii) (i32.const 21) (i32.const 1))))
    (table.set $t (i32.const 1) (ref.func $triple))
    (local.set $acc (i32.add (local.get $acc) (call_indirect $t (type $ii) (i32.const 21) (i32.const 1))))
    (i32.add (local.get $acc) (i32.mul (i32.const 10000) (ref.is_null (table.get $ext (i32.const 0))))))

  (func (export "indirect_trap") (result i32) (call_indirect $t (type $ii) (i32.const 1) (i32.const 0)))
  (func (export "host_in_table") (result i32) (call $add (i32.const 2) (i32.const 3))))
