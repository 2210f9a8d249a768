//! The TCP test server's admission tied to the control plane's sessions: a negotiated TCP
//! throughput test is admitted by the cookie its grant carried (from the client's address,
//! within the duration granted); a test not negotiated goes through the server's own
//! [`Gate`], and is refused with `--require-auth`. Throughput tests are one exclusive class
//! across both: a negotiated one (UDP or TCP) makes an un-negotiated TCP test busy, and an
//! un-negotiated TCP test makes the grant of a throughput test busy.

use std::net::SocketAddr;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::test_service::Tests;
use crate::control::negotiation::{COOKIE_LEN, TestKind};
use crate::tcp::{Admission, Gate, Mode, Refusal, Request};

/// Slack on the duration of a negotiated TCP test (the client's rounding).
const DURATION_SLACK: Duration = Duration::from_secs(1);

/// [`Admission`] of the TCP test server through the control plane's sessions (see the
/// module documentation); made by [`super::ControlServer::tcp_admission`].
pub struct ControlTcpAdmission {
    pub(super) tests: Arc<Tests>,
}

impl std::fmt::Debug for ControlTcpAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlTcpAdmission")
            .finish_non_exhaustive()
    }
}

impl Admission for ControlTcpAdmission {
    fn admit(&self, request: &Request, peer: SocketAddr) -> Result<(), Refusal> {
        let outcome = self.tests.admit_tcp(request, peer, Instant::now());
        if let Err(r) = &outcome {
            tracing::debug!("tcp {peer}: {} refused: {r}", request.mode);
        }
        outcome
    }

    fn finished(&self, test_id: u64) {
        if let Some(g) = self.tests.gate_lock().as_mut() {
            g.finish(test_id);
        }
    }
}

/// Whole seconds of `d`, rounded up, at least 1.
fn retry_after(d: Duration) -> u32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX).max(1)
}

/// Compares cookies in constant time.
fn same(a: &[u8; COOKIE_LEN], b: &[u8; COOKIE_LEN]) -> bool {
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tests {
    pub(super) fn gate_lock(&self) -> MutexGuard<'_, Option<Gate>> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long the un-negotiated TCP throughput test holding the TCP server's slot keeps it.
    pub(super) fn tcp_gate_busy(&self) -> Option<Duration> {
        self.gate_lock().as_mut()?.busy_for(Instant::now())
    }

    /// The decision on one TCP request at `now`.
    pub(super) fn admit_tcp(
        &self,
        request: &Request,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<(), Refusal> {
        if request.cookie == [0; COOKIE_LEN] {
            return self.admit_plain(request, peer, now);
        }
        self.sweep();
        let id = self
            .extras()
            .iter()
            .find(|(_, e)| e.cookie.is_some_and(|c| same(&c, &request.cookie)))
            .map(|(id, _)| *id);
        let granted = id.and_then(|id| {
            self.table()
                .find(id, now)
                .ok()
                .map(|s| (id, s.client, s.request.kind, s.request.planned(), s.ends))
        });
        let Some((id, client, kind, planned, ends)) = granted else {
            return Err(Refusal::Unauthorized);
        };
        if client != peer.ip().to_canonical() || kind != TestKind::TcpThroughput {
            return Err(Refusal::Unauthorized);
        }
        let mut extras = self.extras();
        let Some(e) = extras.get_mut(&id) else {
            return Err(Refusal::Unauthorized);
        };
        match request.mode {
            Mode::Connect => Ok(()),
            Mode::Control => {
                if let Some(p) = planned
                    && request.duration > p + DURATION_SLACK
                {
                    return Err(Refusal::DurationTooLong {
                        limit_ms: u32::try_from(p.as_millis()).unwrap_or(u32::MAX),
                    });
                }
                match e.tcp_test {
                    Some(t) if t != request.test_id => Err(Refusal::Busy {
                        retry_after_s: retry_after(ends.saturating_duration_since(now)),
                    }),
                    _ => {
                        e.tcp_test = Some(request.test_id);
                        Ok(())
                    }
                }
            }
            Mode::Sink | Mode::Source if e.tcp_test == Some(request.test_id) => Ok(()),
            Mode::Sink | Mode::Source => Err(Refusal::UnknownTest),
        }
    }

    /// A request without a cookie: refused under `--require-auth`, busy while a negotiated
    /// throughput test runs, else the gate's rules.
    fn admit_plain(
        &self,
        request: &Request,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<(), Refusal> {
        if self.config.admission.required() {
            return Err(Refusal::Unauthorized);
        }
        if request.mode == Mode::Control
            && let Some((left, _)) = self.table().exclusive_left(now)
        {
            return Err(Refusal::Busy {
                retry_after_s: retry_after(left),
            });
        }
        match self.gate_lock().as_mut() {
            Some(g) => g.admit_at(request, peer, now),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_compare_whole_and_waits_round_up() {
        let a = [7_u8; COOKIE_LEN];
        let mut b = a;
        assert!(same(&a, &b));
        b[COOKIE_LEN - 1] ^= 1;
        assert!(!same(&a, &b));
        assert_eq!(retry_after(Duration::ZERO), 1);
        assert_eq!(retry_after(Duration::from_millis(2_001)), 3);
        assert_eq!(retry_after(Duration::from_secs(4)), 4);
    }
}
