;; Compiled with --debug-names: names must follow the renumbered functions.
(module
  (import "env" "log" (func $imported_log (param i32)))
  (func $first (export "first") (param $x i32) (result i32) (local $tmp i32)
    (local.set $tmp (i32.add (local.get $x) (i32.const 1)))
    (call $imported_log (local.get $tmp))
    (call $second (local.get $tmp)))
  (func $second (param $y i32) (result i32)
    (loop $l (br_if $l (i32.eqz (local.get $y))))
    (i32.mul (local.get $y) (i32.const 2)))
  (func $third (export "third") (result i32) (call $first (i32.const 20))))
