//! The bulk data loops both ends share: write a stream until a deadline, count a stream's
//! bytes into interval slices.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::tcp::ByteCounter;

/// Size of each chunk written.
const CHUNK: usize = 64 * 1024;

/// Writes zero chunks on `send` until `until`, then resets the stream. Returns the bytes
/// handed to quinn.
///
/// The stream is reset rather than finished: quinn takes up to its send window (10 MB)
/// ahead of the path, seconds of data on a slow one, and a test asked to send for `until`
/// must not go on sending that backlog after it. The receiver counts what arrived up to the
/// reset.
pub(super) async fn send_until(
    send: &mut quinn::SendStream,
    until: Instant,
) -> Result<u64, quinn::WriteError> {
    let chunk = Bytes::from(vec![0_u8; CHUNK]);
    let mut written = 0_u64;
    while Instant::now() < until {
        match tokio::time::timeout_at(until, send.write_chunk(chunk.clone())).await {
            Ok(r) => r?,
            Err(_) => break,
        }
        written += CHUNK as u64;
    }
    let _ = send.reset(0_u32.into());
    Ok(written)
}

/// Reads `recv` to its end (or the sender's reset) or until `until`, counting bytes in
/// slices of `every` from the first byte. Returns the counter.
pub(super) async fn count_until(
    recv: &mut quinn::RecvStream,
    until: Instant,
    every: Duration,
) -> Result<ByteCounter, quinn::ReadError> {
    let mut counter = ByteCounter::new(every);
    let mut start: Option<Instant> = None;
    loop {
        let chunk = match tokio::time::timeout_at(until, recv.read_chunk(usize::MAX, true)).await {
            Ok(Err(quinn::ReadError::Reset(_))) => break,
            Ok(r) => r?,
            Err(_) => {
                let _ = recv.stop(0_u32.into());
                break;
            }
        };
        let Some(chunk) = chunk else { break };
        let now = Instant::now();
        let t0 = *start.get_or_insert(now);
        counter.add(now - t0, chunk.bytes.len() as u64);
    }
    Ok(counter)
}
