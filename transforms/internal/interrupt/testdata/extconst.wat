;; Extended constant expressions: arithmetic in initialisers and offsets
;; (wat2wasm only lets them read imported globals).
(module
  (import "genv" "g42" (global $g42 i32))
  (memory (export "memory") 1)
  (global $a i32 (i32.add (global.get $g42) (i32.const 8)))
  (global $b i32 (i32.mul (global.get $g42) (i32.const 3)))
  (global $c i64 (i64.sub (i64.const 100) (i64.mul (i64.const 2) (i64.const 7))))
  (data (offset (i32.add (global.get $g42) (i32.const 2))) "xyz")
  (func (export "consts") (result i64)
    (i64.add (i64.extend_i32_s (i32.add (global.get $a) (global.get $b))) (global.get $c))))
