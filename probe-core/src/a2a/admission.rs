//! Sessions negotiated over the control plane, as the STAMP reflector sees them.
//!
//! The control plane registers each negotiated test's client address and SSID here; the
//! reflector looks every datagram up (source IP and SSID) and counts what it received,
//! reflected and dropped for that session, so that the far end can report its own view of the
//! test. With `required` set (`probe serve --require-auth`), a datagram of no registered
//! session is dropped and counted (`not_negotiated`); otherwise plain RFC 8762 senders keep
//! being answered and only the negotiated sessions get per-session counters.
//!
//! A negotiated session is also where a per-session key of authenticated STAMP belongs: the
//! registration returns the session's [`SessionStats`], the place to hang it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::throughput::ThroughputSink;

/// What the reflector saw of one negotiated session.
#[derive(Debug, Default)]
pub struct SessionStats {
    received: AtomicU64,
    reflected: AtomicU64,
    rate_limited: AtomicU64,
}

/// A snapshot of [`SessionStats`] (the far end's view of a test toward it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionCounts {
    /// Datagrams of the session that reached the reflector.
    pub received: u64,
    /// Replies sent.
    pub reflected: u64,
    /// Datagrams dropped by the per-source rate limit.
    pub rate_limited: u64,
}

impl SessionStats {
    /// The counts so far.
    pub fn snapshot(&self) -> SessionCounts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SessionCounts {
            received: g(&self.received),
            reflected: g(&self.reflected),
            rate_limited: g(&self.rate_limited),
        }
    }

    pub(crate) fn count_received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_reflected(&self) {
        self.reflected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }
}

type Key = (IpAddr, u16);

/// The negotiated sessions shared by the control plane and the reflector threads.
#[derive(Debug, Default)]
pub struct Admission {
    required: bool,
    entries: RwLock<HashMap<Key, Arc<SessionStats>>>,
    len: AtomicUsize,
    /// Counting receivers of negotiated UDP throughput tests, by session id.
    throughput: RwLock<HashMap<u64, Arc<ThroughputSink>>>,
}

impl Admission {
    /// An empty registry; `required` drops every datagram of no registered session.
    pub fn new(required: bool) -> Self {
        Admission {
            required,
            ..Admission::default()
        }
    }

    /// Whether only registered sessions are answered.
    pub fn required(&self) -> bool {
        self.required
    }

    /// Registers the session of `client` (its address as the control plane saw it) and
    /// `ssid`; returns its counters (fresh, or the existing ones when registered already).
    pub fn register(&self, client: IpAddr, ssid: u16) -> Arc<SessionStats> {
        let mut map = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = Arc::clone(map.entry((client.to_canonical(), ssid)).or_default());
        self.len.store(map.len(), Ordering::Relaxed);
        stats
    }

    /// Forgets the session of `client` and `ssid`.
    pub fn unregister(&self, client: IpAddr, ssid: u16) {
        let mut map = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&(client.to_canonical(), ssid));
        self.len.store(map.len(), Ordering::Relaxed);
    }

    /// The counters of the registered session of `src` and `ssid`, if any.
    pub fn lookup(&self, src: IpAddr, ssid: u16) -> Option<Arc<SessionStats>> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(src.to_canonical(), ssid))
            .cloned()
    }

    /// Registers the counting receiver of the UDP throughput session `session`: the
    /// responder counts its datagrams there instead of reflecting them.
    pub fn register_throughput(&self, session: u64, sink: Arc<ThroughputSink>) {
        self.throughput
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(session, sink);
    }

    /// Forgets the counting receiver of `session`.
    pub fn unregister_throughput(&self, session: u64) {
        self.throughput
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&session);
    }

    /// The counting receiver of `session`, if one is registered.
    pub fn lookup_throughput(&self, session: u64) -> Option<Arc<ThroughputSink>> {
        self.throughput
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&session)
            .cloned()
    }

    /// Sessions registered now.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no session is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_sessions_are_found_by_canonical_address_and_ssid() {
        let a = Admission::new(true);
        assert!(a.required() && a.is_empty());
        let v4: IpAddr = "192.0.2.7".parse().expect("ip");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        let s = a.register(mapped, 9);
        s.count_received();
        assert_eq!(a.len(), 1);
        let found = a.lookup(v4, 9).expect("found under the IPv4 form");
        assert_eq!(found.snapshot().received, 1);
        assert!(a.lookup(v4, 10).is_none());
        assert!(a.lookup("192.0.2.8".parse().expect("ip"), 9).is_none());
        a.unregister(v4, 9);
        assert!(a.lookup(v4, 9).is_none() && a.is_empty());
    }
}
