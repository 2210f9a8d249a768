//! `getsockopt(TCP_INFO)`: the kernel's view of a TCP connection, as raw bytes
//! (`tcp::TcpInfo` decodes them).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Reads `TCP_INFO` of the TCP socket `fd` into `buf`; returns how many bytes the kernel
/// filled.
pub fn tcp_info_bytes(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len()).unwrap_or(libc::socklen_t::MAX);
    // SAFETY: `buf` is a live, writable buffer of at least `len` bytes and `len` a live local;
    // the kernel writes at most `len` bytes and stores the length it wrote in `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(len).unwrap_or(0).min(buf.len()))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_connected_loopback_socket_has_tcp_info() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let mut buf = [0u8; 256];
        let n = tcp_info_bytes(c.as_fd(), &mut buf).expect("TCP_INFO");
        assert!(n >= 104, "{n} bytes");
        // tcpi_state (byte 0) is TCP_ESTABLISHED (1).
        assert_eq!(buf[0], 1);
        let u = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        assert!(tcp_info_bytes(u.as_fd(), &mut buf).is_err());
    }
}
