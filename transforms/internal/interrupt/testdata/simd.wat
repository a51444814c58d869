;; SIMD: v128.const, shuffle, lanes, load/store lane, load zero, and
;; opcodes >= 0x80 (two-byte LEB128 sub-opcodes in the spec encoding).
(module
  (memory (export "memory") 1)
  (func (export "simd") (result i32) (local $v v128) (local $w v128)
    (local.set $v (v128.const i32x4 1 2 3 4))
    (local.set $v (i32x4.add (local.get $v) (v128.const i32x4 10 20 30 40)))
    (local.set $v (i8x16.shuffle 15 14 13 12 11 10 9 8 16 17 18 19 20 21 22 23 (local.get $v) (local.get $v)))
    (local.set $v (i32x4.replace_lane 2 (local.get $v) (i32.const 99)))
    (v128.store (i32.const 0) (local.get $v))
    (local.set $w (v128.load32_lane 1 (i32.const 4) (i64x2.splat (i64.const -1))))
    (v128.store64_lane offset=32 1 (i32.const 0) (local.get $w))
    (local.set $w (i16x8.abs (v128.const i16x8 -1 -2 3 -4 5 -6 7 -8)))
    (v128.store offset=48 (i32.const 0) (local.get $w))
    (v128.store offset=64 (i32.const 0) (i32x4.dot_i16x8_s (local.get $w) (local.get $w)))
    (v128.store offset=80 (i32.const 0) (v128.load32_zero (i32.const 8)))
    (v128.store offset=96 (i32.const 0) (f64x2.convert_low_i32x4_s (local.get $v)))
    (v128.store offset=112 (i32.const 0) (i64x2.extmul_low_i32x4_u (local.get $v) (local.get $w)))
    (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $v)) (i16x8.extract_lane_s 3 (local.get $w)))
      (i8x16.bitmask (i8x16.popcnt (local.get $v)))))

  (func (export "simd_loop") (result i64) (local $i i32) (local $acc v128)
    (loop $l
      (local.set $acc (i64x2.add (local.get $acc)
        (i64x2.extend_low_i32x4_s (i32x4.splat (local.get $i)))))
      (local.set $acc (v128.bitselect (local.get $acc) (i64x2.shl (local.get $acc) (i32.const 1))
        (v128.const i64x2 -1 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
    (i64.add (i64x2.extract_lane 0 (local.get $acc)) (i64x2.extract_lane 1 (local.get $acc)))))
