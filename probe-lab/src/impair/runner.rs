//! The impairment hop's I/O loop: one thread per direction reads packets from its TUN device,
//! feeds them to the [`Impairer`] state machine and writes each back at its release time.
//!
//! Timing: the thread sets its timer slack to 1 ns, sleeps in `poll` on the TUN fd, a
//! `timerfd` armed with the absolute (`CLOCK_MONOTONIC`) release time of the next packet
//! (minus [`Timing::spin`]) and an `eventfd` for control messages, then busy-waits the last
//! [`Timing::spin`] before a release if asked.

use std::os::fd::AsFd;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::error::{Error, Result};
use crate::host::Host;
use crate::impair::logic::{ImpairConfig, ImpairStats, Impairer, classify};
use crate::impair::tun::{MAX_PACKET, Tun};

/// Largest lateness the histogram tells apart (larger values are recorded as this): 10 s.
const LATENESS_MAX_NS: u64 = 10_000_000_000;
/// Packets read from the TUN per wake-up before releases get another look.
const READ_BATCH: usize = 64;

/// Timing knobs of a runner thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Wake up this long before a release time and busy-wait the rest (zero: rely on the
    /// timer alone). Trades CPU for accuracy when wake-up latency is high.
    pub spin: Duration,
    /// Try to run the thread under `SCHED_FIFO` (priority [`REALTIME_PRIORITY`]) so busy
    /// neighbours cannot delay it; silently stays on the normal policy if not permitted.
    pub realtime: bool,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            spin: Duration::from_micros(DEFAULT_SPIN_US),
            realtime: true,
        }
    }
}

/// `SCHED_FIFO` priority of runner threads (1 = lowest, 99 = highest), when
/// [`Timing::realtime`] is set.
pub const REALTIME_PRIORITY: u8 = 50;

/// Puts the calling thread under `SCHED_FIFO`; returns whether that worked.
fn enter_realtime() -> bool {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let Ok(value) = ThreadPriorityValue::try_from(REALTIME_PRIORITY) else {
        return false;
    };
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(value),
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
    )
    .is_ok()
}

/// Default of [`Timing::spin`], in microseconds.
pub const DEFAULT_SPIN_US: u64 = 0;

/// How late packets were written compared with their release time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Lateness {
    /// Packets measured.
    pub count: u64,
    /// Mean lateness in ns.
    pub mean_ns: f64,
    /// 99th percentile in ns.
    pub p99_ns: u64,
    /// Maximum in ns.
    pub max_ns: u64,
}

/// Counters and timing of one direction's runner.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ImpairReport {
    /// The state machine's counters.
    pub stats: ImpairStats,
    /// Packets the kernel refused when written back.
    pub write_errors: u64,
    /// Release lateness (the hop's own scheduling error).
    pub lateness: Lateness,
}

#[derive(Debug)]
struct Shared {
    stats: ImpairStats,
    write_errors: u64,
    lateness: Histogram<u64>,
}

impl Shared {
    fn report(&self) -> ImpairReport {
        let h = &self.lateness;
        ImpairReport {
            stats: self.stats,
            write_errors: self.write_errors,
            lateness: Lateness {
                count: h.len(),
                mean_ns: if h.is_empty() { 0.0 } else { h.mean() },
                p99_ns: h.value_at_quantile(0.99),
                max_ns: h.max(),
            },
        }
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Control {
    Set(ImpairConfig),
    Stop,
}

/// Current `CLOCK_MONOTONIC` time in ns.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}

fn timespec(ns: u64) -> TimeSpec {
    TimeSpec::from_duration(Duration::from_nanos(ns))
}

/// One direction of the impairment hop running on its own thread. Dropping it stops the
/// thread (and detaches from the TUN device, which then drops whatever is routed into it).
pub struct ImpairerThread {
    tun: String,
    control: Sender<Control>,
    wake: Arc<EventFd>,
    shared: Arc<Mutex<Shared>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl std::fmt::Debug for ImpairerThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImpairerThread")
            .field("tun", &self.tun)
            .finish_non_exhaustive()
    }
}

impl ImpairerThread {
    /// Starts an impairer on TUN device `tun` inside `host`'s namespace.
    pub fn start_in(host: &Host, tun: &str, config: ImpairConfig, timing: Timing) -> Result<Self> {
        Self::start(Some(host), tun, config, timing)
    }

    /// Starts an impairer on TUN device `tun` in the current network namespace.
    pub fn start_here(tun: &str, config: ImpairConfig, timing: Timing) -> Result<Self> {
        Self::start(None, tun, config, timing)
    }

    fn start(host: Option<&Host>, tun: &str, config: ImpairConfig, timing: Timing) -> Result<Self> {
        config.validate()?;
        let wake = Arc::new(
            EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
                .map_err(|e| Error::sys("creating eventfd", e))?,
        );
        let shared = Arc::new(Mutex::new(Shared {
            stats: ImpairStats::default(),
            write_errors: 0,
            lateness: Histogram::new_with_bounds(1, LATENESS_MAX_NS, 3)
                .map_err(|e| Error::Invalid(e.to_string()))?,
        }));
        let (control, control_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let runner = Runner {
            tun_name: tun.to_owned(),
            timing,
            control: control_rx,
            wake: Arc::clone(&wake),
            shared: Arc::clone(&shared),
        };
        let body = move || runner.run(config, &ready_tx);
        let thread = match host {
            Some(host) => host.spawn_thread(body)?,
            None => std::thread::Builder::new()
                .name(format!("impair-{tun}"))
                .spawn(body)
                .map_err(|e| Error::io("spawning impairer thread", e))?,
        };
        let mut this = Self {
            tun: tun.to_owned(),
            control,
            wake,
            shared,
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(this),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(this.join().err().unwrap_or_else(|| {
                Error::Invalid(format!("impairer on {tun} exited during start-up"))
            })),
        }
    }

    /// The TUN device this impairer serves.
    pub fn tun(&self) -> &str {
        &self.tun
    }

    /// Replaces the configuration (held packets keep their release times; the every-Nth
    /// count restarts).
    pub fn set_config(&self, config: ImpairConfig) -> Result<()> {
        config.validate()?;
        self.send(Control::Set(config))
    }

    fn send(&self, message: Control) -> Result<()> {
        self.control
            .send(message)
            .map_err(|_| Error::Invalid(format!("impairer on {} has stopped", self.tun)))?;
        self.wake
            .write(1)
            .map(|_| ())
            .map_err(|e| Error::sys("waking impairer", e))
    }

    /// Counters and timing so far.
    pub fn report(&self) -> ImpairReport {
        lock(&self.shared).report()
    }

    fn join(&mut self) -> Result<()> {
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(Error::Invalid(format!("impairer on {} panicked", self.tun))),
        }
    }

    /// Stops the thread and returns the final report.
    pub fn stop(mut self) -> Result<ImpairReport> {
        let _ = self.send(Control::Stop);
        self.join()?;
        Ok(self.report())
    }
}

impl Drop for ImpairerThread {
    fn drop(&mut self) {
        let _ = self.send(Control::Stop);
        if let Err(e) = self.join() {
            tracing::warn!("impairer on {}: {e}", self.tun);
        }
    }
}

struct Runner {
    tun_name: String,
    timing: Timing,
    control: Receiver<Control>,
    wake: Arc<EventFd>,
    shared: Arc<Mutex<Shared>>,
}

impl Runner {
    fn run(self, config: ImpairConfig, ready: &Sender<Result<()>>) -> Result<()> {
        // Timer slack of 1 ns: wake-ups happen at the requested time, not up to 50 µs later.
        if let Err(e) = nix::sys::prctl::set_timerslack(1) {
            tracing::debug!("cannot set timer slack: {e}");
        }
        if self.timing.realtime && !enter_realtime() {
            tracing::debug!("SCHED_FIFO not permitted; impairer runs under the normal policy");
        }
        let setup = Tun::attach(&self.tun_name).and_then(|tun| {
            TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )
            .map(|timer| (tun, timer))
            .map_err(|e| Error::sys("creating timerfd", e))
        });
        let (tun, timer) = match setup {
            Ok(parts) => {
                let _ = ready.send(Ok(()));
                parts
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return Ok(());
            }
        };
        self.serve(&tun, &timer, Impairer::new(config))
    }

    fn serve(&self, tun: &Tun, timer: &TimerFd, mut impairer: Impairer<Vec<u8>>) -> Result<()> {
        let spin_ns = self.timing.spin.as_nanos() as u64;
        let mut buf = vec![0u8; MAX_PACKET];
        let mut armed: Option<u64> = None;
        loop {
            self.release_due(tun, &mut impairer, spin_ns);
            let wake_at = impairer
                .next_release()
                .map(|t| t.saturating_sub(spin_ns).max(1));
            if wake_at != armed {
                match wake_at {
                    Some(t) => timer.set(
                        Expiration::OneShot(timespec(t)),
                        TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                    ),
                    None => timer.unset(),
                }
                .map_err(|e| Error::sys("arming timerfd", e))?;
                armed = wake_at;
            }
            let mut fds = [
                PollFd::new(tun.as_fd(), PollFlags::POLLIN),
                PollFd::new(timer.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(Error::sys("poll", e)),
            }
            let ready = |i: usize| {
                fds[i]
                    .revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN))
            };
            let (tun_ready, timer_ready, wake_ready) = (ready(0), ready(1), ready(2));
            if timer_ready {
                // Consume the expiration; the timer is re-armed for the next release above.
                let _ = timer.wait();
                armed = None;
            }
            if wake_ready {
                let _ = self.wake.read();
                while let Ok(message) = self.control.try_recv() {
                    match message {
                        Control::Set(config) => impairer.set_config(config),
                        Control::Stop => return Ok(()),
                    }
                }
            }
            if tun_ready {
                self.read_batch(tun, &mut impairer, &mut buf)?;
            }
        }
    }

    fn read_batch(
        &self,
        tun: &Tun,
        impairer: &mut Impairer<Vec<u8>>,
        buf: &mut [u8],
    ) -> Result<()> {
        for _ in 0..READ_BATCH {
            match tun.recv(buf) {
                Ok(n) => {
                    let now = monotonic_ns();
                    let packet = &buf[..n];
                    impairer.push(now, packet.to_vec(), n, classify(packet));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format!("reading {}", self.tun_name), e)),
            }
        }
        lock(&self.shared).stats = impairer.stats();
        Ok(())
    }

    /// Writes every packet whose release time has come, busy-waiting for ones due within
    /// `spin_ns`.
    fn release_due(&self, tun: &Tun, impairer: &mut Impairer<Vec<u8>>, spin_ns: u64) {
        let mut late = Vec::new();
        let mut write_errors = 0;
        while let Some(next) = impairer.next_release() {
            let mut now = monotonic_ns();
            if next > now {
                if next - now > spin_ns {
                    break;
                }
                while now < next {
                    std::hint::spin_loop();
                    now = monotonic_ns();
                }
            }
            while let Some(released) = impairer.pop_due(now) {
                late.push(monotonic_ns().saturating_sub(released.release_at));
                if tun.send(&released.packet).is_err() {
                    write_errors += 1;
                }
            }
        }
        if !late.is_empty() || write_errors > 0 {
            let mut shared = lock(&self.shared);
            for ns in late {
                shared.lateness.saturating_record(ns);
            }
            shared.write_errors += write_errors;
            shared.stats = impairer.stats();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_summary_covers_large_values() {
        let mut shared = Shared {
            stats: ImpairStats::default(),
            write_errors: 0,
            lateness: Histogram::new_with_bounds(1, LATENESS_MAX_NS, 3).expect("bounds"),
        };
        for ns in [5_000, 15_000, 2_000_000] {
            shared.lateness.saturating_record(ns);
        }
        let lateness = shared.report().lateness;
        assert_eq!(lateness.count, 3);
        assert!(
            (lateness.mean_ns - 673_333.0).abs() < 1_000.0,
            "{lateness:?}"
        );
        assert!(lateness.max_ns.abs_diff(2_000_000) < 2_000, "{lateness:?}");
        assert_eq!(Shared::report(&shared).stats, ImpairStats::default());
    }

    #[test]
    fn monotonic_clock_advances() {
        let a = monotonic_ns();
        std::thread::sleep(Duration::from_millis(1));
        assert!(monotonic_ns() >= a + 1_000_000);
    }
}
