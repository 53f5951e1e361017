//! Standard output and error of plugins: kept in memory up to a cap, drained into the
//! log after each call. Output past the cap is dropped (and counted), never an error.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    dropped: usize,
}

/// A capped buffer that a plugin's stdout and stderr write to.
#[derive(Clone)]
pub struct CapturedOutput {
    cap: usize,
    buffer: Arc<Mutex<Buffer>>,
}

impl CapturedOutput {
    /// A buffer keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        CapturedOutput {
            cap,
            buffer: Arc::new(Mutex::new(Buffer::default())),
        }
    }

    /// Takes what was written since the last call: the text and the bytes dropped.
    pub fn take(&self) -> Option<(String, usize)> {
        let mut buffer = self.buffer.lock();
        if buffer.bytes.is_empty() && buffer.dropped == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&buffer.bytes).into_owned();
        let dropped = buffer.dropped;
        buffer.bytes.clear();
        buffer.dropped = 0;
        Some((text, dropped))
    }

    fn write(&self, data: &[u8]) {
        let mut buffer = self.buffer.lock();
        let room = self.cap.saturating_sub(buffer.bytes.len());
        let kept = room.min(data.len());
        buffer.bytes.extend_from_slice(&data[..kept]);
        buffer.dropped += data.len() - kept;
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
