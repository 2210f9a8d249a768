//! Who may run a TCP test on 49153/tcp: one function, [`Admission::admit`], that every
//! request goes through. [`Gate`] is the sans-IO rule set (maximum duration, one throughput
//! test at a time, an optional cookie check); [`LocalAdmission`] runs it on the clock.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::request::{Mode, Refusal, Request};

/// Decides whether a request may run. The control plane can supply its own (for example
/// one that only admits cookies it issued) in place of [`LocalAdmission`].
pub trait Admission: Send + Sync {
    /// Admits `request` from `peer`, or says why not. An admitted control request holds the
    /// throughput slot until [`Admission::finished`] is called with its test id.
    fn admit(&self, request: &Request, peer: SocketAddr) -> Result<(), Refusal>;
    /// The test `test_id` ended: its slot is free.
    fn finished(&self, test_id: u64);
}

/// Checks a session cookie and its peer (the control plane's hook).
pub type CookieCheck = Box<dyn Fn(&[u8; 16], SocketAddr) -> bool + Send + Sync>;

/// The rules, as a state machine fed the time.
pub struct Gate {
    max_duration: Duration,
    cookie: Option<CookieCheck>,
    running: Option<Running>,
}

#[derive(Clone, Copy, Debug)]
struct Running {
    test_id: u64,
    ends: Instant,
}

/// Time a running test keeps its slot after its planned end (results, stragglers).
pub const GRACE: Duration = Duration::from_secs(5);

impl Gate {
    /// Rules with this maximum duration, no cookie check.
    pub fn new(max_duration: Duration) -> Self {
        Gate {
            max_duration,
            cookie: None,
            running: None,
        }
    }

    /// Requires every throughput request to carry a cookie `check` accepts.
    #[must_use]
    pub fn with_cookie_check(mut self, check: CookieCheck) -> Self {
        self.cookie = Some(check);
        self
    }

    /// The decision at `now`.
    ///
    /// - connect probes are always admitted (they hold nothing);
    /// - a control request beyond the maximum duration is refused naming the limit; while
    ///   another test holds the slot it is refused as busy with the seconds left; else it
    ///   takes the slot until its duration plus [`GRACE`] has passed or it finishes;
    /// - a data request is admitted only for the test holding the slot.
    pub fn admit_at(
        &mut self,
        request: &Request,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<(), Refusal> {
        if request.mode == Mode::Connect {
            return Ok(());
        }
        if let Some(check) = &self.cookie
            && !check(&request.cookie, peer)
        {
            return Err(Refusal::Unauthorized);
        }
        if self.running.is_some_and(|r| r.ends <= now) {
            self.running = None;
        }
        match request.mode {
            Mode::Control => {
                if request.duration > self.max_duration {
                    return Err(Refusal::DurationTooLong {
                        limit_ms: u32::try_from(self.max_duration.as_millis()).unwrap_or(u32::MAX),
                    });
                }
                if let Some(r) = self.running {
                    let left = r.ends.saturating_duration_since(now);
                    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                    return Err(Refusal::Busy {
                        retry_after_s: u32::try_from(secs).unwrap_or(u32::MAX).max(1),
                    });
                }
                self.running = Some(Running {
                    test_id: request.test_id,
                    ends: now + request.duration + GRACE,
                });
                Ok(())
            }
            _ => match self.running {
                Some(r) if r.test_id == request.test_id => Ok(()),
                _ => Err(Refusal::UnknownTest),
            },
        }
    }

    /// How long the test holding the slot keeps it (its duration and [`GRACE`]), if one does
    /// at `now`.
    pub fn busy_for(&mut self, now: Instant) -> Option<Duration> {
        if self.running.is_some_and(|r| r.ends <= now) {
            self.running = None;
        }
        self.running.map(|r| r.ends.saturating_duration_since(now))
    }

    /// Frees the slot if `test_id` holds it.
    pub fn finish(&mut self, test_id: u64) {
        if self.running.is_some_and(|r| r.test_id == test_id) {
            self.running = None;
        }
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("max_duration", &self.max_duration)
            .field("cookie_check", &self.cookie.is_some())
            .field("running", &self.running)
            .finish()
    }
}

/// [`Gate`] behind a lock, on the monotonic clock.
#[derive(Debug)]
pub struct LocalAdmission(Mutex<Gate>);

impl LocalAdmission {
    /// Admission by `gate`.
    pub fn new(gate: Gate) -> Self {
        LocalAdmission(Mutex::new(gate))
    }
}

impl Admission for LocalAdmission {
    fn admit(&self, request: &Request, peer: SocketAddr) -> Result<(), Refusal> {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.admit_at(request, peer, Instant::now())
    }

    fn finished(&self, test_id: u64) {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.finish(test_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(mode: Mode, test_id: u64, secs: u64) -> Request {
        Request {
            mode,
            stream: 0,
            duration: Duration::from_secs(secs),
            interval: Duration::from_secs(1),
            test_id,
            cookie: [0; 16],
            streams: 1,
        }
    }

    fn peer() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], 40_000))
    }

    #[test]
    fn one_throughput_test_at_a_time_and_busy_names_the_seconds_left() {
        let mut g = Gate::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(g.admit_at(&req(Mode::Control, 1, 10), peer(), t0), Ok(()));
        assert_eq!(g.admit_at(&req(Mode::Sink, 1, 10), peer(), t0), Ok(()));
        // 10 s plus the 5 s grace, 2.5 s in: 12.5 s left, rounded up.
        let later = t0 + Duration::from_millis(2_500);
        assert_eq!(
            g.admit_at(&req(Mode::Control, 2, 1), peer(), later),
            Err(Refusal::Busy { retry_after_s: 13 })
        );
        assert_eq!(
            g.admit_at(&req(Mode::Source, 2, 1), peer(), later),
            Err(Refusal::UnknownTest)
        );
        // Connect probes never wait.
        assert_eq!(g.admit_at(&req(Mode::Connect, 9, 0), peer(), later), Ok(()));
        assert_eq!(g.busy_for(later), Some(Duration::from_millis(12_500)));
        g.finish(1);
        assert_eq!(g.busy_for(later), None);
        assert_eq!(g.admit_at(&req(Mode::Control, 2, 1), peer(), later), Ok(()));
        // A test that never finished frees the slot after its end and the grace.
        let much_later = later + Duration::from_secs(7);
        assert_eq!(
            g.admit_at(&req(Mode::Control, 3, 1), peer(), much_later),
            Ok(())
        );
    }

    #[test]
    fn duration_limit_and_cookie_check() {
        let mut g = Gate::new(Duration::from_secs(30));
        let e = g
            .admit_at(&req(Mode::Control, 1, 31), peer(), Instant::now())
            .expect_err("too long");
        assert_eq!(e, Refusal::DurationTooLong { limit_ms: 30_000 });
        assert!(e.to_string().contains("limit of 30 s"), "{e}");
        let mut g =
            Gate::new(Duration::from_secs(30)).with_cookie_check(Box::new(|c, _| c[0] == 7));
        let mut r = req(Mode::Control, 1, 1);
        assert_eq!(
            g.admit_at(&r, peer(), Instant::now()),
            Err(Refusal::Unauthorized)
        );
        r.cookie[0] = 7;
        assert_eq!(g.admit_at(&r, peer(), Instant::now()), Ok(()));
    }
}
