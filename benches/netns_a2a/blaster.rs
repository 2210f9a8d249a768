//! The reference for the reflected rate: a minimal one-way UDP blaster, `sendmmsg` batches of
//! 64-byte datagrams from one namespace, `recvmmsg` batches into one socket in the other,
//! counting what arrives. It is the kernel's packet rate on the path for the simplest user
//! space program that batches its system calls (no timestamps, no control messages, one
//! destination address per message as probe's sockets have).

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg, setsockopt, sockopt,
};
use probe_lab::Host;

/// Datagrams per system call.
const BATCH: usize = 64;
/// UDP payload bytes, as in the probe flood (`--size 64`).
const PAYLOAD: usize = 64;
/// Socket buffers, as probe's flood socket (4 MiB).
const BUFFER: usize = 4 << 20;
/// Upper bound on datagrams sent, whatever the duration (about 10 s at the best rates seen).
const MAX_DATAGRAMS: u64 = 50_000_000;
/// UDP port of the receiver.
const PORT: u16 = 5300;

/// One blast: datagrams the sender handed to the kernel and the receiver got, over the
/// sender's active time.
#[derive(Clone, Copy, Debug)]
pub struct Blast {
    /// Datagrams the kernel accepted from the sender.
    pub sent: u64,
    /// Datagrams the receiver read.
    pub received: u64,
    /// From the first send to the last.
    pub elapsed: Duration,
}

impl Blast {
    /// Datagrams received per second of sending.
    pub fn received_pps(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Blasts from `client` to `server_addr` (an address of `server`) for `duration`.
///
/// # Panics
/// When a socket cannot be made or a system call fails (a benchmark failure, not a result).
pub fn blast(client: &Host, server: &Host, server_addr: Ipv4Addr, duration: Duration) -> Blast {
    let dst = SocketAddrV4::new(server_addr, PORT);
    let rx = server.run_in(|| UdpSocket::bind(dst).expect("blaster receiver bind"));
    let tx = client.run_in(|| UdpSocket::bind("0.0.0.0:0").expect("blaster sender bind"));
    setsockopt(&rx.as_fd(), sockopt::RcvBufForce, &BUFFER).expect("SO_RCVBUFFORCE");
    setsockopt(&tx.as_fd(), sockopt::SndBufForce, &BUFFER).expect("SO_SNDBUFFORCE");
    rx.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("receive timeout");
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let receiver = s.spawn(|| receive(&rx, &done));
        let (sent, elapsed) = send(&tx, SockaddrIn::from(dst), duration);
        // Whatever is still queued arrives within a few ms on these paths.
        std::thread::sleep(Duration::from_millis(50));
        done.store(true, Ordering::Relaxed);
        let received = receiver.join().expect("blaster receiver");
        Blast {
            sent,
            received,
            elapsed,
        }
    })
}

fn send(tx: &UdpSocket, dst: SockaddrIn, duration: Duration) -> (u64, Duration) {
    let payload = [0x5a_u8; PAYLOAD];
    let slices: Vec<[IoSlice<'_>; 1]> = (0..BATCH).map(|_| [IoSlice::new(&payload)]).collect();
    let addrs = vec![Some(dst); BATCH];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < MAX_DATAGRAMS && start.elapsed() < duration {
        match sendmmsg(
            tx.as_raw_fd(),
            &mut headers,
            &slices,
            &addrs,
            [],
            MsgFlags::empty(),
        ) {
            Ok(r) => sent += r.count() as u64,
            // A full transmit queue on the way (veth) refuses a datagram now and then.
            Err(nix::errno::Errno::ENOBUFS) => {}
            Err(e) => panic!("blaster sendmmsg: {e}"),
        }
    }
    (sent, start.elapsed())
}

fn receive(rx: &UdpSocket, done: &AtomicBool) -> u64 {
    let mut bufs = vec![[0u8; PAYLOAD * 2]; BATCH];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
    let mut received = 0u64;
    while !done.load(Ordering::Relaxed) {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> =
            bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        match recvmmsg(
            rx.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        ) {
            Ok(r) => received += r.count() as u64,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("blaster recvmmsg: {e}"),
        }
    }
    received
}
