//! End-to-end tests of the wasm executor with modules written in WAT at test time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bh_compute::{
    ExecutionRequest, Executor, ExecutorError, LogSink, LogStream, Mount, NullLogSink,
};
use bh_executor_wasm::{WasmConfig, WasmExecutor};
use bh_models::{NetworkConfig, Resources, SpecConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const FD_WRITE: &str = r#"(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))"#;
const PROC_EXIT: &str =
    r#"(import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))"#;

/// A test folder with the module file, an outputs folder and a scratch folder.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    fn engine(&self, extra: serde_json::Value) -> SpecConfig {
        let mut engine = SpecConfig::new("wasm").with_param(
            "EntryModule",
            json!({"Source": {"Type": "inline", "Params": {"URL": "data:,"}}, "Target": "/app/main.wasm"}),
        );
        if let serde_json::Value::Object(map) = extra {
            for (k, v) in map {
                engine.params.insert(k, v);
            }
        }
        engine
    }

    /// A request running `wat` as the entry module, with `/outputs` mounted.
    fn request(&self, wat: &str, extra: serde_json::Value) -> ExecutionRequest {
        let module = self.write("modules/main.wat", wat);
        let outputs = self.path("outputs");
        std::fs::create_dir_all(&outputs).unwrap();
        ExecutionRequest {
            execution_id: "e-test".into(),
            job_id: "j-test".into(),
            engine: self.engine(extra),
            env: BTreeMap::new(),
            inputs: vec![Mount {
                host_path: module,
                target: "/app/main.wasm".into(),
                read_only: true,
            }],
            outputs: vec![Mount {
                host_path: outputs,
                target: "/outputs".into(),
                read_only: false,
            }],
            resources: Resources::default(),
            network: NetworkConfig::default(),
            timeout: Some(Duration::from_secs(30)),
            scratch_dir: self.path("scratch"),
        }
    }
}

fn executor() -> WasmExecutor {
    WasmExecutor::new(WasmConfig::default()).unwrap()
}

/// WAT writing `text` (placed at memory offset 100) to `fd`.
fn write_text(fd: u32, text: &str) -> String {
    format!(
        r#"(i32.store (i32.const 0) (i32.const 100))
           (i32.store (i32.const 4) (i32.const {len}))
           (drop (call $fd_write (i32.const {fd}) (i32.const 0) (i32.const 1) (i32.const 8)))"#,
        len = text.len()
    )
}

fn hello_wat() -> String {
    format!(
        r#"(module {FD_WRITE}
             (memory (export "memory") 1)
             (data (i32.const 100) "hello\n")
             (func (export "_start") {}))"#,
        write_text(1, "hello\n")
    )
}

/// A module that prints "started" and then spins forever.
fn spinning_wat() -> String {
    format!(
        r#"(module {FD_WRITE}
             (memory (export "memory") 1)
             (data (i32.const 100) "started")
             (func (export "_start") {} (loop $forever (br $forever))))"#,
        write_text(1, "started")
    )
}

/// Records what the module wrote, per stream.
#[derive(Default)]
struct RecordingSink {
    chunks: Mutex<Vec<(LogStream, Vec<u8>)>>,
}

impl LogSink for RecordingSink {
    fn write(&self, stream: LogStream, data: &[u8]) {
        self.chunks.lock().unwrap().push((stream, data.to_vec()));
    }
}

/// Fires a cancellation token as soon as the module writes anything.
struct CancelOnOutput(CancellationToken);

impl LogSink for CancelOnOutput {
    fn write(&self, _stream: LogStream, _data: &[u8]) {
        self.0.cancel();
    }
}

#[tokio::test]
async fn hello_writes_stdout_and_feeds_the_log_sink() {
    let fixture = Fixture::new();
    let sink = Arc::new(RecordingSink::default());
    let output = executor()
        .run(
            fixture.request(&hello_wat(), json!({})),
            sink.clone(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(output.stdout, b"hello\n");
    assert_eq!(output.exit_code, 0);
    assert!(output.stderr.is_empty());
    let chunks = sink.chunks.lock().unwrap();
    assert_eq!(
        chunks.as_slice(),
        &[(LogStream::Stdout, b"hello\n".to_vec())]
    );
    assert!(
        !fixture.path("scratch").exists(),
        "scratch folder is removed"
    );
}

#[tokio::test]
async fn exit_code_and_stderr() {
    let fixture = Fixture::new();
    let wat = format!(
        r#"(module {FD_WRITE} {PROC_EXIT}
             (memory (export "memory") 1)
             (data (i32.const 100) "oops")
             (func (export "_start") {} (call $proc_exit (i32.const 3))))"#,
        write_text(2, "oops")
    );
    let output = executor()
        .run(
            fixture.request(&wat, json!({})),
            Arc::new(NullLogSink),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(output.exit_code, 3);
    assert_eq!(output.stderr, b"oops");
    assert!(output.stdout.is_empty());
}

#[tokio::test]
async fn args_and_environment_are_passed() {
    let fixture = Fixture::new();
    // Writes the NUL-separated argv buffer, then the NUL-separated environment buffer.
    let wat = format!(
        r#"(module {FD_WRITE}
             (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
             (memory (export "memory") 1)
             (func (export "_start")
               (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
               (drop (call $args_get (i32.const 1000) (i32.const 2000)))
               (i32.store (i32.const 16) (i32.const 2000))
               (i32.store (i32.const 20) (i32.load (i32.const 4)))
               (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
               (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
               (drop (call $environ_get (i32.const 1000) (i32.const 3000)))
               (i32.store (i32.const 16) (i32.const 3000))
               (i32.store (i32.const 20) (i32.load (i32.const 4)))
               (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)))))"#
    );
    let mut request = fixture.request(
        &wat,
        json!({"Parameters": ["a", "b c"], "EnvironmentVariables": {"FOO": "bar"}}),
    );
    request.env.insert("TASK".into(), "1".into());
    let output = executor()
        .run(request, Arc::new(NullLogSink), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(output.stdout, b"main.wasm\0a\0b c\0");
    let env = String::from_utf8(output.stderr).unwrap();
    let mut vars: Vec<&str> = env.split('\0').filter(|s| !s.is_empty()).collect();
    vars.sort();
    assert_eq!(vars, vec!["FOO=bar", "TASK=1"]);
}

#[tokio::test]
async fn reads_an_input_and_writes_outputs() {
    let fixture = Fixture::new();
    let data_dir = fixture.path("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join("in.txt"), "payload").unwrap();
    // Preopens: fd 3 = /app (the module's folder), fd 4 = /data, fd 5 = /outputs.
    let wat = format!(
        r#"(module {FD_WRITE}
             (import "wasi_snapshot_preview1" "path_open"
               (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 200) "in.txt")
             (data (i32.const 300) "out.txt")
             (func (export "_start")
               ;; open /data/in.txt for reading, fd at 40
               (if (call $path_open (i32.const 4) (i32.const 0) (i32.const 200) (i32.const 6)
                     (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 40))
                 (then unreachable))
               ;; read up to 64 bytes into 1000, count at 48
               (i32.store (i32.const 16) (i32.const 1000))
               (i32.store (i32.const 20) (i32.const 64))
               (drop (call $fd_read (i32.load (i32.const 40)) (i32.const 16) (i32.const 1) (i32.const 48)))
               ;; create /outputs/out.txt, fd at 44
               (if (call $path_open (i32.const 5) (i32.const 0) (i32.const 300) (i32.const 7)
                     (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 44))
                 (then unreachable))
               (i32.store (i32.const 20) (i32.load (i32.const 48)))
               (drop (call $fd_write (i32.load (i32.const 44)) (i32.const 16) (i32.const 1) (i32.const 24)))))"#
    );
    let mut request = fixture.request(&wat, json!({}));
    request.inputs.push(Mount {
        host_path: data_dir,
        target: "/data".into(),
        read_only: true,
    });
    let output = executor()
        .run(request, Arc::new(NullLogSink), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        output.exit_code,
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = std::fs::read_to_string(fixture.path("outputs/out.txt")).unwrap();
    assert_eq!(written, "payload");
}

#[tokio::test]
async fn infinite_loop_times_out_with_partial_output() {
    let fixture = Fixture::new();
    let mut request = fixture.request(&spinning_wat(), json!({}));
    request.timeout = Some(Duration::from_millis(200));
    let err = executor()
        .run(request, Arc::new(NullLogSink), CancellationToken::new())
        .await
        .unwrap_err();
    match err {
        ExecutorError::Timeout { timeout, partial } => {
            assert_eq!(timeout, Duration::from_millis(200));
            assert_eq!(partial.stdout, b"started");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn cancel_stops_a_running_module() {
    let fixture = Fixture::new();
    let cancel = CancellationToken::new();
    let started = std::time::Instant::now();
    let err = executor()
        .run(
            fixture.request(&spinning_wat(), json!({})),
            Arc::new(CancelOnOutput(cancel.clone())),
            cancel,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ExecutorError::Cancelled { partial } if partial.stdout == b"started"),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn memory_growth_beyond_the_limit_is_a_resource_limit() {
    let fixture = Fixture::new();
    let wat = r#"(module (memory (export "memory") 1)
                   (func (export "_start") (drop (memory.grow (i32.const 1000)))))"#;
    let mut request = fixture.request(wat, json!({}));
    request.resources.memory = 10 * 1024 * 1024;
    let err = executor()
        .run(request, Arc::new(NullLogSink), CancellationToken::new())
        .await
        .unwrap_err();
    match err {
        ExecutorError::ResourceLimit { message, .. } => {
            assert_eq!(message, "memory limit exceeded (10MB)")
        }
        other => panic!("expected a resource limit, got {other:?}"),
    }
}

#[tokio::test]
async fn custom_entrypoint() {
    let fixture = Fixture::new();
    let wat = format!(
        r#"(module {FD_WRITE}
             (memory (export "memory") 1)
             (data (i32.const 100) "custom")
             (func (export "_start") unreachable)
             (func (export "run") {}))"#,
        write_text(1, "custom")
    );
    let output = executor()
        .run(
            fixture.request(&wat, json!({"Entrypoint": "run"})),
            Arc::new(NullLogSink),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(output.stdout, b"custom");

    let err = executor()
        .run(
            fixture.request(&wat, json!({"Entrypoint": "missing"})),
            Arc::new(NullLogSink),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[tokio::test]
async fn import_module_exports_are_linked_by_module_name() {
    let fixture = Fixture::new();
    let library = fixture.write(
        "modules/lib.wat",
        r#"(module $mathlib (func (export "answer") (result i32) (i32.const 42)))"#,
    );
    let wat = format!(
        r#"(module {PROC_EXIT}
             (import "mathlib" "answer" (func $answer (result i32)))
             (memory (export "memory") 1)
             (func (export "_start") (call $proc_exit (call $answer))))"#
    );
    let mut request = fixture.request(
        &wat,
        json!({"ImportModules": [
            {"Source": {"Type": "inline", "Params": {"URL": "data:,"}}, "Target": "/lib/mathlib.wasm"}
        ]}),
    );
    request.inputs.push(Mount {
        host_path: library,
        target: "/lib/mathlib.wasm".into(),
        read_only: true,
    });
    let executor = executor();
    let output = executor
        .run(request, Arc::new(NullLogSink), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(output.exit_code, 42);
    assert_eq!(executor.cached_modules(), 2);
}

#[tokio::test]
async fn compiled_modules_are_reused() {
    let fixture = Fixture::new();
    let executor = executor();
    for _ in 0..2 {
        let output = executor
            .run(
                fixture.request(&hello_wat(), json!({})),
                Arc::new(NullLogSink),
                CancellationToken::new(),
            )
            .await
            .unwrap();
        assert_eq!(output.stdout, b"hello\n");
    }
    assert_eq!(executor.cached_modules(), 1);
}

#[test]
fn validate_names_the_bad_parameter() {
    let executor = executor();
    let err = executor.validate(&SpecConfig::new("wasm")).unwrap_err();
    assert!(err.to_string().contains("EntryModule"), "{err}");
    let fixture = Fixture::new();
    assert!(executor.validate(&fixture.engine(json!({}))).is_ok());
    assert_eq!(executor.engine_type(), "wasm");
}

#[tokio::test]
async fn missing_module_mount_is_an_engine_error() {
    let fixture = Fixture::new();
    let mut request = fixture.request(
        &hello_wat(),
        json!({"EntryModule": {"Source": {"Type": "urlDownload", "Params": {"URL": "http://x/m.wasm"}}, "Target": "/app/main.wasm"}}),
    );
    request.inputs.clear();
    let err = executor()
        .run(request, Arc::new(NullLogSink), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/app/main.wasm"), "{err}");
}

#[tokio::test]
async fn traps_and_link_errors_are_engine_errors() {
    let fixture = Fixture::new();
    let err = executor()
        .run(
            fixture.request(
                r#"(module (func (export "_start") unreachable))"#,
                json!({}),
            ),
            Arc::new(NullLogSink),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ExecutorError::Engine(
            "the module stopped with a wasm trap: wasm `unreachable` instruction executed".into()
        )
    );
    let err = executor()
        .run(
            fixture.request(
                r#"(module (import "nope" "f" (func)) (func (export "_start")))"#,
                json!({}),
            ),
            Arc::new(NullLogSink),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope::f"), "{err}");
}
