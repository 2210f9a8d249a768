//! The two ends of a data stream on tokio: write for a duration, or read to the end, with
//! the bytes counted in a [`ByteCounter`].

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::io::tcp_info_bytes;
use crate::tcp::{ByteCounter, GRACE, TCP_INFO_LEN, TcpInfo};

/// Size of each write and read: large, so a system call moves a lot (iperf3 uses 128 KiB).
pub const BUF_LEN: usize = 128 * 1024;

/// The socket's `TCP_INFO`, if the kernel gives it.
pub(super) fn read_tcp_info(stream: &TcpStream) -> Option<TcpInfo> {
    let mut buf = [0u8; TCP_INFO_LEN];
    let n = tcp_info_bytes(stream.as_fd(), &mut buf).ok()?;
    TcpInfo::parse(&buf[..n])
}

/// Reads until the peer closes (or `limit` passed), counting bytes in slices of `every`
/// from now.
pub(super) async fn receive(
    stream: &mut TcpStream,
    buf: &mut [u8],
    every: Duration,
    limit: Duration,
) -> ByteCounter {
    let mut counter = ByteCounter::new(every);
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + limit);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(buf)).await {
            Ok(Ok(n)) if n > 0 => counter.add(start.elapsed(), n as u64),
            _ => break,
        }
    }
    counter
}

/// Writes `buf` over and over from `start` until `duration` passed (counting what the
/// kernel took), then closes the sending side and waits (at most [`GRACE`]) for the peer to
/// close, so that everything sent was acknowledged before the caller reads `TCP_INFO`.
pub(super) async fn send_until(
    stream: &mut TcpStream,
    buf: &[u8],
    start: Instant,
    duration: Duration,
    counter: &mut ByteCounter,
) {
    let deadline = tokio::time::Instant::from_std(start + duration);
    loop {
        let now = Instant::now();
        if now >= start + duration {
            break;
        }
        match tokio::time::timeout_at(deadline, stream.write(buf)).await {
            Ok(Ok(n)) if n > 0 => counter.add(start.elapsed(), n as u64),
            Err(_) => break,
            _ => return,
        }
    }
    counter.end(duration);
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 256];
    let until = tokio::time::Instant::now() + GRACE;
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, stream.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
}
