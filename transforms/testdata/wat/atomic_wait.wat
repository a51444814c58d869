;; Waits forever on its own shared memory: memory.atomic.wait32 with no
;; timeout blocks inside wazero, where no budget check runs, and no other
;; thread exists to notify it. A plugin must not be able to do this, so a
;; shared memory is refused at Load. (On an unshared memory the wait traps.)
;; Needs --enable-threads.
(module
  (memory (export "memory") 1 1 shared)
  (func (export "hookgate_handle") (param i32 i32) (result i32)
    (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))
    (i32.const 0)))
