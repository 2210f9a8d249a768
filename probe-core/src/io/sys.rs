//! The system calls behind the IO layer: `recvmsg`, `sendmsg`, `recvmmsg`, `sendmmsg` and an
//! integer `setsockopt`, over buffers the callers own.
//!
//! nix wraps these calls, but two of its limits matter here: its `recvmmsg` does not restore
//! `msg_namelen`/`msg_controllen` when headers are reused, so control messages go missing
//! after the first batch (nix-rust/nix#2813), and its `sendmmsg` shares one set of control
//! messages across the whole batch (nix-rust/nix#1954) where a reflector needs a source
//! address per reply. So this module fills the headers itself on every call, from slices it
//! borrows for exactly the duration of the call, and leaves control-message decoding to the
//! safe byte parser in `cmsg`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::io::error::is_async_icmp_error;

/// How often a call is repeated when it fails with a pending asynchronous ICMP error
/// (or `EINTR`) before the error is handed to the caller.
const ASYNC_ERROR_RETRIES: usize = 8;

/// Result fields of one received message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Received {
    /// Bytes of payload the kernel wrote (the full datagram length if `MSG_TRUNC` is set).
    pub len: usize,
    /// Bytes of `msg_name` the kernel filled in.
    pub name_len: usize,
    /// Bytes of `msg_control` the kernel filled in.
    pub control_len: usize,
    /// `msg_flags` (`MSG_TRUNC`, `MSG_CTRUNC`, `MSG_ERRQUEUE`).
    pub flags: i32,
}

/// One message to receive into: payload, address and control buffers.
pub(crate) struct InMsg<'a> {
    pub data: &'a mut [u8],
    pub name: &'a mut [u8],
    pub control: &'a mut [u8],
}

/// One message to send: payload, encoded destination (may be empty on a connected socket)
/// and encoded control messages (may be empty).
pub(crate) struct OutMsg<'a> {
    pub data: &'a [u8],
    pub name: &'a [u8],
    pub control: &'a [u8],
}

/// Repeats `f` while it fails with `EINTR` or with an asynchronous ICMP error that the
/// kernel reports once on the next socket call (see [`is_async_icmp_error`]).
pub(crate) fn retry_async_errors<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    for _ in 0..ASYNC_ERROR_RETRIES {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted || is_async_icmp_error(&e) => {}
            other => return other,
        }
    }
    f()
}

fn empty_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is a plain C struct of integers and raw pointers (plus private padding
    // on some libcs) for which all-zero bytes is a valid, empty value.
    unsafe { std::mem::zeroed() }
}

fn fill_in(hdr: &mut libc::msghdr, iov: &mut libc::iovec, msg: &mut InMsg<'_>) {
    iov.iov_base = msg.data.as_mut_ptr().cast();
    iov.iov_len = msg.data.len();
    hdr.msg_iov = iov;
    hdr.msg_iovlen = 1;
    hdr.msg_name = msg.name.as_mut_ptr().cast();
    hdr.msg_namelen = msg.name.len() as libc::socklen_t;
    hdr.msg_control = msg.control.as_mut_ptr().cast();
    hdr.msg_controllen = msg.control.len() as _;
    hdr.msg_flags = 0;
}

fn fill_out(hdr: &mut libc::msghdr, iov: &mut libc::iovec, msg: &OutMsg<'_>) {
    iov.iov_base = msg.data.as_ptr().cast_mut().cast();
    iov.iov_len = msg.data.len();
    hdr.msg_iov = iov;
    hdr.msg_iovlen = 1;
    if msg.name.is_empty() {
        hdr.msg_name = std::ptr::null_mut();
        hdr.msg_namelen = 0;
    } else {
        hdr.msg_name = msg.name.as_ptr().cast_mut().cast();
        hdr.msg_namelen = msg.name.len() as libc::socklen_t;
    }
    if msg.control.is_empty() {
        hdr.msg_control = std::ptr::null_mut();
        hdr.msg_controllen = 0;
    } else {
        hdr.msg_control = msg.control.as_ptr().cast_mut().cast();
        hdr.msg_controllen = msg.control.len() as _;
    }
    hdr.msg_flags = 0;
}

// `msg_controllen` is `size_t` with glibc but `socklen_t` with musl.
#[allow(clippy::unnecessary_cast)]
fn received(hdr: &libc::msghdr, len: usize) -> Received {
    Received {
        len,
        name_len: hdr.msg_namelen as usize,
        control_len: hdr.msg_controllen as usize,
        flags: hdr.msg_flags,
    }
}

/// `recvmsg(2)` of one message with `flags` (always add `MSG_DONTWAIT` for async use).
pub(crate) fn recv_msg(fd: BorrowedFd<'_>, mut msg: InMsg<'_>, flags: i32) -> io::Result<Received> {
    let mut hdr = empty_msghdr();
    let mut iov = libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    fill_in(&mut hdr, &mut iov, &mut msg);
    // SAFETY: `hdr` points at `iov` and at the three buffers of `msg`, all exclusively
    // borrowed for this call and sized by the lengths written next to them; the kernel
    // writes at most those lengths. `fd` is a valid open descriptor for the borrow.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut hdr, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(received(&hdr, n as usize))
}

/// `sendmsg(2)` of one message without blocking.
pub(crate) fn send_msg(fd: BorrowedFd<'_>, msg: &OutMsg<'_>) -> io::Result<usize> {
    let mut hdr = empty_msghdr();
    let mut iov = libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    fill_out(&mut hdr, &mut iov, msg);
    // SAFETY: `hdr` points at `iov` and at the buffers of `msg`, borrowed for this call and
    // only read by the kernel within their stated lengths; `fd` is valid for the borrow.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const hdr, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Preallocated `mmsghdr`/`iovec` arrays for `recvmmsg`/`sendmmsg`. They hold raw pointers
/// only between filling and the system call of one method call.
pub(crate) struct MmsgHeaders {
    hdrs: Box<[libc::mmsghdr]>,
    iovs: Box<[libc::iovec]>,
}

// SAFETY: the raw pointers inside are written and used only within one `&mut self` method
// call (fill, then system call), so moving the arrays to another thread between calls cannot
// let two threads use them at once, and stale pointers are never dereferenced.
unsafe impl Send for MmsgHeaders {}
// SAFETY: `&self` methods only read the integer result fields.
unsafe impl Sync for MmsgHeaders {}

impl MmsgHeaders {
    /// Headers for up to `capacity` messages per call.
    pub(crate) fn new(capacity: usize) -> Self {
        let empty = libc::mmsghdr {
            msg_hdr: empty_msghdr(),
            msg_len: 0,
        };
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        MmsgHeaders {
            hdrs: vec![empty; capacity].into_boxed_slice(),
            iovs: vec![iov; capacity].into_boxed_slice(),
        }
    }

    /// `recvmmsg(2)` into `msgs` (at most the capacity) with `flags`; returns the count of
    /// messages received. Read each one's fields with [`MmsgHeaders::received`].
    pub(crate) fn recv<'a>(
        &mut self,
        fd: BorrowedFd<'_>,
        msgs: impl Iterator<Item = InMsg<'a>>,
        flags: i32,
    ) -> io::Result<usize> {
        let mut count = 0;
        for ((hdr, iov), mut msg) in self.hdrs.iter_mut().zip(self.iovs.iter_mut()).zip(msgs) {
            fill_in(&mut hdr.msg_hdr, iov, &mut msg);
            hdr.msg_len = 0;
            count += 1;
        }
        // SAFETY: the first `count` headers were just filled from the exclusively borrowed
        // buffers of `msgs` (which outlive this call through 'a) and point at `self.iovs`;
        // the kernel writes within the stated lengths. A null timeout means none.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                count as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// `sendmmsg(2)` of `msgs` (at most the capacity) without blocking; returns how many of
    /// them, from the first, the kernel accepted.
    pub(crate) fn send<'a>(
        &mut self,
        fd: BorrowedFd<'_>,
        msgs: impl Iterator<Item = OutMsg<'a>>,
    ) -> io::Result<usize> {
        let mut count = 0;
        for ((hdr, iov), msg) in self.hdrs.iter_mut().zip(self.iovs.iter_mut()).zip(msgs) {
            fill_out(&mut hdr.msg_hdr, iov, &msg);
            hdr.msg_len = 0;
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        // SAFETY: the first `count` headers were just filled from the borrowed buffers of
        // `msgs` (alive for 'a, beyond this call) and point at `self.iovs`; the kernel only
        // reads them within the stated lengths.
        let n = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Result fields of message `i` of the last `recv`.
    pub(crate) fn received(&self, i: usize) -> Received {
        let h = &self.hdrs[i];
        received(&h.msg_hdr, h.msg_len as usize)
    }
}

/// `setsockopt(2)` with an `int` value, for options neither socket2 nor nix wrap.
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: i32,
    name: i32,
    value: i32,
) -> io::Result<()> {
    // SAFETY: the option value is a live `c_int` on the stack and its exact size is passed;
    // `fd` is valid for the borrow.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `getsockopt(2)` of an `int` value (tests read options back with it; `route_mtu` reads
/// `IP_MTU`).
pub(crate) fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live locals; the kernel writes at most `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn retries_pending_icmp_errors_then_succeeds() {
        let calls = Cell::new(0);
        let r = retry_async_errors(|| {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(io::Error::from_raw_os_error(libc::ECONNREFUSED))
            } else {
                Ok(7)
            }
        });
        assert_eq!(r.expect("third call succeeds"), 7);
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn hands_back_persistent_or_other_errors() {
        let calls = Cell::new(0);
        let r: io::Result<()> = retry_async_errors(|| {
            calls.set(calls.get() + 1);
            Err(io::Error::from_raw_os_error(libc::ENETUNREACH))
        });
        assert_eq!(
            r.expect_err("persistent").raw_os_error(),
            Some(libc::ENETUNREACH)
        );
        assert_eq!(calls.get(), ASYNC_ERROR_RETRIES + 1);

        calls.set(0);
        let r: io::Result<()> = retry_async_errors(|| {
            calls.set(calls.get() + 1);
            Err(io::Error::from(io::ErrorKind::WouldBlock))
        });
        assert_eq!(
            r.expect_err("would block").kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(calls.get(), 1);
    }
}
