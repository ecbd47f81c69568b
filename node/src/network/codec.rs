//! The request-response wire codec: one signed envelope per request and per
//! response, each framed by a 4-byte little-endian length and refused before
//! it is read if it is over the limit for its direction.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};
use protocol::messages::{KEY_CHUNK_BYTES, MAX_INLINE_WITNESS_BYTES, WITNESS_CHUNK_BYTES};

/// The request-response protocol: every request and answer is an envelope.
pub const RPC_PROTOCOL: StreamProtocol = StreamProtocol::new("/crowdprove/1/rpc");

/// Largest request: a proof submission, a job or key or receipt request.
pub const MAX_REQUEST_BYTES: usize = 16 << 10;

/// Largest response: an assignment with the longest inline witness, or a
/// key or witness chunk.
pub const MAX_RESPONSE_BYTES: usize = {
    let chunk = if KEY_CHUNK_BYTES > WITNESS_CHUNK_BYTES {
        KEY_CHUNK_BYTES
    } else {
        WITNESS_CHUNK_BYTES
    };
    let largest = if MAX_INLINE_WITNESS_BYTES > chunk {
        MAX_INLINE_WITNESS_BYTES
    } else {
        chunk
    };
    largest + (16 << 10)
};

/// Bytes that crossed the wire in request-response frames, both directions.
#[derive(Debug, Default)]
pub struct WireCounters {
    /// Bytes read, frame headers included.
    pub read: AtomicU64,
    /// Bytes written, frame headers included.
    pub written: AtomicU64,
}

/// The codec; clones share one set of counters.
#[derive(Debug, Clone, Default)]
pub struct EnvelopeCodec {
    counters: Arc<WireCounters>,
}

impl EnvelopeCodec {
    /// A codec that counts into `counters`.
    pub fn new(counters: Arc<WireCounters>) -> Self {
        Self { counters }
    }

    async fn read_frame<T>(&self, io: &mut T, limit: usize) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let len = u32::from_le_bytes(len) as usize;
        if len > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes is over the {limit}-byte limit"),
            ));
        }
        let mut bytes = vec![0u8; len];
        io.read_exact(&mut bytes).await?;
        self.counters
            .read
            .fetch_add(4 + len as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    async fn write_frame<T>(&self, io: &mut T, bytes: &[u8], limit: usize) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if bytes.len() > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to send a {}-byte frame over the {limit}-byte limit",
                    bytes.len()
                ),
            ));
        }
        io.write_all(&(bytes.len() as u32).to_le_bytes()).await?;
        io.write_all(bytes).await?;
        io.close().await?;
        self.counters
            .written
            .fetch_add(4 + bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

impl request_response::Codec for EnvelopeCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_frame(io, MAX_REQUEST_BYTES).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_frame(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write_frame(io, &request, MAX_REQUEST_BYTES).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write_frame(io, &response, MAX_RESPONSE_BYTES).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use request_response::Codec;

    #[test]
    fn frames_round_trip_and_are_counted() {
        let mut codec = EnvelopeCodec::default();
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_request(&RPC_PROTOCOL, &mut wire, vec![7; 100])).unwrap();
        let mut wire = Cursor::new(wire.into_inner());
        let read = block_on(codec.read_request(&RPC_PROTOCOL, &mut wire)).unwrap();
        assert_eq!(read, vec![7; 100]);
        assert_eq!(codec.counters.written.load(Ordering::Relaxed), 104);
        assert_eq!(codec.counters.read.load(Ordering::Relaxed), 104);
    }

    #[test]
    fn oversized_frames_are_refused_before_reading_the_body() {
        let mut codec = EnvelopeCodec::default();
        let mut frame = ((MAX_REQUEST_BYTES + 1) as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&[0; 16]);
        let err = block_on(codec.read_request(&RPC_PROTOCOL, &mut Cursor::new(frame))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = block_on(codec.write_request(
            &RPC_PROTOCOL,
            &mut Cursor::new(Vec::new()),
            vec![0; MAX_REQUEST_BYTES + 1],
        ))
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn truncated_frames_are_errors() {
        let mut codec = EnvelopeCodec::default();
        let mut frame = 10u32.to_le_bytes().to_vec();
        frame.extend_from_slice(&[1, 2, 3]);
        assert!(block_on(codec.read_request(&RPC_PROTOCOL, &mut Cursor::new(frame))).is_err());
    }
}
