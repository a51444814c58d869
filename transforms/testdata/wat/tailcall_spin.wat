;; A runaway without a loop instruction: a function that tail-calls itself
;; forever. The stack never grows, so only a check at function entry stops
;; it. Needs --enable-tail-call.
(module
  (memory (export "memory") 1)
  (func $again (param i32) (result i32)
    (return_call $again (i32.add (local.get 0) (i32.const 1))))
  (func (export "hookgate_handle") (param i32 i32) (result i32)
    (drop (call $again (i32.const 0)))
    (i32.const 0)))
