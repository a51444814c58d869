;; Starting an instance takes at least 60 ms (_initialize waits on the
;; monotonic clock), and every call loops forever: once a call timed out,
;; its replacement takes longer to start than the plugin's timeout.
(module
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func $now (result i64)
    (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 0)))
    (i64.load (i32.const 0)))
  (func (export "_initialize")
    (local $end i64)
    (local.set $end (i64.add (call $now) (i64.const 60000000)))
    (loop $wait
      (br_if $wait (i64.lt_u (call $now) (local.get $end)))))
  (func (export "hookgate_handle") (param i32 i32) (result i32)
    (loop $spin (br $spin))
    (i32.const 0)))
