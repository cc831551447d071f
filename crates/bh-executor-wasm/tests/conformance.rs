//! Runs the shared executor conformance suite against the wasm executor, with scenarios written in WAT.
//!
//! Modules travel inline in the engine spec (the executor decodes an unprepared inline EntryModule
//! itself), since the suite builds its own requests. Scenarios that need WASI path or environment
//! look-ups by name are left to the hand-written tests in `wasm.rs` and reported as skipped.

use std::sync::Arc;

use bh_compute::conformance::{run_conformance_suite, ConformanceTarget, Scenario};
use bh_compute::Executor;
use bh_executor_wasm::{WasmConfig, WasmExecutor};
use bh_models::SpecConfig;
use serde_json::json;

/// Text as a WAT string literal, every byte escaped.
fn wat_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// A module writing `stdout` then `stderr`, then exiting with `code` (or spinning when `spin`).
fn writer_module(stdout: &[u8], stderr: &[u8], code: i64, spin: bool) -> String {
    let out_at = 1024;
    let err_at = out_at + stdout.len();
    let pages = (err_at + stderr.len()) / 65536 + 1;
    let tail = if spin {
        "(loop $forever (br $forever))".to_string()
    } else {
        format!("(call $proc_exit (i32.const {code}))")
    };
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") {pages})
  (data (i32.const {out_at}) "{out}")
  (data (i32.const {err_at}) "{err}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const {out_at}))
    (i32.store (i32.const 4) (i32.const {out_len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const {err_at}))
    (i32.store (i32.const 4) (i32.const {err_len}))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    {tail}))"#,
        out = wat_string(stdout),
        err = wat_string(stderr),
        out_len = stdout.len(),
        err_len = stderr.len(),
    )
}

struct WasmTarget {
    executor: Arc<WasmExecutor>,
}

impl ConformanceTarget for WasmTarget {
    fn executor(&self) -> Arc<dyn Executor> {
        self.executor.clone()
    }

    fn engine_spec(&self, scenario: &Scenario) -> Option<SpecConfig> {
        let wat = match scenario {
            Scenario::PrintStdout { text } => {
                writer_module(format!("{text}\n").as_bytes(), b"", 0, false)
            }
            Scenario::ExitWithCode { code, stderr } => {
                writer_module(b"", format!("{stderr}\n").as_bytes(), *code, false)
            }
            Scenario::RunForever { marker } => {
                writer_module(format!("{marker}\n").as_bytes(), b"", 0, true)
            }
            Scenario::ExceedMemory => r#"(module (memory (export "memory") 1)
                 (func (export "_start") (drop (memory.grow (i32.const 2000)))))"#
                .to_string(),
            Scenario::ManyLines { count } => {
                let out: String = (1..=*count).map(|i| format!("out-{i}\n")).collect();
                let err: String = (1..=*count).map(|i| format!("err-{i}\n")).collect();
                writer_module(out.as_bytes(), err.as_bytes(), 0, false)
            }
            _ => return None,
        };
        let url = format!("data:,{}", percent_encode(wat.as_bytes()));
        Some(SpecConfig::new("wasm").with_param(
            "EntryModule",
            json!({"Source": {"Type": "inline", "Params": {"URL": url}}, "Target": "/app/main.wasm"}),
        ))
    }
}

fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (*b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn wasm_executor_passes_the_conformance_suite() {
    let target = WasmTarget {
        executor: Arc::new(WasmExecutor::new(WasmConfig::default()).unwrap()),
    };
    let report = run_conformance_suite(&target).await;
    report.assert_all_passed();
}
