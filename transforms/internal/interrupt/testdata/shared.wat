;; A shared memory, refused: memory.atomic.wait on it blocks inside wazero
;; where no check runs.
(module
  (memory (export "memory") 1 1 shared)
  (func (export "wait") (result i32)
    (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1))))
