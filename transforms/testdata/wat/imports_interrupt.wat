;; Imports from the module the instrumentation adds: Load must refuse it
;; (it could otherwise refill its own budget).
(module
  (import "hookgate_interrupt" "yield" (func $yield (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "hookgate_handle") (param i32 i32) (result i32) (i32.const 0)))
