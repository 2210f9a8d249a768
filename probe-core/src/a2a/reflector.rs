//! The STAMP Session-Reflector (RFC 8762 section 4.3, stateful), sans-IO.
//!
//! The caller hands each received datagram with its source, receive time and TTL, plus the time
//! it expects to send the answer; the reflector writes the reply into the caller's buffer or
//! says why it drops the datagram. Sessions are keyed by (source address, source port, SSID) and
//! each has its own reflector sequence counter from 0, so a sender can tell forward loss
//! (gaps in the reflector numbers) from reverse loss.
//!
//! Policy, in the order applied to each datagram:
//!
//! 1. Allow list ([`AllowList`]): when it is not empty, a source outside it is counted
//!    (`not_allowed`) and dropped, whatever it sent. Empty (the default) is open mode: any
//!    well-formed STAMP packet is answered, known sender or not, as RFC 8762 requires.
//! 2. A datagram shorter than a STAMP base packet (44 octets) is never answered (`junk`).
//! 3. The loop guard: nothing from the reflector's own port (`refused`).
//! 4. No amplification: the reply is exactly as long as the request, never longer; a caller's
//!    buffer too short for that is a refusal, never a truncated reply (`refused`).
//! 5. Per-source rate: each source (IPv4 address, IPv6 /64) is held to a token bucket, and
//!    sources beyond the bucket table share one (see [`RateLimiter`](super::RateLimiter)), so
//!    spraying addresses buys no fresh bursts (`rate_limited`).
//! 6. Authentication, when a [`StampKeyring`] is set ([`Reflector::set_keyring`]): a
//!    packet of the authenticated layout ([`looks_authenticated`]) from a sender holding a key
//!    is answered in authenticated mode if its HMAC is right, and dropped with no reply
//!    otherwise (`auth_failed`); an unauthenticated packet from a sender that must
//!    authenticate is dropped (`unauthenticated`). This comes before any session state is
//!    touched, so forged packets move no sequence counter.
//!
//! With an [`Admission`] registry attached ([`Reflector::set_admission`]), datagrams of sessions
//! negotiated over the control plane are counted per session, and when the registry is
//! `required` every other datagram is dropped after the junk check (`not_negotiated`).
//!
//! Bounds: the session table holds at most `max_sessions` (the least recently active is evicted
//! when a new one needs room) and sessions idle for `idle_timeout` are dropped. Sessions are only
//! a counter and a time: a forged session costs the attacker as much as it costs the reflector.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::time::Duration;

use lru::LruCache;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::DEFAULT_PORT;
use super::admission::Admission;
use super::allow_list::AllowList;
use super::rate_limit::RateLimiter;
use super::reflect_tlv::reflect_tlv_area;
use super::runtime::ConfigError;
use super::stamp_keys::StampKeyring;
use crate::time::{ClockInfo, ErrorEstimate, Nanos, NtpTimestamp};
use crate::wire::stamp::{BASE_LEN, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr};
use crate::wire::stamp_auth::{
    AUTH_BASE_LEN, AuthReflectorPacket, AuthSenderPacket, looks_authenticated,
};
use crate::wire::stamp_hmac::StampKey;

/// Idle sessions dropped per datagram at most, so that expiry work stays bounded per packet.
const EXPIRE_PER_PACKET: usize = 2;

/// Reflector settings: the defaults ([`ReflectorConfig::default`]) or built with
/// [`ReflectorConfig::builder`], which checks them.
///
/// ```
/// use std::time::Duration;
/// use probe_core::a2a::ReflectorConfig;
/// use probe_core::a2a::runtime::ConfigError;
///
/// let cfg = ReflectorConfig::builder()
///     .max_sessions(1_000)
///     .idle_timeout(Duration::from_secs(30))
///     .rate_limit_pps(5_000)
///     .rate_limit_burst(500)
///     .build()?;
/// assert_eq!((cfg.max_sessions(), cfg.rate_limit_pps()), (1_000, 5_000));
///
/// // Settings that cannot work are refused with a typed error.
/// let err = ReflectorConfig::builder().max_sessions(0).build();
/// assert_eq!(err.unwrap_err(), ConfigError::ZeroSessions);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReflectorConfig {
    max_sessions: usize,
    idle_timeout: Duration,
    rate_limit_pps: u32,
    rate_limit_burst: u32,
    max_sources: usize,
    allow: AllowList,
    loop_guard_port: Option<u16>,
    clock: ClockInfo,
}

impl Default for ReflectorConfig {
    /// 4,096 sessions idle after 60 s, 10,000 packets/s per source with bursts of 1,000,
    /// 4,096 source buckets, open mode, loop guard on port 49153, unknown clock.
    fn default() -> Self {
        ReflectorConfig {
            max_sessions: 4_096,
            idle_timeout: Duration::from_secs(60),
            rate_limit_pps: 10_000,
            rate_limit_burst: 1_000,
            max_sources: 4_096,
            allow: AllowList::OPEN,
            loop_guard_port: Some(DEFAULT_PORT),
            clock: ClockInfo::default(),
        }
    }
}

impl ReflectorConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ReflectorConfigBuilder {
        ReflectorConfigBuilder(ReflectorConfig::default())
    }

    /// A builder starting from these settings.
    pub fn to_builder(self) -> ReflectorConfigBuilder {
        ReflectorConfigBuilder(self)
    }

    /// Most sessions kept at once.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// A session silent this long is forgotten (its counter restarts at 0 if it comes back).
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Sustained packets per second answered per source; 0: no rate limiting.
    pub fn rate_limit_pps(&self) -> u32 {
        self.rate_limit_pps
    }

    /// Burst allowance per source, packets.
    pub fn rate_limit_burst(&self) -> u32 {
        self.rate_limit_burst
    }

    /// Most sources (IPv4 addresses, IPv6 /64s) with a token bucket of their own.
    pub fn max_sources(&self) -> usize {
        self.max_sources
    }

    /// Sources answered at all (open: everyone).
    pub fn allow(&self) -> &AllowList {
        &self.allow
    }

    /// The port datagrams are never answered from (`None`: no loop guard).
    pub fn loop_guard_port(&self) -> Option<u16> {
        self.loop_guard_port
    }

    /// What the reflector says about its clock.
    pub fn clock(&self) -> ClockInfo {
        self.clock
    }
}

/// Builds a [`ReflectorConfig`]; [`ReflectorConfigBuilder::build`] checks the settings.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct ReflectorConfigBuilder(ReflectorConfig);

impl ReflectorConfigBuilder {
    /// Most sessions kept at once, at least 1 (default 4,096); the least recently active is
    /// evicted when a new one needs room.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.0.max_sessions = n;
        self
    }

    /// A session silent this long is forgotten, more than zero (default 60 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.0.idle_timeout = timeout;
        self
    }

    /// Sustained packets per second answered per source (IPv4 address, IPv6 /64); 0 turns
    /// rate limiting off (default 10,000).
    pub fn rate_limit_pps(mut self, pps: u32) -> Self {
        self.0.rate_limit_pps = pps;
        self
    }

    /// Burst allowance per source, packets, at least 1 when rate limiting is on (default
    /// 1,000).
    pub fn rate_limit_burst(mut self, burst: u32) -> Self {
        self.0.rate_limit_burst = burst;
        self
    }

    /// Most sources (IPv4 addresses, IPv6 /64s) with a token bucket of their own, at least 1
    /// (default 4,096); sources beyond share one bucket. Keep it at least the session count.
    pub fn max_sources(mut self, n: usize) -> Self {
        self.0.max_sources = n;
        self
    }

    /// Answers only these sources; everything else is counted and dropped (default: open).
    pub fn allow(mut self, allow: AllowList) -> Self {
        self.0.allow = allow;
        self
    }

    /// The reflector's own port: datagrams *from* it are dropped, so two reflectors tricked
    /// into answering each other do not loop. `None` disables the guard (default 49153).
    pub fn loop_guard_port(mut self, port: impl Into<Option<u16>>) -> Self {
        self.0.loop_guard_port = port.into();
        self
    }

    /// What the reflector says about its clock (Error Estimate and clock TLV answers).
    pub fn clock(mut self, clock: ClockInfo) -> Self {
        self.0.clock = clock;
        self
    }

    /// The settings, or the first one that cannot work.
    pub fn build(self) -> Result<ReflectorConfig, ConfigError> {
        let c = self.0;
        if c.max_sessions == 0 {
            return Err(ConfigError::ZeroSessions);
        }
        if c.max_sources == 0 {
            return Err(ConfigError::ZeroSources);
        }
        if c.idle_timeout.is_zero() {
            return Err(ConfigError::ZeroIdleTimeout);
        }
        if c.rate_limit_pps > 0 && c.rate_limit_burst == 0 {
            return Err(ConfigError::ZeroBurst);
        }
        Ok(c)
    }
}

/// A datagram as received.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    /// The UDP payload.
    pub bytes: &'a [u8],
    /// Source address and port.
    pub src: SocketAddr,
    /// Receive time (kernel timestamp when available), UNIX epoch.
    pub rx: Nanos,
    /// TTL (IPv4) or hop limit (IPv6) it arrived with, when the socket reports it (the reply's
    /// Ses-Sender TTL field is 0 when `None`).
    pub ttl: Option<u8>,
}

/// Why a datagram got no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// Shorter than a STAMP base packet.
    #[error("junk: {len} octets, shorter than a STAMP packet")]
    Junk {
        /// Datagram length.
        len: usize,
    },
    /// The source port is the reflector's own (possible reflector loop).
    #[error("source port {port} is the reflector's own port")]
    LoopGuard {
        /// The source port.
        port: u16,
    },
    /// The source is not in the allow list.
    #[error("source {addr} is not in the allow list")]
    NotAllowed {
        /// The source address.
        addr: IpAddr,
    },
    /// The source IP exceeded its rate.
    #[error("source over its rate limit")]
    RateLimited,
    /// The reflector answers only negotiated sessions and this is none of them.
    #[error("source {addr} with SSID {ssid} has no session negotiated over the control plane")]
    NotNegotiated {
        /// The source address.
        addr: IpAddr,
        /// The SSID.
        ssid: u16,
    },
    /// An authenticated-mode packet whose HMAC is wrong (or from a sender with no key while
    /// authentication is required).
    #[error("authenticated STAMP packet with a wrong HMAC")]
    AuthFailed,
    /// An unauthenticated packet from a sender that must authenticate.
    #[error("unauthenticated STAMP packet from a sender that must authenticate")]
    Unauthenticated,
    /// The caller's reply buffer is shorter than the request.
    #[error("reply buffer of {available} octets, {needed} needed")]
    BufferTooSmall {
        /// Octets needed.
        needed: usize,
        /// Octets available.
        available: usize,
    },
}

/// Reflector counters (a JSON object in agent status reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReflectorCounters {
    /// Datagrams handed to the reflector.
    pub received: u64,
    /// Replies produced.
    pub reflected: u64,
    /// Datagrams from sources outside the allow list.
    pub not_allowed: u64,
    /// Datagrams too short to be STAMP (under 44 octets).
    pub junk: u64,
    /// Datagrams dropped by the per-source rate limit.
    pub rate_limited: u64,
    /// Datagrams whose source found the rate table full and drew on the shared bucket
    /// (answered or not): many of them mean `max_sources` is too small for the traffic.
    pub rate_limit_shared: u64,
    /// Idle sources' full buckets handed to new sources.
    pub rate_limit_recycled: u64,
    /// Datagrams dropped by the loop guard or for a short reply buffer.
    pub refused: u64,
    /// Sessions created.
    pub sessions_created: u64,
    /// Sessions evicted to make room (table full).
    pub evicted: u64,
    /// Sessions dropped after `idle_timeout`.
    pub expired: u64,
    /// Sessions currently held.
    pub active_sessions: u64,
    /// Datagrams dropped because no session was negotiated for them over the control plane
    /// (`probe serve --require-auth`).
    pub not_negotiated: u64,
    /// Replies sent in authenticated mode (part of `reflected`).
    pub auth_reflected: u64,
    /// Authenticated-mode packets dropped for a wrong HMAC (no reply).
    pub auth_failed: u64,
    /// Unauthenticated packets dropped because their sender must authenticate (no reply).
    pub unauthenticated: u64,
    /// UDP throughput datagrams counted for their negotiated session (never reflected).
    pub throughput_counted: u64,
    /// UDP throughput datagrams of no session here (or from another address than the
    /// session's client): dropped, never reflected.
    pub throughput_dropped: u64,
}

impl ReflectorCounters {
    /// Adds another reflector's counters (a responder with several sockets).
    pub fn merge(&mut self, o: &ReflectorCounters) {
        self.received += o.received;
        self.reflected += o.reflected;
        self.not_allowed += o.not_allowed;
        self.junk += o.junk;
        self.rate_limited += o.rate_limited;
        self.rate_limit_shared += o.rate_limit_shared;
        self.rate_limit_recycled += o.rate_limit_recycled;
        self.refused += o.refused;
        self.sessions_created += o.sessions_created;
        self.evicted += o.evicted;
        self.expired += o.expired;
        self.active_sessions += o.active_sessions;
        self.not_negotiated += o.not_negotiated;
        self.auth_reflected += o.auth_reflected;
        self.auth_failed += o.auth_failed;
        self.unauthenticated += o.unauthenticated;
        self.throughput_counted += o.throughput_counted;
        self.throughput_dropped += o.throughput_dropped;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SessionKey {
    src: SocketAddr,
    ssid: u16,
}

#[derive(Clone, Copy, Debug)]
struct Session {
    next_seq: u32,
    last_seen: Nanos,
}

/// The sans-IO STAMP reflector (see the module documentation).
#[derive(Debug)]
pub struct Reflector {
    sessions: LruCache<SessionKey, Session>,
    limiter: Option<RateLimiter>,
    /// `None` in open mode, so that an empty list costs one branch.
    allow: Option<AllowList>,
    idle_ns: u64,
    loop_guard_port: Option<u16>,
    clock: ClockInfo,
    error_estimate: ErrorEstimate,
    counters: ReflectorCounters,
    admission: Option<Arc<Admission>>,
    /// `None` unless set: open mode costs one branch.
    keys: Option<StampKeyring>,
    /// The key of the last reply written (`None`: unauthenticated).
    reply_key: Option<StampKey>,
}

fn non_zero(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl Reflector {
    /// A reflector with the given settings.
    pub fn new(config: ReflectorConfig) -> Self {
        let limiter = (config.rate_limit_pps > 0).then(|| {
            RateLimiter::new(
                config.rate_limit_pps,
                config.rate_limit_burst,
                non_zero(config.max_sources),
            )
        });
        Reflector {
            sessions: LruCache::new(non_zero(config.max_sessions)),
            limiter,
            allow: (!config.allow.is_open()).then_some(config.allow),
            idle_ns: u64::try_from(config.idle_timeout.as_nanos()).unwrap_or(u64::MAX),
            loop_guard_port: config.loop_guard_port,
            clock: config.clock,
            error_estimate: config.clock.error_estimate(),
            counters: ReflectorCounters::default(),
            admission: None,
            keys: None,
            reply_key: None,
        }
    }

    /// Attaches the registry of sessions negotiated over the control plane (see the module
    /// documentation).
    pub fn set_admission(&mut self, admission: Arc<Admission>) {
        self.admission = Some(admission);
    }

    /// Authenticates senders with the keys of `keys` (shared: keys registered later on a
    /// clone apply at once). See the module documentation, policy 6.
    pub fn set_keyring(&mut self, keys: StampKeyring) {
        self.keys = Some(keys);
    }

    /// The key the last reply [`Reflector::reflect`] wrote was sealed with (`None` for an
    /// unauthenticated reply): the key [`Reflector::restamp_authenticated`] needs.
    pub fn reply_key(&self) -> Option<&StampKey> {
        self.reply_key.as_ref()
    }

    /// Which key the datagram must carry (`None`: answered unauthenticated), or why it is
    /// dropped.
    fn authenticate(
        &mut self,
        keys: &StampKeyring,
        dgram: &Datagram<'_>,
    ) -> Result<Option<StampKey>, DropReason> {
        let ip = dgram.src.ip();
        if looks_authenticated(dgram.bytes) {
            let p = AuthSenderPacket::new_unchecked(dgram.bytes);
            match keys.key_for(ip, p.ssid()) {
                Some(key) if p.verify(&key) => return Ok(Some(key)),
                Some(_) => {
                    self.counters.auth_failed += 1;
                    return Err(DropReason::AuthFailed);
                }
                None => {}
            }
        }
        let ssid = SenderPacket::new_unchecked(dgram.bytes).ssid();
        if keys.requires_auth(ip, ssid) {
            self.counters.unauthenticated += 1;
            return Err(DropReason::Unauthenticated);
        }
        Ok(None)
    }

    /// Updates what the reflector says about its clock (synchronization changes over time).
    pub fn set_clock(&mut self, clock: ClockInfo) {
        self.clock = clock;
        self.error_estimate = clock.error_estimate();
    }

    /// The counters so far.
    pub fn counters(&self) -> ReflectorCounters {
        let (shared, recycled) = self
            .limiter
            .as_ref()
            .map_or((0, 0), |l| (l.shared(), l.recycled()));
        ReflectorCounters {
            active_sessions: self.sessions.len() as u64,
            rate_limit_shared: shared,
            rate_limit_recycled: recycled,
            ..self.counters
        }
    }

    /// Drops sessions idle since before `now - idle_timeout`, at most `limit`; returns how many.
    fn expire_some(&mut self, now: Nanos, limit: usize) -> usize {
        let mut n = 0;
        while n < limit {
            match self.sessions.peek_lru() {
                Some((_, s)) if now.0.saturating_sub(s.last_seen.0) > self.idle_ns => {
                    self.sessions.pop_lru();
                    n += 1;
                }
                _ => break,
            }
        }
        self.counters.expired += n as u64;
        n
    }

    /// Drops every session idle for longer than `idle_timeout` at `now`; returns how many.
    /// Replies also expire a few per datagram, so calling this is only needed to free memory
    /// while traffic is quiet.
    pub fn expire(&mut self, now: Nanos) -> usize {
        self.expire_some(now, usize::MAX)
    }

    /// Answers one datagram: writes the reply into `out` and returns its length (always the
    /// datagram's length), or the reason for not answering (the policy of the module
    /// documentation). `tx` is the caller's best estimate of when the reply will leave (the
    /// reflector's t3).
    pub fn reflect(
        &mut self,
        dgram: &Datagram<'_>,
        tx: Nanos,
        out: &mut [u8],
    ) -> Result<usize, DropReason> {
        self.counters.received += 1;
        if let Some(allow) = &self.allow
            && !allow.allows(dgram.src.ip())
        {
            self.counters.not_allowed += 1;
            return Err(DropReason::NotAllowed {
                addr: dgram.src.ip(),
            });
        }
        let len = dgram.bytes.len();
        let Ok(req) = SenderPacket::new_checked(dgram.bytes) else {
            self.counters.junk += 1;
            return Err(DropReason::Junk { len });
        };
        let negotiated = match &self.admission {
            Some(a) => {
                // The SSID sits elsewhere in the authenticated layout (a negotiated session
                // with a key of its own sends that one).
                let ssid = match &self.keys {
                    Some(k) if k.is_armed() && looks_authenticated(dgram.bytes) => {
                        AuthSenderPacket::new_unchecked(dgram.bytes).ssid()
                    }
                    _ => req.ssid(),
                };
                let found = a.lookup(dgram.src.ip(), ssid);
                if found.is_none() && a.required() {
                    self.counters.not_negotiated += 1;
                    return Err(DropReason::NotNegotiated {
                        addr: dgram.src.ip(),
                        ssid,
                    });
                }
                found
            }
            None => None,
        };
        if let Some(n) = &negotiated {
            n.count_received();
        }
        if self.loop_guard_port == Some(dgram.src.port()) {
            self.counters.refused += 1;
            return Err(DropReason::LoopGuard {
                port: dgram.src.port(),
            });
        }
        if out.len() < len {
            self.counters.refused += 1;
            return Err(DropReason::BufferTooSmall {
                needed: len,
                available: out.len(),
            });
        }
        if let Some(limiter) = &mut self.limiter
            && !limiter.allow(dgram.src.ip(), dgram.rx)
        {
            self.counters.rate_limited += 1;
            if let Some(n) = &negotiated {
                n.count_rate_limited();
            }
            return Err(DropReason::RateLimited);
        }
        self.reply_key = None;
        let key = match self.keys.take() {
            Some(keys) if keys.is_armed() => {
                let verdict = self.authenticate(&keys, dgram);
                self.keys = Some(keys);
                verdict?
            }
            keys => {
                self.keys = keys;
                None
            }
        };
        let (req, base) = match &key {
            Some(_) => (
                SenderRepr::parse_authenticated(&AuthSenderPacket::new_unchecked(dgram.bytes)),
                AUTH_BASE_LEN,
            ),
            None => (SenderRepr::parse(&req), BASE_LEN),
        };
        self.expire_some(dgram.rx, EXPIRE_PER_PACKET);
        let seq = self.next_seq(
            SessionKey {
                src: dgram.src,
                ssid: req.ssid,
            },
            dgram.rx,
        );

        let repr = ReflectorRepr {
            seq,
            timestamp: NtpTimestamp::from_nanos(tx),
            error_estimate: self.error_estimate,
            ssid: req.ssid,
            receive_timestamp: NtpTimestamp::from_nanos(dgram.rx),
            sender_seq: req.seq,
            sender_timestamp: req.timestamp,
            sender_error_estimate: req.error_estimate,
            sender_ttl: dgram.ttl.unwrap_or(0),
        };
        let out = &mut out[..len];
        match &key {
            Some(k) => {
                repr.emit_authenticated(&mut AuthReflectorPacket::new_unchecked(&mut *out), k);
                self.counters.auth_reflected += 1;
            }
            None => repr.emit(&mut ReflectorPacket::new_unchecked(&mut *out)),
        }
        if len > base {
            reflect_tlv_area(&dgram.bytes[base..], &mut out[base..], &self.clock);
        }
        self.reply_key = key;
        self.counters.reflected += 1;
        if let Some(n) = &negotiated {
            n.count_reflected();
        }
        Ok(len)
    }

    /// Moves the transmit timestamp (t3) of a reply [`Reflector::reflect`] wrote to `tx`: the
    /// runtime calls it just before the send, so that the time spent building the rest of a
    /// batch is not counted as reverse-path delay. `reply` shorter than a reflector packet is
    /// left alone.
    pub fn restamp(reply: &mut [u8], tx: Nanos) {
        if let Ok(mut p) = ReflectorPacket::new_checked(reply) {
            p.set_timestamp(NtpTimestamp::from_nanos(tx));
        }
    }

    /// [`Reflector::restamp`] for a reply in authenticated mode: moves its transmit timestamp
    /// and seals it again with `key` (the [`Reflector::reply_key`] it was written with).
    /// `key` `None` is [`Reflector::restamp`]; a reply too short is left alone.
    pub fn restamp_authenticated(reply: &mut [u8], tx: Nanos, key: Option<&StampKey>) {
        match key {
            None => Self::restamp(reply, tx),
            Some(k) => {
                if let Ok(mut p) = AuthReflectorPacket::new_checked(reply) {
                    p.set_timestamp(NtpTimestamp::from_nanos(tx));
                    p.seal(k);
                }
            }
        }
    }

    /// The session's next reflector sequence number (creating the session if new).
    fn next_seq(&mut self, key: SessionKey, now: Nanos) -> u32 {
        if let Some(s) = self.sessions.get_mut(&key) {
            let seq = s.next_seq;
            s.next_seq = seq.wrapping_add(1);
            s.last_seen = now;
            return seq;
        }
        let fresh = Session {
            next_seq: 1,
            last_seen: now,
        };
        if let Some((old, _)) = self.sessions.push(key, fresh)
            && old != key
        {
            self.counters.evicted += 1;
        }
        self.counters.sessions_created += 1;
        0
    }
}

#[cfg(test)]
#[path = "reflector_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "reflector_auth_tests.rs"]
mod auth_tests;
