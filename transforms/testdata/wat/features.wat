;; A well-behaved guest built from what the instrumenter must rewrite with
;; care: an element segment of ref.func expressions, a passive one used
;; with table.init, a funcref global initialised with ref.func, indirect
;; calls, SIMD, bulk memory (fill, copy, init, data.drop, elem.drop) and
;; multi-value functions and blocks with parameters. hookgate_handle sets
;; the event's body to 32 bytes the test computes the same way from the
;; body (at least 16 bytes):
;;
;;   [0:16)  body[i] + 1               i8x16.add
;;   16, 17  n / 7, n % 7              a function returning two values
;;   18..22  n+100, n*3, n-1, n^255, n*5   call_indirect through the table
;;   [23:28) "bulk!"                   memory.init from a passive segment
;;   [28:32) bytes [0:4) again         memory.copy
;;
;; where n is the body's length.
(module
  (import "hookgate_v1" "body_read" (func $body_read (param i32 i32) (result i32)))
  (import "hookgate_v1" "set_body" (func $set_body (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (type $binop (func (param i32 i32) (result i32)))
  (table $t 4 funcref)
  ;; The ref.null entries make wat2wasm keep the expression encoding
  ;; (flags 4 and 5) instead of plain function indices.
  (elem (table $t) (i32.const 0) funcref (ref.func $add) (ref.func $mul) (ref.null func))
  (elem $later funcref (ref.func $sub) (ref.func $xor) (ref.null func))
  (global $g funcref (ref.func $mul))
  (data $word "bulk!")
  ;; Dropped at every call (dropping twice is allowed): $word and $later
  ;; are not dropped, so every call initialises from them alike.
  (elem $spent funcref (ref.func $add))
  (data $spent_data "spent")

  (func $add (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $mul (type $binop) (i32.mul (local.get 0) (local.get 1)))
  (func $sub (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func $xor (type $binop) (i32.xor (local.get 0) (local.get 1)))

  (func $divmod (param $a i32) (param $b i32) (result i32 i32)
    (i32.div_u (local.get $a) (local.get $b))
    (i32.rem_u (local.get $a) (local.get $b)))

  (func (export "hookgate_handle") (param $len i32) (param $cfg i32) (result i32)
    (local $n i32) (local $q i32) (local $r i32)
    (memory.fill (i32.const 0) (i32.const 0x2e) (i32.const 256))
    (local.set $n (call $body_read (i32.const 128) (i32.const 64)))

    ;; SIMD: every byte of the body's first 16, plus one.
    (v128.store (i32.const 0)
      (i8x16.add (v128.load (i32.const 128)) (i8x16.splat (i32.const 1))))

    ;; Multi-value: a function returning two values, through a block
    ;; taking and leaving them (swapped on the way).
    (call $divmod (local.get $n) (i32.const 7))
    (block $swap (param i32 i32) (result i32 i32)
      (local.set $r)
      (local.set $q)
      (local.get $r)
      (local.get $q))
    (local.set $q)
    (local.set $r)
    (i32.store8 (i32.const 16) (local.get $q))
    (i32.store8 (i32.const 17) (local.get $r))

    ;; Indirect calls: slots 0-1 from the active segment, 2-3 from the
    ;; passive one, then slot 2 again from the global.
    (i32.store8 (i32.const 18) (call_indirect $t (type $binop) (local.get $n) (i32.const 100) (i32.const 0)))
    (i32.store8 (i32.const 19) (call_indirect $t (type $binop) (local.get $n) (i32.const 3) (i32.const 1)))
    (table.init $t $later (i32.const 2) (i32.const 0) (i32.const 2))
    (elem.drop $spent)
    (i32.store8 (i32.const 20) (call_indirect $t (type $binop) (local.get $n) (i32.const 1) (i32.const 2)))
    (i32.store8 (i32.const 21) (call_indirect $t (type $binop) (local.get $n) (i32.const 255) (i32.const 3)))
    (table.set $t (i32.const 2) (global.get $g))
    (i32.store8 (i32.const 22) (call_indirect $t (type $binop) (local.get $n) (i32.const 5) (i32.const 2)))

    ;; Bulk memory.
    (memory.init $word (i32.const 23) (i32.const 0) (i32.const 5))
    (data.drop $spent_data)
    (memory.copy (i32.const 28) (i32.const 0) (i32.const 4))

    (drop (call $set_body (i32.const 0) (i32.const 0) (i32.const 32)))
    (i32.const 0)))
