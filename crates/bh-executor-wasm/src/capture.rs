//! A WASI stdout/stderr stream that keeps everything written in memory and forwards it to a LogSink as it comes.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bh_compute::{LogSink, LogStream};
use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// One captured output stream; clones share the same buffer.
#[derive(Clone)]
pub struct CapturedOutput {
    stream: LogStream,
    buffer: Arc<Mutex<Vec<u8>>>,
    sink: Arc<dyn LogSink>,
}

impl CapturedOutput {
    /// A new empty capture of `stream`, forwarding to `sink`.
    pub fn new(stream: LogStream, sink: Arc<dyn LogSink>) -> Self {
        Self {
            stream,
            buffer: Arc::new(Mutex::new(Vec::new())),
            sink,
        }
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        match self.buffer.lock() {
            Ok(buffer) => buffer.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn append(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match self.buffer.lock() {
            Ok(mut buffer) => buffer.extend_from_slice(data),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(data),
        }
        self.sink.write(self.stream, data);
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Memory is the only limit; the store's memory limit bounds what one write can hand over.
        Ok(1024 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
