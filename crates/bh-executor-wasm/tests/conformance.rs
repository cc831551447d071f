//! Runs the shared executor conformance suite against the wasm executor, with scenarios written in WAT.
//!
//! Modules travel inline in the engine spec (the executor decodes an unprepared inline EntryModule
//! itself), since the suite builds its own requests. Scenarios needing WASI look-ups (environment,
//! argv, preopened folders by name) share one prelude of small WAT helper functions
//! ([`WASI_HELPERS`]); only the working-directory check is skipped, because WASI preview 1 has no
//! working directory (see [`WasmTarget::engine_spec`]).

use std::sync::Arc;

use bh_compute::conformance::{
    run_check, run_conformance_suite, CheckOutcome, ConformanceTarget, Scenario,
};
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

// Memory layout of the modules built by `wasi_command` (the first page is the helpers' scratch space):
//   0..8     iovec used by `$print` and reads/writes     8..12   bytes read/written
//   12..16   fd returned by path_open                    16..24  prestat of `$find_preopen`
//   24..32   counts from args/environ_sizes_get          64..    preopen name buffer (NAME_BUFFER_LEN)
//   POINTERS argv/environ pointer array                  STRINGS argv/environ strings, file contents
//   DATA_AT  the scenario's constants (second page on)
const NAME_BUFFER_LEN: usize = 4096;
const POINTERS: usize = 4160;
const STRINGS: usize = 8192;
const STRINGS_LEN: usize = 65536 - STRINGS;
const DATA_AT: usize = 65536;

/// WASI p1 `rights::fd_read`.
const RIGHT_FD_READ: u64 = 1 << 1;
/// WASI p1 `rights::fd_write`.
const RIGHT_FD_WRITE: u64 = 1 << 6;
/// WASI p1 `oflags::creat | oflags::trunc`.
const OFLAGS_CREATE_TRUNCATE: u32 = 1 | 8;

/// The WASI imports and helper functions every scenario module starts with:
/// `$print (ptr len)` writes a buffer to stdout, `$strlen (ptr) -> len` measures a NUL-terminated
/// string, `$bytes_eq (a b len) -> bool`, and `$find_preopen (name len) -> fd or -1` finds the
/// preopened folder whose guest path is `name`, ignoring trailing slashes on either side.
const WASI_HELPERS: &str = r#"
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $strlen (param $ptr i32) (result i32) (local $len i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $ptr) (local.get $len)))))
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (br $next)))
    (local.get $len))

  (func $bytes_eq (param $a i32) (param $b i32) (param $len i32) (result i32) (local $i i32)
    (block $differ (loop $next
      (if (i32.ge_u (local.get $i) (local.get $len)) (then (return (i32.const 1))))
      (br_if $differ (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                             (i32.load8_u (i32.add (local.get $b) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const 0))

  (func $trim_slashes (param $ptr i32) (param $len i32) (result i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $len)))
      (br_if $done (i32.ne (i32.load8_u (i32.sub (i32.add (local.get $ptr) (local.get $len)) (i32.const 1)))
                           (i32.const 47)))
      (local.set $len (i32.sub (local.get $len) (i32.const 1)))
      (br $next)))
    (local.get $len))

  (func $find_preopen (param $name i32) (param $name_len i32) (result i32) (local $fd i32) (local $len i32)
    (local.set $name_len (call $trim_slashes (local.get $name) (local.get $name_len)))
    (local.set $fd (i32.const 3))
    (block $none (loop $next
      (br_if $none (i32.ge_u (local.get $fd) (i32.const 64)))
      (if (i32.eqz (call $fd_prestat_get (local.get $fd) (i32.const 16)))
        (then
          (local.set $len (i32.load (i32.const 20)))
          ;; tag 0 is a directory; longer names than the buffer cannot be ours
          (if (i32.and (i32.eqz (i32.load8_u (i32.const 16)))
                       (i32.le_u (local.get $len) (i32.const NAME_BUFFER_LEN)))
            (then
              (if (i32.eqz (call $fd_prestat_dir_name (local.get $fd) (i32.const 64) (local.get $len)))
                (then
                  (local.set $len (call $trim_slashes (i32.const 64) (local.get $len)))
                  (if (i32.and (i32.eq (local.get $len) (local.get $name_len))
                               (call $bytes_eq (i32.const 64) (local.get $name) (local.get $len)))
                    (then (return (local.get $fd))))))))))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br $next)))
    (i32.const -1))
"#;

/// Constant byte strings placed from [`DATA_AT`] on, each addressed by its (offset, length).
#[derive(Default)]
struct DataArea {
    bytes: Vec<u8>,
}

impl DataArea {
    fn add(&mut self, bytes: &[u8]) -> (usize, usize) {
        let at = DATA_AT + self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        (at, bytes.len())
    }
}

/// A WASI command module: the helpers, `data`, and `_start` running `body` then exiting 0.
fn wasi_command(data: &DataArea, body: &str) -> String {
    let pages = (DATA_AT + data.bytes.len()) / 65536 + 1;
    format!(
        r#"(module
  {helpers}
  (memory (export "memory") {pages})
  (data (i32.const {DATA_AT}) "{data}")
  (func (export "_start") (local $i i32) (local $fd i32) (local $ptr i32)
    {body}
    (call $proc_exit (i32.const 0))))"#,
        helpers = WASI_HELPERS.replace("NAME_BUFFER_LEN", &NAME_BUFFER_LEN.to_string()),
        data = wat_string(&data.bytes),
    )
}

/// Exits with `code` unless the WASI call `call` (an expression yielding an errno) succeeded.
fn or_exit(call: &str, code: u32) -> String {
    format!("(if (i32.ne {call} (i32.const 0)) (then (call $proc_exit (i32.const {code}))))")
}

/// Prints the value of environment variable `name` and a newline; exits 1 when it is not set.
fn echo_env_module(name: &str) -> String {
    let mut data = DataArea::default();
    let (prefix, prefix_len) = data.add(format!("{name}=").as_bytes());
    let (newline, _) = data.add(b"\n");
    let sizes = or_exit("(call $environ_sizes_get (i32.const 24) (i32.const 28))", 2);
    let get = or_exit(
        &format!("(call $environ_get (i32.const {POINTERS}) (i32.const {STRINGS}))"),
        2,
    );
    let body = format!(
        r#"{sizes}
    (if (i32.gt_u (i32.load (i32.const 28)) (i32.const {STRINGS_LEN})) (then (call $proc_exit (i32.const 3))))
    {get}
    (block $missing (loop $next
      (br_if $missing (i32.ge_u (local.get $i) (i32.load (i32.const 24))))
      (local.set $ptr (i32.load (i32.add (i32.const {POINTERS}) (i32.mul (local.get $i) (i32.const 4)))))
      (if (call $bytes_eq (local.get $ptr) (i32.const {prefix}) (i32.const {prefix_len}))
        (then
          (local.set $ptr (i32.add (local.get $ptr) (i32.const {prefix_len})))
          (call $print (local.get $ptr) (call $strlen (local.get $ptr)))
          (call $print (i32.const {newline}) (i32.const 1))
          (call $proc_exit (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $proc_exit (i32.const 1))"#
    );
    wasi_command(&data, &body)
}

/// Prints argv[1..] joined by single spaces, and a newline.
fn echo_args_module() -> String {
    let mut data = DataArea::default();
    let (space, _) = data.add(b" ");
    let (newline, _) = data.add(b"\n");
    let sizes = or_exit("(call $args_sizes_get (i32.const 24) (i32.const 28))", 2);
    let get = or_exit(
        &format!("(call $args_get (i32.const {POINTERS}) (i32.const {STRINGS}))"),
        2,
    );
    let body = format!(
        r#"{sizes}
    (if (i32.gt_u (i32.load (i32.const 28)) (i32.const {STRINGS_LEN})) (then (call $proc_exit (i32.const 3))))
    {get}
    (local.set $i (i32.const 1))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 24))))
      (if (i32.gt_u (local.get $i) (i32.const 1)) (then (call $print (i32.const {space}) (i32.const 1))))
      (local.set $ptr (i32.load (i32.add (i32.const {POINTERS}) (i32.mul (local.get $i) (i32.const 4)))))
      (call $print (local.get $ptr) (call $strlen (local.get $ptr)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $print (i32.const {newline}) (i32.const 1))"#
    );
    wasi_command(&data, &body)
}

/// Sets `$fd` to the preopen named `target`; exits 10 when there is none.
fn find_preopen_into_fd(data: &mut DataArea, target: &str) -> String {
    let (name, name_len) = data.add(target.as_bytes());
    format!(
        "(local.set $fd (call $find_preopen (i32.const {name}) (i32.const {name_len})))
    (if (i32.lt_s (local.get $fd) (i32.const 0)) (then (call $proc_exit (i32.const 10))))"
    )
}

/// A `path_open` call relative to `$fd` yielding its errno; the opened fd lands at address 12.
fn path_open(path: (usize, usize), oflags: u32, rights: u64) -> String {
    let (at, len) = path;
    format!(
        "(call $path_open (local.get $fd) (i32.const 0) (i32.const {at}) (i32.const {len}) \
         (i32.const {oflags}) (i64.const {rights}) (i64.const 0) (i32.const 0) (i32.const 12))"
    )
}

/// Prints `<target>/<file_name>` and a newline, then tries to create `<target>/written-by-workload`
/// and prints `WRITE-FAILED` or `WRITE-SUCCEEDED`.
fn read_input_module(target: &str, file_name: &str) -> String {
    let mut data = DataArea::default();
    let find = find_preopen_into_fd(&mut data, target);
    let file = data.add(file_name.as_bytes());
    let probe = data.add(b"written-by-workload");
    let (newline, _) = data.add(b"\n");
    let (failed, failed_len) = data.add(b"WRITE-FAILED\n");
    let (succeeded, succeeded_len) = data.add(b"WRITE-SUCCEEDED\n");
    let open_input = or_exit(&path_open(file, 0, RIGHT_FD_READ), 11);
    let open_probe = path_open(probe, OFLAGS_CREATE_TRUNCATE, RIGHT_FD_WRITE);
    let body = format!(
        r#"{find}
    {open_input}
    (block $eof (loop $next
      (i32.store (i32.const 0) (i32.const {STRINGS}))
      (i32.store (i32.const 4) (i32.const {STRINGS_LEN}))
      (if (i32.ne (call $fd_read (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 0))
        (then (call $proc_exit (i32.const 12))))
      (br_if $eof (i32.eqz (i32.load (i32.const 8))))
      (call $print (i32.const {STRINGS}) (i32.load (i32.const 8)))
      (br $next)))
    (call $print (i32.const {newline}) (i32.const 1))
    (if (i32.eqz {open_probe})
      (then (call $print (i32.const {succeeded}) (i32.const {succeeded_len})))
      (else (call $print (i32.const {failed}) (i32.const {failed_len}))))"#
    );
    wasi_command(&data, &body)
}

/// Writes `content` to `<target>/<file_name>`, created or truncated.
fn write_output_module(target: &str, file_name: &str, content: &str) -> String {
    let mut data = DataArea::default();
    let find = find_preopen_into_fd(&mut data, target);
    let file = data.add(file_name.as_bytes());
    let (content_at, content_len) = data.add(content.as_bytes());
    let open_output = or_exit(&path_open(file, OFLAGS_CREATE_TRUNCATE, RIGHT_FD_WRITE), 11);
    let write = or_exit(
        "(call $fd_write (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i32.const 8))",
        12,
    );
    let body = format!(
        r#"{find}
    {open_output}
    (i32.store (i32.const 0) (i32.const {content_at}))
    (i32.store (i32.const 4) (i32.const {content_len}))
    {write}
    (if (i32.ne (i32.load (i32.const 8)) (i32.const {content_len})) (then (call $proc_exit (i32.const 13))))
    (drop (call $fd_close (i32.load (i32.const 12))))"#
    );
    wasi_command(&data, &body)
}

struct WasmTarget {
    executor: Arc<WasmExecutor>,
}

impl ConformanceTarget for WasmTarget {
    fn executor(&self) -> Arc<dyn Executor> {
        self.executor.clone()
    }

    fn engine_spec(&self, scenario: &Scenario) -> Option<SpecConfig> {
        let mut parameters: Vec<String> = Vec::new();
        let wat = match scenario {
            Scenario::PrintStdout { text } => {
                writer_module(format!("{text}\n").as_bytes(), b"", 0, false)
            }
            Scenario::ExitWithCode { code, stderr } => {
                writer_module(b"", format!("{stderr}\n").as_bytes(), *code, false)
            }
            Scenario::EchoEnv { name, .. } => echo_env_module(name),
            Scenario::EchoArgs { args } => {
                // The wasm engine passes its `Parameters` as argv after the program name.
                parameters = args.clone();
                echo_args_module()
            }
            // WASI preview 1 has no working directory (paths resolve against preopened folders only)
            // and the wasm engine has no WorkingDirectory parameter, so this cannot be expressed.
            Scenario::PrintWorkdir { .. } => return None,
            Scenario::ReadInput {
                target, file_name, ..
            } => read_input_module(target, file_name),
            Scenario::WriteOutput {
                target,
                file_name,
                content,
            } => write_output_module(target, file_name, content),
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
        };
        let url = format!("data:,{}", percent_encode(wat.as_bytes()));
        let spec = SpecConfig::new("wasm").with_param(
            "EntryModule",
            json!({"Source": {"Type": "inline", "Params": {"URL": url}}, "Target": "/app/main.wasm"}),
        );
        Some(if parameters.is_empty() {
            spec
        } else {
            spec.with_param("Parameters", json!(parameters))
        })
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
    println!("{report}");
    report.assert_all_passed();
    assert_eq!(
        report.skipped(),
        vec!["working_directory"],
        "only the working directory may be skipped:\n{report}"
    );
}

/// The wasm target, with a trailing slash added to the mount target the workload looks its preopen up by.
struct TrailingSlashTarget(WasmTarget);

impl ConformanceTarget for TrailingSlashTarget {
    fn executor(&self) -> Arc<dyn Executor> {
        self.0.executor()
    }

    fn engine_spec(&self, scenario: &Scenario) -> Option<SpecConfig> {
        let mut scenario = scenario.clone();
        if let Scenario::ReadInput { target, .. } | Scenario::WriteOutput { target, .. } =
            &mut scenario
        {
            target.push('/');
        }
        self.0.engine_spec(&scenario)
    }
}

#[tokio::test]
async fn preopens_are_found_whether_or_not_the_name_ends_in_a_slash() {
    let target = TrailingSlashTarget(WasmTarget {
        executor: Arc::new(WasmExecutor::new(WasmConfig::default()).unwrap()),
    });
    for check in ["input_read_only", "output_collected"] {
        assert_eq!(
            run_check(&target, check).await,
            CheckOutcome::Passed,
            "{check}"
        );
    }
}
