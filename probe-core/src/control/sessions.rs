//! The responder's negotiated sessions, sans-IO: admission against the operator's limits,
//! the exclusive class of throughput tests, expiry, and release when a client's control
//! connection goes away. Times are [`Instant`]s handed in by the caller.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::messages::{ErrorCode, ErrorMessage, PROTOCOL_VERSION};
use super::negotiation::{TestKind, TestRequest};

/// How long a session outlives its planned test (late replies, the results request).
pub const SESSION_GRACE: Duration = Duration::from_secs(15);
/// How long a test of unknown length (a counted flood) may hold its session.
pub const UNKNOWN_LENGTH_HOLD: Duration = Duration::from_secs(60);
/// Expired session ids remembered, to tell "expired" from "unknown".
const EXPIRED_MEMORY: usize = 1024;

/// The operator's limits on negotiated tests (`probe serve --max-*`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Highest packet rate of one test, packets per second (`--max-rate`).
    pub max_rate_pps: Option<f64>,
    /// Longest test (`--max-duration`).
    pub max_duration: Option<Duration>,
    /// Most negotiated sessions at once (`--max-sessions`).
    pub max_sessions: usize,
    /// Highest bandwidth of one test, bits per second of UDP payload (`--max-bandwidth`).
    pub max_bandwidth_bps: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rate_pps: None,
            max_duration: None,
            max_sessions: 65_536,
            max_bandwidth_bps: None,
        }
    }
}

/// One negotiated session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The session id.
    pub id: u64,
    /// The control connection that negotiated it (only that connection may use it).
    pub owner: u64,
    /// The client's address as the control plane saw it.
    pub client: IpAddr,
    /// The request granted.
    pub request: TestRequest,
    /// When the test's sending should be over.
    pub ends: Instant,
    /// When the session is forgotten.
    pub expires: Instant,
}

/// Why a session id cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No such session (never granted, or granted to another connection).
    Unknown,
    /// The session existed and expired.
    Expired,
}

/// The table of negotiated sessions.
#[derive(Debug)]
pub struct SessionTable {
    limits: Limits,
    sessions: HashMap<u64, Session>,
    expired: VecDeque<u64>,
}

impl SessionTable {
    /// An empty table enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        SessionTable {
            limits,
            sessions: HashMap::new(),
            expired: VecDeque::new(),
        }
    }

    /// The limits enforced.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Admits `req` from connection `owner` at `client` under session id `id` (the caller
    /// draws it at random), or refuses it with an error naming the limit and its value.
    /// Expired sessions are dropped first.
    pub fn admit(
        &mut self,
        id: u64,
        owner: u64,
        client: IpAddr,
        req: TestRequest,
        now: Instant,
    ) -> Result<&Session, ErrorMessage> {
        self.expire(now);
        check_request(&req, &self.limits)?;
        if req.kind.exclusive()
            && let Some((left, kind)) = self.exclusive_left(now)
        {
            return Err(busy(left, kind.as_str()));
        }
        if self.sessions.len() >= self.limits.max_sessions {
            return Err(limit(
                "--max-sessions",
                &self.limits.max_sessions.to_string(),
                &format!("{} sessions are open", self.sessions.len()),
            ));
        }
        let hold = req.planned().unwrap_or(UNKNOWN_LENGTH_HOLD);
        let ends = now + hold;
        let session = Session {
            id,
            owner,
            client,
            request: req,
            ends,
            expires: ends + SESSION_GRACE,
        };
        Ok(self.sessions.entry(id).or_insert(session))
    }

    /// How long the exclusive (throughput) session running now has left before its planned
    /// end, and its kind; `None` when none runs.
    pub fn exclusive_left(&self, now: Instant) -> Option<(Duration, TestKind)> {
        self.sessions
            .values()
            .filter(|s| s.request.kind.exclusive() && now < s.expires)
            .max_by_key(|s| s.ends)
            .map(|s| (s.ends.saturating_duration_since(now), s.request.kind))
    }

    /// The session `id` as connection `owner` may use it.
    pub fn get(&self, id: u64, owner: u64, now: Instant) -> Result<&Session, Lookup> {
        match self.sessions.get(&id) {
            Some(s) if s.owner == owner && now < s.expires => Ok(s),
            Some(s) if s.owner == owner => Err(Lookup::Expired),
            None if self.expired.contains(&id) => Err(Lookup::Expired),
            _ => Err(Lookup::Unknown),
        }
    }

    /// The session `id` whoever negotiated it (for the test servers that check what a session
    /// granted: a QUIC test connection or a TCP test names its session; the caller checks the
    /// client's address).
    pub fn find(&self, id: u64, now: Instant) -> Result<&Session, Lookup> {
        match self.sessions.get(&id) {
            Some(s) if now < s.expires => Ok(s),
            Some(_) => Err(Lookup::Expired),
            None if self.expired.contains(&id) => Err(Lookup::Expired),
            None => Err(Lookup::Unknown),
        }
    }

    /// Ends session `id`; returns it.
    pub fn release(&mut self, id: u64) -> Option<Session> {
        self.sessions.remove(&id)
    }

    /// Ends every session of connection `owner` (it closed or vanished); returns them.
    pub fn release_owner(&mut self, owner: u64) -> Vec<Session> {
        let ids: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| s.owner == owner)
            .map(|s| s.id)
            .collect();
        ids.into_iter().filter_map(|id| self.release(id)).collect()
    }

    /// Drops sessions past their expiry; returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<Session> {
        let ids: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| now >= s.expires)
            .map(|s| s.id)
            .collect();
        let gone: Vec<Session> = ids.into_iter().filter_map(|id| self.release(id)).collect();
        for s in &gone {
            if self.expired.len() >= EXPIRED_MEMORY {
                self.expired.pop_front();
            }
            self.expired.push_back(s.id);
        }
        gone
    }
}

/// Checks one request against the limits (and what this build can run).
fn check_request(req: &TestRequest, limits: &Limits) -> Result<(), ErrorMessage> {
    if req.kind == TestKind::Unknown {
        return Err(refusal(
            ErrorCode::Unsupported,
            "unsupported test kind: this responder runs stamp, udp_throughput, tcp_throughput, \
             tcp_connect, quic_rtt and quic_throughput tests"
                .into(),
        ));
    }
    if let (Some(max), Some(planned)) = (limits.max_duration, req.planned())
        && planned > max
    {
        return Err(limit(
            "--max-duration",
            &format!("{max:?}"),
            &format!("the test would run {planned:?}"),
        ));
    }
    if let Some(max) = limits.max_rate_pps {
        match req.rate_pps() {
            Some(pps) if pps > max => {
                return Err(limit(
                    "--max-rate",
                    &format!("{max} pps"),
                    &format!("{pps:.1} pps asked"),
                ));
            }
            None => {
                return Err(limit(
                    "--max-rate",
                    &format!("{max} pps"),
                    "a flood (--rate max) has no bound",
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(max) = limits.max_bandwidth_bps {
        let bps = req.rate_pps().map(|pps| pps * f64::from(req.size) * 8.0);
        match bps {
            Some(bps) if bps > max as f64 => {
                return Err(limit(
                    "--max-bandwidth",
                    &format!("{max} bit/s"),
                    &format!("{bps:.0} bit/s asked"),
                ));
            }
            None => {
                return Err(limit(
                    "--max-bandwidth",
                    &format!("{max} bit/s"),
                    "a flood (--rate max) has no bound",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The refusal of an exclusive test while another (`what`) runs for `left` more.
pub fn busy(left: Duration, what: &str) -> ErrorMessage {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    let secs = secs.max(1);
    refusal(
        ErrorCode::Busy,
        format!(
            "busy, retry after {secs} s: a {what} test is running and throughput tests run one \
             at a time"
        ),
    )
}

fn refusal(code: ErrorCode, message: String) -> ErrorMessage {
    ErrorMessage {
        code,
        message,
        version: Some(PROTOCOL_VERSION),
    }
}

/// A refusal naming the limit (the serve flag) and its value.
fn limit(flag: &str, value: &str, why: &str) -> ErrorMessage {
    ErrorMessage {
        code: ErrorCode::LimitExceeded,
        message: format!(
            "over the responder's limit {flag} {value}: {why}; ask for less or ask its operator"
        ),
        version: Some(PROTOCOL_VERSION),
    }
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
