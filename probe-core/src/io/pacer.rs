//! Precise pacing for isochronous senders: absolute-deadline sleeps on `CLOCK_REALTIME` with
//! the thread's timer slack cut to 1 ns, and a short final spin.
//!
//! The kernel's default timer slack (50 µs) alone would make a 1 ms schedule miss by tens of
//! microseconds; absolute deadlines keep errors from accumulating across packets.

use nix::sys::time::TimeSpec;
use nix::time::{ClockId, ClockNanosleepFlags, clock_nanosleep};

use crate::time::Nanos;

/// How long before a deadline the sleep ends and the final spin begins.
const SPIN: u64 = 20_000;

/// A pacer for the calling thread (it sets the thread's timer slack on creation).
#[derive(Debug)]
pub struct Pacer {
    spin_ns: u64,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

impl Pacer {
    /// Sets the calling thread's timer slack to 1 ns (best effort) and returns a pacer that
    /// spins for the last 20 µs before each deadline.
    pub fn new() -> Self {
        if let Err(e) = nix::sys::prctl::set_timerslack(1) {
            tracing::debug!("could not lower the timer slack: {e}");
        }
        Pacer { spin_ns: SPIN }
    }

    /// Like [`Pacer::new`], and also asks for `SCHED_FIFO` priority for the calling thread
    /// (root or `CAP_SYS_NICE`) so that other work on a busy host does not delay the sends;
    /// returns whether the priority was granted. The thread sleeps between packets, so it
    /// takes little CPU; never use it for a thread that spins or yields in a loop.
    pub fn realtime() -> (Self, bool) {
        let param = libc::sched_param { sched_priority: 10 };
        // SAFETY: `sched_setscheduler` reads the `sched_param` we pass by reference, which
        // lives across the call; pid 0 means the calling thread. It has no other effects on
        // memory.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &raw const param) };
        if rc != 0 {
            tracing::debug!(
                "SCHED_FIFO not granted ({}); pacing at normal priority",
                std::io::Error::last_os_error()
            );
        }
        (Self::new(), rc == 0)
    }

    /// A pacer that never spins (saves a core on busy hosts; a little less precise).
    pub fn without_spin() -> Self {
        let mut p = Self::new();
        p.spin_ns = 0;
        p
    }

    /// Blocks the thread until `CLOCK_REALTIME` reaches `deadline`; returns the time then.
    pub fn sleep_until(&self, deadline: Nanos) -> Nanos {
        let wake = deadline.0.saturating_sub(self.spin_ns);
        if Nanos::now_realtime().0 < wake {
            let ts = TimeSpec::new(
                (wake / 1_000_000_000) as libc::time_t,
                (wake % 1_000_000_000) as libc::c_long,
            );
            // EINTR just ends the sleep early; the spin below covers the rest.
            let _ = clock_nanosleep(
                ClockId::CLOCK_REALTIME,
                ClockNanosleepFlags::TIMER_ABSTIME,
                &ts,
            );
        }
        loop {
            let now = Nanos::now_realtime();
            if now >= deadline {
                return now;
            }
            if deadline.0 - now.0 > self.spin_ns {
                // Woken early by a signal: sleep again.
                return self.sleep_until(deadline);
            }
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_at_deadlines_in_order() {
        let p = Pacer::new();
        let start = Nanos::now_realtime();
        let mut worst = 0i64;
        for i in 1..=20u64 {
            let deadline = Nanos(start.0 + i * 1_000_000);
            let woke = p.sleep_until(deadline);
            let late = woke.since(deadline);
            assert!(late >= 0, "woke {late} ns before the deadline");
            worst = worst.max(late);
        }
        // A loose bound: the test may share the machine with a build.
        assert!(worst < 20_000_000, "worst lateness {worst} ns");
    }

    #[test]
    fn past_deadline_returns_at_once() {
        let p = Pacer::without_spin();
        let now = Nanos::now_realtime();
        let woke = p.sleep_until(Nanos(now.0 - 1_000_000));
        assert!(woke.since(now) < 5_000_000);
    }
}
