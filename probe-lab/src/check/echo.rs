//! UDP and TCP echo servers and one-shot clients, all in-process on threads inside a
//! namespace (nothing needs to be installed in the namespaces).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::host::Host;

/// How often echo threads check whether they should stop.
const STOP_POLL: Duration = Duration::from_millis(10);

/// An echo server running on a thread; stopped when dropped. It records the source address
/// of every client it served, so tests can see NAT at work.
#[derive(Debug)]
pub struct Echo {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Distinct client addresses served so far, in order of first appearance.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn start<S, F>(socket: S, local: SocketAddr, serve: F) -> Result<Self>
    where
        S: Send + 'static,
        F: Fn(&S, &dyn Fn(SocketAddr)) + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let (thread_stop, thread_peers) = (Arc::clone(&stop), Arc::clone(&peers));
        let thread = std::thread::Builder::new()
            .name(format!("echo-{local}"))
            .spawn(move || {
                let record = |peer: SocketAddr| {
                    let mut peers = thread_peers.lock().unwrap_or_else(PoisonError::into_inner);
                    if !peers.contains(&peer) {
                        peers.push(peer);
                    }
                };
                while !thread_stop.load(Ordering::Relaxed) {
                    serve(&socket, &record);
                }
            })
            .map_err(|e| Error::io("spawning echo thread", e))?;
        Ok(Self {
            local,
            stop,
            peers,
            thread: Some(thread),
        })
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn io_err(what: &str, host: &Host) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} in {}", host.name());
    move |e| Error::io(context, e)
}

/// Starts a UDP echo server bound to `bind` inside `host`: every datagram is sent back to its
/// source unchanged.
pub fn udp_echo(host: &Host, bind: SocketAddr) -> Result<Echo> {
    let socket = host
        .try_run_in(|| super::bind_udp(bind))?
        .map_err(io_err(&format!("binding UDP {bind}"), host))?;
    socket
        .set_read_timeout(Some(STOP_POLL))
        .map_err(io_err("setting UDP timeout", host))?;
    let local = socket
        .local_addr()
        .map_err(io_err("reading UDP address", host))?;
    Echo::start(socket, local, |socket, record| {
        let mut buf = vec![0u8; 65_536];
        if let Ok((n, peer)) = socket.recv_from(&mut buf) {
            record(peer);
            let _ = socket.send_to(&buf[..n], peer);
        }
    })
}

/// Starts a TCP echo server listening on `bind` inside `host`: connections are served one at
/// a time, echoing every byte until the client closes.
pub fn tcp_echo(host: &Host, bind: SocketAddr) -> Result<Echo> {
    let listener = host
        .try_run_in(|| super::listen_tcp(bind))?
        .map_err(io_err(&format!("listening on TCP {bind}"), host))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("setting TCP listener non-blocking", host))?;
    let local = listener
        .local_addr()
        .map_err(io_err("reading TCP address", host))?;
    Echo::start(listener, local, |listener, record| {
        match listener.accept() {
            Ok((stream, peer)) => {
                record(peer);
                let _ = echo_stream(stream);
            }
            Err(_) => std::thread::sleep(STOP_POLL),
        }
    })
}

fn echo_stream(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 16_384];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

/// Sends one UDP datagram from `host` (from `bind`, e.g. `0.0.0.0:0`) to `dst` and waits up
/// to `timeout` for one reply. Returns the reply and the address it came from, or `None` on
/// timeout.
pub fn udp_exchange(
    host: &Host,
    bind: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Result<Option<(Vec<u8>, SocketAddr)>> {
    let socket = host
        .try_run_in(|| super::bind_udp(bind))?
        .map_err(io_err(&format!("binding UDP {bind}"), host))?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(io_err("setting UDP timeout", host))?;
    socket
        .send_to(payload, dst)
        .map_err(io_err(&format!("sending to {dst}"), host))?;
    let mut buf = vec![0u8; 65_536];
    match socket.recv_from(&mut buf) {
        Ok((n, from)) => {
            buf.truncate(n);
            Ok(Some((buf, from)))
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(io_err("receiving UDP reply", host)(e)),
    }
}

/// Connects from `host` to `dst` over TCP (within `timeout`), sends `payload`, reads back as
/// many bytes and returns them.
pub fn tcp_exchange(
    host: &Host,
    dst: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>> {
    let mut stream = host
        .try_run_in(|| TcpStream::connect_timeout(&dst, timeout))?
        .map_err(io_err(&format!("connecting to {dst}"), host))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(io_err("setting TCP timeout", host))?;
    stream
        .write_all(payload)
        .map_err(io_err(&format!("writing to {dst}"), host))?;
    let mut reply = vec![0u8; payload.len()];
    stream
        .read_exact(&mut reply)
        .map_err(io_err(&format!("reading from {dst}"), host))?;
    Ok(reply)
}
