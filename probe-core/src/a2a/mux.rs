//! [`SessionMux`]: many [`SenderSession`]s on one socket, sans-IO.
//!
//! An agent measuring thousands of peers runs thousands of A2A sessions at once. Giving each
//! its own socket, timer and task costs a file descriptor, a kernel timer and an epoll entry
//! per peer, and a wake-up per packet for each. The multiplexer instead keeps every session in
//! one table and serves them from one socket and one timer:
//!
//! - **demultiplexing**: a reply goes to the session toward its source address and port; when
//!   several sessions share a peer, the reply's SSID (the test SSID or its hello SSID, at the
//!   offset of the session's mode) picks one. A reply that matches no session is dropped and
//!   counted ([`SessionMux::unmatched`]);
//! - **one timer**: the sessions' deadlines ([`SenderSession::poll_timeout`]) live in one heap;
//!   [`SessionMux::poll_timeout`] is the earliest, and [`SessionMux::handle_timeout`] queues
//!   every session due. Stale heap entries (a session re-armed earlier or later) are skipped
//!   when they surface, so re-arming costs one push;
//! - **transmit ids**: the socket numbers every datagram it sends; the multiplexer remembers
//!   which session sent each of the last [`TX_OWNERS`] ids to hand the kernel's TX timestamps
//!   back to it;
//! - **ICMP errors** name the original destination: every session toward it hears of them.
//!
//! The sessions are fed exactly as a driver with one socket per session feeds them: a session
//! sees its replies, its TX timestamps, its ICMP errors, and time. A session that is done
//! leaves the table through [`SessionMux::poll_done`] with the caller's tag (what to tell
//! whoever waits for it); [`SessionMux::remove`] takes one out early (a run cut short).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;

use foldhash::fast::RandomState;

use super::{HELLO_SSID_FLIP, SenderSession, Transmit};
use crate::io::IcmpError;
use crate::time::Nanos;

/// Transmit ids remembered to route TX timestamps: a second of 4,000 packets per second, with
/// room (the timestamps arrive microseconds after the send).
pub const TX_OWNERS: usize = 1 << 13;

/// Offset of the SSID in an unauthenticated reflector packet.
const SSID_AT: usize = 14;
/// Offset of the SSID in an authenticated reflector packet.
const AUTH_SSID_AT: usize = 26;

/// The multiplexer's name for one of its sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(u64);

impl SessionKey {
    /// The key as a number (unique for the multiplexer's lifetime).
    pub fn get(self) -> u64 {
        self.0
    }
}

#[derive(Debug)]
struct Entry<T> {
    /// Boxed: the table's spare capacity then costs a pointer per slot, not a session.
    session: Box<SenderSession>,
    peer: SocketAddr,
    ssid: u16,
    ssid_at: usize,
    tag: T,
    /// The deadline the heap holds for it, if any.
    armed: Option<Nanos>,
    /// In the queue of sessions to serve.
    queued: bool,
    /// `handle_timeout` is owed before its next transmit.
    needs_time: bool,
}

impl<T> Entry<T> {
    /// Queues the session (its entry, `key`) to be served, once, with time owed first.
    fn enqueue(&mut self, key: SessionKey, ready: &mut VecDeque<SessionKey>) {
        if !self.queued {
            self.queued = true;
            self.needs_time = true;
            ready.push_back(key);
        }
    }
}

/// Many sender sessions on one socket (see the module documentation). `T` is the caller's
/// tag of each session, handed back when it is done.
#[derive(Debug)]
pub struct SessionMux<T> {
    /// Looked up several times per datagram: foldhash, not the standard hasher (the keys are the
    /// multiplexer's own numbers and the configured peers' addresses, which a sender of
    /// datagrams cannot choose, so flooding the tables with collisions is not a concern).
    sessions: HashMap<SessionKey, Entry<T>, RandomState>,
    by_peer: HashMap<SocketAddr, Vec<SessionKey>, RandomState>,
    timers: BinaryHeap<Reverse<(Nanos, SessionKey)>>,
    /// Sessions to serve: time to let pass, datagrams to send, deadlines to re-arm.
    ready: VecDeque<SessionKey>,
    done: VecDeque<SessionKey>,
    tx_owners: Box<[(u32, SessionKey)]>,
    next_key: u64,
    unmatched: u64,
}

impl<T> Default for SessionMux<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SessionMux<T> {
    /// An empty multiplexer.
    pub fn new() -> Self {
        SessionMux {
            sessions: HashMap::default(),
            by_peer: HashMap::default(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            done: VecDeque::new(),
            tx_owners: vec![(u32::MAX, SessionKey(u64::MAX)); TX_OWNERS].into_boxed_slice(),
            next_key: 0,
            unmatched: 0,
        }
    }

    /// Sessions in the table (running or done and not yet collected).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Datagrams that matched no session (dropped).
    pub fn unmatched(&self) -> u64 {
        self.unmatched
    }

    /// Whether a session toward `peer` already uses `ssid` (as its test or hello SSID): pick
    /// another for a new session toward it.
    pub fn ssid_in_use(&self, peer: SocketAddr, ssid: u16) -> bool {
        self.by_peer.get(&peer).is_some_and(|keys| {
            keys.iter()
                .filter_map(|k| self.sessions.get(k))
                .any(|e| e.ssid == ssid || e.ssid == ssid ^ HELLO_SSID_FLIP)
        })
    }

    /// Adds `session` toward `peer`; it is served at once (its hellos are due).
    pub fn insert(&mut self, peer: SocketAddr, session: SenderSession, tag: T) -> SessionKey {
        let key = SessionKey(self.next_key);
        self.next_key += 1;
        let config = session.sender().config();
        let (ssid, ssid_at) = (
            config.ssid,
            if config.key.is_some() {
                AUTH_SSID_AT
            } else {
                SSID_AT
            },
        );
        self.sessions.insert(
            key,
            Entry {
                session: Box::new(session),
                peer,
                ssid,
                ssid_at,
                tag,
                armed: None,
                queued: false,
                needs_time: true,
            },
        );
        self.by_peer.entry(peer).or_default().push(key);
        self.enqueue(key);
        key
    }

    /// The session of `key`, while it is in the table.
    pub fn get(&self, key: SessionKey) -> Option<&SenderSession> {
        self.sessions.get(&key).map(|e| &*e.session)
    }

    /// Takes a session out of the table (done or not), with its tag.
    pub fn remove(&mut self, key: SessionKey) -> Option<(SenderSession, T)> {
        let e = self.sessions.remove(&key)?;
        if let Some(keys) = self.by_peer.get_mut(&e.peer) {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                self.by_peer.remove(&e.peer);
            }
        }
        // Its heap and queue entries are skipped when they surface.
        Some((*e.session, e.tag))
    }

    /// A session that is done, taken out of the table with its tag.
    pub fn poll_done(&mut self) -> Option<(SessionKey, SenderSession, T)> {
        while let Some(key) = self.done.pop_front() {
            if let Some((s, tag)) = self.remove(key) {
                return Some((key, s, tag));
            }
        }
        None
    }

    fn enqueue(&mut self, key: SessionKey) {
        if let Some(e) = self.sessions.get_mut(&key) {
            e.enqueue(key, &mut self.ready);
        }
    }

    /// Which session `bytes` from `from` belongs to.
    fn route(&self, from: SocketAddr, bytes: &[u8]) -> Option<SessionKey> {
        let keys = self.by_peer.get(&from)?;
        if let [only] = keys[..] {
            return Some(only);
        }
        keys.iter().copied().find(|k| {
            self.sessions.get(k).is_some_and(|e| {
                bytes
                    .get(e.ssid_at..e.ssid_at + 2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]))
                    .is_some_and(|s| s == e.ssid || s == e.ssid ^ HELLO_SSID_FLIP)
            })
        })
    }

    /// A datagram from `from`, received at `rx` (kernel time when known), read by user space
    /// at `user_rx` (`None` when it was read at the reader's pace, not when it came: then no
    /// user-space round trip is taken from it). Returns the session it went to; `None` when
    /// none matched (dropped).
    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        rx: Nanos,
        user_rx: Option<Nanos>,
    ) -> Option<SessionKey> {
        let Some(key) = self.route(from, bytes) else {
            self.unmatched += 1;
            return None;
        };
        let e = self.sessions.get_mut(&key)?;
        e.session.handle_datagram_at(bytes, rx, user_rx);
        e.enqueue(key, &mut self.ready);
        Some(key)
    }

    /// Remembers that the socket gave datagram `t` of session `key` the transmit id `id`.
    pub fn note_tx_id(&mut self, key: SessionKey, t: &Transmit, id: u32) {
        if let Some(e) = self.sessions.get_mut(&key) {
            e.session.note_tx_id(t, id);
            self.tx_owners[id as usize % TX_OWNERS] = (id, key);
        }
    }

    /// A kernel TX timestamp for transmit id `id`. The session is not queued to be served:
    /// a timestamp changes neither what it sends nor when it needs the clock
    /// ([`SenderSession::handle_tx_timestamp`]), and serving it again for each would cost a
    /// pass over its state per datagram.
    pub fn handle_tx_timestamp(&mut self, id: u32, at: Nanos) {
        let (held, key) = self.tx_owners[id as usize % TX_OWNERS];
        if held != id {
            return;
        }
        if let Some(e) = self.sessions.get_mut(&key) {
            e.session.handle_tx_timestamp(id, at);
        }
    }

    /// An ICMP error about a datagram sent to `e.original_dst`: every session toward it.
    pub fn handle_icmp_error(&mut self, e: &IcmpError) {
        let Some(keys) = e.original_dst.and_then(|d| self.by_peer.get(&d)).cloned() else {
            return;
        };
        for key in keys {
            if let Some(entry) = self.sessions.get_mut(&key) {
                entry.session.handle_icmp_error(e);
                entry.enqueue(key, &mut self.ready);
            }
        }
    }

    /// The earliest instant a session needs the clock; `now`-or-earlier when sessions wait to
    /// be served. `None` when the table is empty.
    pub fn poll_timeout(&mut self) -> Option<Nanos> {
        if !self.ready.is_empty() {
            return Some(Nanos::ZERO);
        }
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if self.sessions.get(&key).is_some_and(|e| e.armed == Some(at)) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Lets time pass: every session whose deadline is at or before `now` is queued to be
    /// served by [`SessionMux::poll_transmit`].
    pub fn handle_timeout(&mut self, now: Nanos) {
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(e) = self.sessions.get_mut(&key)
                && e.armed == Some(at)
            {
                e.armed = None;
                e.enqueue(key, &mut self.ready);
            }
        }
    }

    /// The next datagram due at `now` from any queued session, written into `buf`, with its
    /// destination and session. `None` when every queued session has been served (each is
    /// then re-armed for its next deadline, or moved to the done queue).
    pub fn poll_transmit(
        &mut self,
        now: Nanos,
        buf: &mut [u8],
    ) -> Option<(SessionKey, SocketAddr, Transmit)> {
        while let Some(&key) = self.ready.front() {
            let Some(e) = self.sessions.get_mut(&key) else {
                self.ready.pop_front();
                continue;
            };
            if e.needs_time {
                e.needs_time = false;
                e.session.handle_timeout(now);
                // Interval reports are not asked of multiplexed sessions; drop any.
                while e.session.poll_report().is_some() {}
            }
            if !e.session.is_done()
                && let Some(t) = e.session.poll_transmit(now, buf)
            {
                return Some((key, e.peer, t));
            }
            self.ready.pop_front();
            e.queued = false;
            match e.session.poll_timeout() {
                Some(at) if !e.session.is_done() => {
                    if e.armed != Some(at) {
                        e.armed = Some(at);
                        self.timers.push(Reverse((at, key)));
                    }
                }
                _ => {
                    e.armed = None;
                    self.done.push_back(key);
                }
            }
        }
        None
    }
}

#[cfg(test)]
#[path = "mux_tests.rs"]
mod tests;
