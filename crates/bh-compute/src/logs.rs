//! In-memory log buffers: the tail of each execution's output, kept for live log streaming.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::executor::{LogSink, LogStream};

/// One chunk of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub stream: LogStream,
    pub data: Vec<u8>,
}

/// The last `capacity` bytes of an execution's output, plus a live feed of new chunks.
pub struct LogBuffer {
    capacity: usize,
    inner: Mutex<VecDeque<LogChunk>>,
    size: Mutex<usize>,
    live: broadcast::Sender<LogChunk>,
}

impl LogBuffer {
    /// An empty buffer keeping at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(256);
        Self {
            capacity,
            inner: Mutex::new(VecDeque::new()),
            size: Mutex::new(0),
            live,
        }
    }

    /// The chunks kept so far, oldest first.
    pub fn snapshot(&self) -> Vec<LogChunk> {
        match self.inner.lock() {
            Ok(chunks) => chunks.iter().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().iter().cloned().collect(),
        }
    }

    /// New chunks as they are written (subscribe, then read `snapshot` to avoid gaps).
    pub fn subscribe(&self) -> broadcast::Receiver<LogChunk> {
        self.live.subscribe()
    }
}

impl LogSink for LogBuffer {
    fn write(&self, stream: LogStream, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let chunk = LogChunk {
            stream,
            data: data.to_vec(),
        };
        let _ = self.live.send(chunk.clone());
        let (Ok(mut chunks), Ok(mut size)) = (self.inner.lock(), self.size.lock()) else {
            return;
        };
        *size += chunk.data.len();
        chunks.push_back(chunk);
        while *size > self.capacity && chunks.len() > 1 {
            if let Some(old) = chunks.pop_front() {
                *size -= old.data.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail() {
        let buffer = LogBuffer::new(5);
        buffer.write(LogStream::Stdout, b"abc");
        buffer.write(LogStream::Stderr, b"def");
        let chunks = buffer.snapshot();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].data, b"def");
        assert_eq!(chunks[0].stream, LogStream::Stderr);
    }
}
