;; Starts normally until the wall clock passes DEADLINE (ns since the Unix
;; epoch, substituted by the test), and from then on _initialize never
;; returns: a plugin that loaded fine and whose later instances cannot
;; start. Every call loops forever, so each one is replaced.
(module
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_initialize")
    (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 0)))
    (if (i64.ge_u (i64.load (i32.const 0)) (i64.const DEADLINE))
      (then (loop $spin (br $spin)))))
  (func (export "hookgate_handle") (param i32 i32) (result i32)
    (loop $spin (br $spin))
    (i32.const 0)))
