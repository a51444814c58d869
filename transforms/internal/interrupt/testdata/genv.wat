;; Globals for the other testdata modules to import (host modules cannot
;; export globals).
(module
  (global (export "g42") i32 (i32.const 42))
  (global (export "gmut") (mut i32) (i32.const 1000)))
