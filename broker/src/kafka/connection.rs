//! One client connection: read a frame, handle it, write the answer, repeat.
//!
//! Requests on a connection are handled one at a time, in order, exactly as Kafka does
//! (pipelined requests wait in the socket buffer), so responses always leave in request order.
//! Limits and failure handling:
//! - the length prefix is checked against `socket.request.max.bytes` before the frame buffer
//!   is allocated;
//! - a connection with no request for `connections.max.idle.ms` is closed, and so is one whose
//!   response makes no progress into the socket for that long (a client that stopped reading
//!   would otherwise hold its connection task and the response's buffers forever);
//! - a frame the codec refuses closes this connection only (after Kafka's v0 ApiVersions
//!   error reply when that applies); every other connection keeps going.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::codec::{self, CodecError, FrameError, LENGTH_PREFIX_BYTES};
use super::context::BrokerContext;
use super::dispatch::{Dispatched, dispatch};
use super::response_frame::{ResponseFrame, encode_response_frame};

/// Why a connection ended.
#[derive(Debug)]
pub enum Closed {
    ClientClosed,
    Idle,
    /// The client read none of its response for `connections.max.idle.ms`.
    WriteStalled,
    Shutdown,
    BadFrame(FrameError),
    BadRequest(CodecError),
    Io(std::io::Error),
    EncodeFailed(String),
}

pub async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<BrokerContext>,
    shutdown: CancellationToken,
) -> Closed {
    let _ = stream.set_nodelay(true);
    let idle = ctx.settings.connections_max_idle;
    loop {
        let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
        let read_prefix = tokio::select! {
            _ = shutdown.cancelled() => return Closed::Shutdown,
            read = tokio::time::timeout(idle, stream.read_exact(&mut prefix)) => read,
        };
        match read_prefix {
            Err(_) => return Closed::Idle,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Closed::ClientClosed;
            }
            Ok(Err(e)) => return Closed::Io(e),
            Ok(Ok(_)) => {}
        }
        let size = match codec::frame_length(prefix, ctx.settings.max_request_bytes) {
            Ok(size) => size,
            Err(e) => {
                ctx.metrics.bad_request("oversized");
                return Closed::BadFrame(e);
            }
        };
        let mut frame = BytesMut::zeroed(size);
        match tokio::time::timeout(idle, stream.read_exact(&mut frame)).await {
            Err(_) => return Closed::Idle,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                ctx.metrics.bad_request("truncated");
                return Closed::ClientClosed;
            }
            Ok(Err(e)) => return Closed::Io(e),
            Ok(Ok(_)) => {}
        }
        ctx.metrics
            .bytes_in
            .inc_by((size + LENGTH_PREFIX_BYTES) as u64);

        let request = match codec::decode_request(frame.freeze()) {
            Ok(request) => request,
            Err(error) => {
                ctx.metrics.bad_request(match &error {
                    CodecError::Truncated { .. } => "truncated",
                    CodecError::UnknownApiKey { .. } => "unknown_api_key",
                    CodecError::UnsupportedVersion { .. } => "unsupported_version",
                    CodecError::Malformed { .. } => "malformed",
                });
                match error.reply() {
                    Some(reply) => {
                        tracing::info!(%peer, %error, "answering unsupported ApiVersions version");
                        let reply = ResponseFrame::single(reply);
                        if let Err(closed) = write_frame(&mut stream, &reply, idle).await {
                            return closed;
                        }
                        ctx.metrics.bytes_out.inc_by(reply.len() as u64);
                        continue;
                    }
                    None => return Closed::BadRequest(error),
                }
            }
        };

        let response = match dispatch(&ctx, &request, peer).await {
            Dispatched::Respond(response) => response,
            Dispatched::NoResponse => continue,
            Dispatched::Unhandled => {
                return Closed::BadRequest(CodecError::UnsupportedVersion {
                    api_key: request.api_key,
                    api_version: request.api_version(),
                    correlation_id: request.correlation_id(),
                });
            }
        };
        let frame = match encode_response_frame(
            request.correlation_id(),
            request.api_key,
            request.api_version(),
            &response,
        ) {
            Ok(frame) => frame,
            Err(e) => {
                return Closed::EncodeFailed(format!(
                    "{:?} v{}: {e:#}",
                    request.api_key,
                    request.api_version()
                ));
            }
        };
        if let Err(closed) = write_frame(&mut stream, &frame, idle).await {
            return closed;
        }
        ctx.metrics.bytes_out.inc_by(frame.len() as u64);
    }
}

/// Writes every piece of `frame` with vectored writes (one syscall for a header piece and the
/// record set behind it), resuming after partial writes. Each write must make progress within
/// `idle`: a client that stops reading is closed as an idle one. Progress restarts the clock,
/// as any socket activity does for Kafka's idle expiry, so a slow reader of a big response is
/// not cut off.
async fn write_frame(
    stream: &mut TcpStream,
    frame: &ResponseFrame,
    idle: Duration,
) -> Result<(), Closed> {
    let mut slices: Vec<IoSlice<'_>> = frame.pieces().iter().map(|p| IoSlice::new(p)).collect();
    let mut remaining = &mut slices[..];
    while !remaining.is_empty() {
        let written = match tokio::time::timeout(idle, stream.write_vectored(remaining)).await {
            Err(_) => return Err(Closed::WriteStalled),
            Ok(Err(e)) => return Err(Closed::Io(e)),
            Ok(Ok(0)) => return Err(Closed::Io(std::io::ErrorKind::WriteZero.into())),
            Ok(Ok(written)) => written,
        };
        IoSlice::advance_slices(&mut remaining, written);
    }
    Ok(())
}
