//! A one-shot `CLOCK_REALTIME` timer file descriptor driven by tokio.
//!
//! The kernel's timerfd fires an hrtimer at an absolute instant with no timer slack, and the
//! descriptor becomes readable; tokio's reactor sees it through epoll. That gives async code a
//! wake-up with microsecond precision, where tokio's own timer wheel rounds to milliseconds.
//! The clock is `CLOCK_REALTIME` because packet timestamps ([`Nanos::now_realtime`]) are.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::time::Nanos;

/// A nonblocking, close-on-exec timerfd on `CLOCK_REALTIME`, registered with tokio.
#[derive(Debug)]
pub(crate) struct TimerFd {
    fd: AsyncFd<OwnedFd>,
}

impl TimerFd {
    /// Creates the timer (disarmed) and registers it with the current tokio runtime's reactor.
    ///
    /// Fails when the kernel refuses the timer or when no tokio runtime is running.
    pub(crate) fn new() -> io::Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "a timerfd must be created inside a tokio runtime (call from async code or after Runtime::enter)",
            ));
        }
        // SAFETY: `timerfd_create` takes two integers and touches no memory of ours.
        let raw = unsafe {
            libc::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor the kernel just returned to us; nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an `OwnedFd` keeps its descriptor open until dropped and always returns the
        // same one; the `AsyncFd` owns it and this type never takes it back out.
        let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(TimerFd { fd })
    }

    /// Arms the timer to fire once when `CLOCK_REALTIME` reaches `at` (at once if `at` has
    /// passed). Re-arming replaces any earlier expiry and resets the expiration count.
    fn arm(&self, at: Nanos) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: timespec(Nanos::ZERO),
            // An all-zero `it_value` would disarm the timer; 1 ns after the epoch is long past.
            it_value: timespec(Nanos(at.0.max(1))),
        };
        // SAFETY: the descriptor is a live timerfd owned by `self`; `spec` is a valid
        // `itimerspec` read during the call; a null old-value pointer is allowed.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &raw const spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until the timer armed for `at` has fired.
    ///
    /// Cancel-safe: dropping the future leaves the timer armed, and the next call re-arms it;
    /// a stale readiness from the old expiry reads as `EAGAIN` and is cleared, never taken for
    /// the new one.
    pub(crate) async fn sleep_until(&self, at: Nanos) -> io::Result<()> {
        self.arm(at)?;
        loop {
            let mut guard = self.fd.readable().await?;
            match read_expirations(guard.get_inner()) {
                Ok(_) => {
                    // One-shot: nothing more to read until re-armed, so the next wait need not
                    // spend a read on this readiness. (tokio keeps readiness that arrived
                    // after this one.)
                    guard.clear_ready();
                    return Ok(());
                }
                // Stale readiness (an earlier expiry): clear it and wait for this one.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// `at` as a `timespec` (seconds and nanoseconds since the epoch).
pub(super) fn timespec(at: Nanos) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(at.0 / 1_000_000_000).unwrap_or(libc::time_t::MAX),
        // Below 10^9, so it fits.
        tv_nsec: (at.0 % 1_000_000_000) as libc::c_long,
    }
}

/// Reads the expiration count (it fails with `EAGAIN` while the timer has not fired).
fn read_expirations(fd: &OwnedFd) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is 8 writable bytes that outlive the call, and `read` writes at most
    // `buf.len()` bytes into it; the descriptor is a live timerfd.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from_ne_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn fires_at_absolute_time_never_early() {
        let t = TimerFd::new().expect("timerfd");
        let at = Nanos(Nanos::now_realtime().0 + 3_000_000);
        t.sleep_until(at).await.expect("wait");
        let now = Nanos::now_realtime();
        assert!(now >= at, "fired {} ns early", at.since(now));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn past_instant_fires_at_once() {
        let t = TimerFd::new().expect("timerfd");
        let before = Nanos::now_realtime();
        t.sleep_until(Nanos(before.0 - 1_000_000))
            .await
            .expect("wait");
        // Loose: the machine may be busy.
        assert!(Nanos::now_realtime().since(before) < 500_000_000);
    }

    #[test]
    fn needs_a_runtime() {
        let err = TimerFd::new().expect_err("no runtime");
        assert!(err.to_string().contains("tokio runtime"), "{err}");
    }
}
