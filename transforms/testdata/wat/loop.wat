;; hookgate_handle never returns: a bare `loop br 0`, no call in it.
(module
  (memory (export "memory") 1)
  (func (export "hookgate_handle") (param i32 i32) (result i32)
    (loop $spin (br $spin))
    (i32.const 0)))
