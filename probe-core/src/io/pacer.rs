//! Precise pacing for isochronous senders, in async code: a `CLOCK_REALTIME` timerfd sleep
//! that ends a little before each deadline, then a short, bounded spin to the deadline.
//!
//! tokio's timer rounds to milliseconds, far too coarse for a 1 ms schedule, so the sleep is a
//! kernel timerfd with an absolute expiry (no timer slack, and absolute deadlines keep errors
//! from accumulating across packets). The wake-up still passes through the reactor and the
//! scheduler, which costs tens of microseconds on a busy host; the spin absorbs that. The pacer
//! tracks how late its wake-ups come (a decaying peak) and ends the sleep earlier when they
//! get later than the margin. Each wait spins for at most [`PacerConfig::max_spin`], so on a
//! current-thread runtime the pacer blocks the thread only that long, and a busy host never
//! loses a core to it; [`PacerConfig::capped_for`] bounds it to a fifth of the interval.

use std::io;
use std::time::Duration;

use super::timerfd::{TimerFd, timespec};
use crate::time::Nanos;

/// Default [`PacerConfig::spin`] margin: covers the wake-up of a `SCHED_FIFO` thread from
/// the timerfd on a busy 2-vCPU VM at its 99th percentile (README, "Schedule error").
const DEFAULT_MARGIN: Duration = Duration::from_micros(150);
/// Default [`PacerConfig::max_spin`] budget.
const DEFAULT_MAX_SPIN: Duration = Duration::from_micros(300);
/// The recent peak of wake-up lateness decays by 1/this per wake.
const WAKE_PEAK_DECAY: u64 = 64;
/// [`PacerConfig::capped_for`] spins at most this fraction of each interval (1/5).
const SPIN_SHARE: u32 = 5;

/// Pacer settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PacerConfig {
    /// The sleep ends this long before the deadline; the rest is spun.
    margin: Duration,
    /// The CPU time a single wait may burn spinning (0 = never spin).
    max_spin: Duration,
}

impl Default for PacerConfig {
    /// A 150 µs spin margin and at most 300 µs of spinning per wait.
    fn default() -> Self {
        PacerConfig {
            margin: DEFAULT_MARGIN,
            max_spin: DEFAULT_MAX_SPIN,
        }
    }
}

impl PacerConfig {
    /// Sets the spin margin: the sleep ends at least this long before each deadline (longer
    /// while recent wake-ups came late) and the pacer spins through the rest (never for longer
    /// than [`PacerConfig::max_spin`] in one wait).
    #[must_use]
    pub const fn spin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Sets the most a single wait may spin. When the budget runs out before the deadline
    /// (the sleep woke very early), the pacer sleeps again, this time to the deadline itself.
    #[must_use]
    pub const fn max_spin(mut self, budget: Duration) -> Self {
        self.max_spin = budget;
        self
    }

    /// Never spins: each wait is one timerfd sleep to the deadline (saves CPU on busy hosts,
    /// at the cost of the reactor's wake-up latency).
    #[must_use]
    pub const fn no_spin(self) -> Self {
        self.spin(Duration::ZERO).max_spin(Duration::ZERO)
    }

    /// Bounds the spin for a schedule of one wait per `interval`: margin and budget at most a
    /// fifth of it, so that spinning never takes more than 20% of a core (at the default
    /// 150 µs margin, a schedule of 1 ms spins 15% of a core; of 10 ms, 1.5%).
    #[must_use]
    pub fn capped_for(self, interval: Duration) -> Self {
        let cap = interval / SPIN_SHARE;
        self.spin(self.margin.min(cap))
            .max_spin(self.max_spin.min(cap))
    }

    /// The spin margin.
    pub const fn spin_margin(&self) -> Duration {
        self.margin
    }

    /// The spin budget of a single wait.
    pub const fn spin_budget(&self) -> Duration {
        self.max_spin
    }
}

/// An async pacer: waits until absolute `CLOCK_REALTIME` deadlines with microsecond precision.
#[derive(Debug)]
pub struct Pacer {
    timer: TimerFd,
    margin_ns: u64,
    max_spin_ns: u64,
    /// Recent worst lateness of the sleep's wake-up (ns), decaying by 1/64 per wake: the
    /// lead grows to cover it (up to the spin budget) when the host gets busy.
    wake_peak_ns: u64,
}

/// What a wait does next.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// The deadline has passed; wake with this time.
    Done(Nanos),
    /// Sleep until this instant.
    Sleep(Nanos),
    /// Spin to the deadline (within the budget left).
    Spin,
}

impl Pacer {
    /// Creates a pacer and lowers the calling thread's timer slack to 1 ns (best effort; it
    /// helps the runtime's own sleeps, the timerfd has no slack).
    ///
    /// Call it within a tokio runtime with IO enabled (the timerfd registers with its reactor).
    ///
    /// # Errors
    /// When no tokio runtime is running or the kernel refuses a timerfd.
    pub fn new(cfg: PacerConfig) -> io::Result<Pacer> {
        lower_timer_slack();
        Ok(Pacer {
            timer: TimerFd::new()?,
            margin_ns: duration_ns(cfg.margin),
            max_spin_ns: duration_ns(cfg.max_spin),
            wake_peak_ns: 0,
        })
    }

    /// Like [`Pacer::new`], and also asks for `SCHED_FIFO` priority for the calling thread
    /// (root or `CAP_SYS_NICE`) so that other work on a busy host does not delay the sends;
    /// returns whether the priority was granted.
    ///
    /// Only for a thread dedicated to pacing (a current-thread runtime of its own, or
    /// [`Pacer::sleep_until_blocking`]): a multi-threaded runtime may run any task on the
    /// thread. The thread must sleep most of the time: a `SCHED_FIFO` thread that spins or
    /// busy-loops starves everything else on its core, so keep the spin budget small
    /// ([`PacerConfig::max_spin`] bounds each wait) and never spin without that bound.
    ///
    /// At normal priority on a CPU-starved host, the wake-up waits for the scheduler (often
    /// milliseconds), which no spin margin can hide; `SCHED_FIFO` removes most of that wait.
    ///
    /// # Errors
    /// As [`Pacer::new`]; a refused priority is not an error.
    pub fn realtime(cfg: PacerConfig) -> io::Result<(Pacer, bool)> {
        let param = libc::sched_param { sched_priority: 10 };
        // SAFETY: `sched_setscheduler` reads the `sched_param` we pass by reference, which
        // lives across the call; pid 0 means the calling thread. It has no other effects on
        // memory.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &raw const param) };
        if rc != 0 {
            tracing::debug!(
                "SCHED_FIFO not granted ({}); pacing at normal priority",
                io::Error::last_os_error()
            );
        }
        Ok((Self::new(cfg)?, rc == 0))
    }

    /// Waits until `CLOCK_REALTIME` reaches `deadline`; returns the time then (never earlier
    /// than `deadline`).
    ///
    /// Cancel-safe: dropping the future mid-wait is harmless, and the next call waits afresh.
    pub async fn sleep_until(&mut self, deadline: Nanos) -> Nanos {
        let mut budget = self.max_spin_ns;
        loop {
            match self.step(Nanos::now_realtime(), deadline, budget) {
                Step::Done(now) => return now,
                Step::Sleep(until) => {
                    if let Err(e) = self.timer.sleep_until(until).await {
                        // Not expected (the reactor is shutting down?): keep the promise of
                        // never waking early, blocking the thread if need be.
                        tracing::warn!("timerfd wait failed ({e}); sleeping the thread instead");
                        nanosleep_until(until);
                    }
                    self.note_wake(until, Nanos::now_realtime());
                }
                Step::Spin => {
                    if let Some(now) = spin(deadline, &mut budget) {
                        return now;
                    }
                }
            }
        }
    }

    /// Blocks the thread until `CLOCK_REALTIME` reaches `deadline`, with the same margin and
    /// spin budget as [`Pacer::sleep_until`] (`clock_nanosleep` instead of the timerfd); for
    /// a dedicated thread outside async code.
    pub fn sleep_until_blocking(&mut self, deadline: Nanos) -> Nanos {
        let mut budget = self.max_spin_ns;
        loop {
            match self.step(Nanos::now_realtime(), deadline, budget) {
                Step::Done(now) => return now,
                Step::Sleep(until) => {
                    nanosleep_until(until);
                    self.note_wake(until, Nanos::now_realtime());
                }
                Step::Spin => {
                    if let Some(now) = spin(deadline, &mut budget) {
                        return now;
                    }
                }
            }
        }
    }

    /// Records how late a sleep meant to end at `until` woke (at `now`).
    fn note_wake(&mut self, until: Nanos, now: Nanos) {
        let late = now.0.saturating_sub(until.0);
        let decayed = self.wake_peak_ns - self.wake_peak_ns / WAKE_PEAK_DECAY;
        self.wake_peak_ns = late.max(decayed);
    }

    /// How long before a deadline the sleep ends: the margin, or more when recent wake-ups
    /// were later than it (their peak and half again), never more than the spin budget.
    fn lead_ns(&self) -> u64 {
        let adaptive = self.wake_peak_ns.saturating_add(self.wake_peak_ns / 2);
        self.margin_ns.max(adaptive).min(self.max_spin_ns)
    }

    /// The next move of a wait for `deadline` at `now`, with `budget` ns of spin left: sleep
    /// until the spin can cover the rest, then spin.
    fn step(&self, now: Nanos, deadline: Nanos, budget: u64) -> Step {
        if now >= deadline {
            return Step::Done(now);
        }
        let lead = self.lead_ns().min(budget);
        if deadline.0 - now.0 <= lead {
            Step::Spin
        } else {
            Step::Sleep(Nanos(deadline.0 - lead))
        }
    }
}

/// Spins until `deadline` and returns the time then, or returns `None` once `budget` (ns,
/// decremented by the wall time spent) runs out first.
fn spin(deadline: Nanos, budget: &mut u64) -> Option<Nanos> {
    let start = Nanos::now_realtime();
    loop {
        let now = Nanos::now_realtime();
        if now >= deadline {
            *budget = budget.saturating_sub(now.0.saturating_sub(start.0));
            return Some(now);
        }
        let spent = now.0.saturating_sub(start.0);
        if spent >= *budget {
            *budget = 0;
            return None;
        }
        std::hint::spin_loop();
    }
}

/// Saturating nanoseconds of a duration.
fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Sets the calling thread's timer slack to 1 ns (best effort).
fn lower_timer_slack() {
    // SAFETY: `PR_SET_TIMERSLACK` takes an integer argument and changes only the calling
    // thread's scheduling attribute; it touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!(
            "could not lower the timer slack: {}",
            io::Error::last_os_error()
        );
    }
}

/// Blocks the thread until `CLOCK_REALTIME` reaches `at` (or a signal interrupts; callers
/// re-check the time).
fn nanosleep_until(at: Nanos) {
    let ts = timespec(at);
    // SAFETY: `ts` is a valid timespec read during the call; the remaining-time pointer may
    // be null with TIMER_ABSTIME. EINTR just ends the sleep early.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_REALTIME,
            libc::TIMER_ABSTIME,
            &raw const ts,
            std::ptr::null_mut(),
        );
    }
}

#[cfg(test)]
#[path = "tests_pacer.rs"]
mod tests;
