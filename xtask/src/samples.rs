//! Sample WebAssembly modules, written in WAT and compiled on the fly (no wasm toolchain needed).

/// A WASI module that prints `text` to stdout and exits 0.
pub fn hello_wasm(text: &str) -> anyhow::Result<Vec<u8>> {
    let escaped: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
    let len = text.len();
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{escaped}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))))"#
    );
    Ok(wat::parse_str(&wat)?)
}

/// A WASI module that prints `text` to stderr and exits with `code`.
pub fn failing_wasm(text: &str, code: i32) -> anyhow::Result<Vec<u8>> {
    let escaped: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
    let len = text.len();
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{escaped}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 32)))
    (call $proc_exit (i32.const {code}))))"#
    );
    Ok(wat::parse_str(&wat)?)
}
