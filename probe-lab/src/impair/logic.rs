//! The impairment hop's decisions as a pure state machine: packets go in with their arrival
//! time, come out with a release time. No sockets, no clocks: the runner feeds timestamps.
//!
//! Pipeline per packet, in this order:
//! 1. **Classification** ([`classify`]): only *data* packets are counted and may be lost,
//!    duplicated or reordered: IPv4/IPv6 packets carrying UDP, TCP, ICMP echo request/reply
//!    or `ICMPv6` echo request/reply (IPv6 only when that is the first next header; IPv4
//!    non-first fragments of those protocols count too). Everything else (ICMP errors, ND,
//!    MLD, IGMP, unparseable bytes) is only delayed and rate-limited, never dropped by
//!    loss settings, so tests get exact numbers.
//! 2. **Every-Nth loss**: data packets are numbered 1, 2, 3, … from the last configuration
//!    change; numbers N, 2N, 3N, … are dropped.
//! 3. **Random loss**: each remaining data packet is dropped with probability `loss`.
//! 4. **Rate limit**: a serializer at `rate_bps`; a packet starts transmission when the link is
//!    free and departs `len * 8 / rate` later. If `queue_limit` packets are already waiting or
//!    in transmission, the packet is tail-dropped.
//! 5. **Delay line**: release = departure + `delay` + jitter (uniform in ±`jitter`, never
//!    before departure), then `max(previous release, that)`: jitter never reorders.
//! 6. **Reordering**: with probability `reorder` a data packet skips the delay line
//!    (release = departure) and so overtakes the packets being held; needs a delay to matter.
//! 7. **Duplication**: with probability `duplicate` a second copy is released right after the
//!    packet (same release time).
//!
//! Times are nanoseconds on any monotonic clock (the runner uses `CLOCK_MONOTONIC`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use pnet_packet::Packet;
use pnet_packet::icmp::{IcmpPacket, IcmpTypes};
use pnet_packet::icmpv6::{Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};

/// Impairment settings of one direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImpairConfig {
    /// Fixed delay added to every packet.
    pub delay: Duration,
    /// Jitter: a uniform sample in `[-jitter, +jitter]` added to the delay (clamped so a
    /// packet is never released before it arrived; never reorders).
    pub jitter: Duration,
    /// Probability (0..=1) that a data packet is dropped at random.
    pub loss: f64,
    /// Drop data packets N, 2N, 3N, … (0 = off).
    pub every_nth: u64,
    /// Probability (0..=1) that a data packet is sent twice.
    pub duplicate: f64,
    /// Probability (0..=1) that a data packet skips the delay (overtaking held packets).
    pub reorder: f64,
    /// Rate limit in bits per second (0 = unlimited).
    pub rate_bps: u64,
    /// With a rate limit: packets that may wait or be in transmission before tail drop.
    pub queue_limit: usize,
    /// Seed of the random decisions (`None`: seeded from the OS).
    pub seed: Option<u64>,
}

impl Default for ImpairConfig {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            every_nth: 0,
            duplicate: 0.0,
            reorder: 0.0,
            rate_bps: 0,
            queue_limit: 1000,
            seed: None,
        }
    }
}

impl ImpairConfig {
    /// A configuration that only delays.
    pub fn delay(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    /// Checks that probabilities are within 0..=1 and the queue limit is positive.
    pub fn validate(&self) -> Result<()> {
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::Invalid(format!(
                    "{name} probability {p} outside 0..=1"
                )));
            }
        }
        if self.queue_limit == 0 {
            return Err(Error::Invalid("queue limit must be at least 1".into()));
        }
        Ok(())
    }
}

/// Whether a packet is subject to loss, duplication and reordering (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketClass {
    /// UDP, TCP, ICMP/`ICMPv6` echo: counted and impaired.
    Data,
    /// Anything else: only delayed and rate-limited.
    Other,
}

/// Classifies a raw IP packet (as read from a TUN device without packet information).
pub fn classify(packet: &[u8]) -> PacketClass {
    let data = match packet.first().map(|b| b >> 4) {
        Some(4) => Ipv4Packet::new(packet).is_some_and(|ip| {
            let first_fragment = ip.get_fragment_offset() == 0;
            match ip.get_next_level_protocol() {
                IpNextHeaderProtocols::Udp | IpNextHeaderProtocols::Tcp => true,
                IpNextHeaderProtocols::Icmp if !first_fragment => true,
                IpNextHeaderProtocols::Icmp => IcmpPacket::new(ip.payload()).is_some_and(|icmp| {
                    matches!(
                        icmp.get_icmp_type(),
                        IcmpTypes::EchoRequest | IcmpTypes::EchoReply
                    )
                }),
                _ => false,
            }
        }),
        Some(6) => Ipv6Packet::new(packet).is_some_and(|ip| match ip.get_next_header() {
            IpNextHeaderProtocols::Udp | IpNextHeaderProtocols::Tcp => true,
            IpNextHeaderProtocols::Icmpv6 => Icmpv6Packet::new(ip.payload()).is_some_and(|icmp| {
                matches!(
                    icmp.get_icmpv6_type(),
                    Icmpv6Types::EchoRequest | Icmpv6Types::EchoReply
                )
            }),
            _ => false,
        }),
        _ => false,
    };
    if data {
        PacketClass::Data
    } else {
        PacketClass::Other
    }
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// It was the N-th, 2N-th, … data packet.
    EveryNth,
    /// Random loss.
    Random,
    /// The rate limiter's queue was full.
    QueueFull,
}

/// What happened to a packet handed to [`Impairer::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Held until `release_at` (ns); `duplicated` if a second copy follows it.
    Queued {
        /// Release time in ns.
        release_at: u64,
        /// Whether a duplicate was queued too.
        duplicated: bool,
    },
    /// Dropped.
    Dropped(DropReason),
}

/// Counters of one impairer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImpairStats {
    /// Packets pushed.
    pub received: u64,
    /// Of those, data packets (the ones loss settings count).
    pub data: u64,
    /// Dropped by every-Nth loss.
    pub dropped_nth: u64,
    /// Dropped by random loss.
    pub dropped_random: u64,
    /// Dropped because the rate limiter's queue was full.
    pub dropped_queue: u64,
    /// Duplicates created.
    pub duplicated: u64,
    /// Packets sent ahead of the delay line.
    pub reordered: u64,
    /// Packets (including duplicates) released.
    pub released: u64,
}

/// A packet whose release time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released<P> {
    /// The packet.
    pub packet: P,
    /// When it was due (ns), to measure how late the caller released it.
    pub release_at: u64,
}

#[derive(Debug)]
struct Held<P> {
    release_at: u64,
    seq: u64,
    packet: P,
}

impl<P> PartialEq for Held<P> {
    fn eq(&self, other: &Self) -> bool {
        (self.release_at, self.seq) == (other.release_at, other.seq)
    }
}
impl<P> Eq for Held<P> {}
impl<P> PartialOrd for Held<P> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<P> Ord for Held<P> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.release_at, self.seq).cmp(&(other.release_at, other.seq))
    }
}

/// The impairment state machine of one direction. `P` is the packet buffer type (cloned only
/// for duplication).
#[derive(Debug)]
pub struct Impairer<P> {
    config: ImpairConfig,
    rng: SmallRng,
    data_seen: u64,
    link_free_at: u64,
    in_shaper: VecDeque<u64>,
    last_release: u64,
    next_seq: u64,
    held: BinaryHeap<Reverse<Held<P>>>,
    stats: ImpairStats,
}

fn rng_for(seed: Option<u64>) -> SmallRng {
    match seed {
        Some(seed) => SmallRng::seed_from_u64(seed),
        None => SmallRng::from_os_rng(),
    }
}

impl<P: Clone> Impairer<P> {
    /// A new impairer (validate the configuration first with [`ImpairConfig::validate`]).
    pub fn new(config: ImpairConfig) -> Self {
        Self {
            rng: rng_for(config.seed),
            config,
            data_seen: 0,
            link_free_at: 0,
            in_shaper: VecDeque::new(),
            last_release: 0,
            next_seq: 0,
            held: BinaryHeap::new(),
            stats: ImpairStats::default(),
        }
    }

    /// Replaces the configuration. Held packets keep their release times; the every-Nth count
    /// restarts and a configured seed re-seeds the random decisions.
    pub fn set_config(&mut self, config: ImpairConfig) {
        if config.seed.is_some() {
            self.rng = rng_for(config.seed);
        }
        self.config = config;
        self.data_seen = 0;
    }

    /// The configuration in force.
    pub fn config(&self) -> &ImpairConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> ImpairStats {
        self.stats
    }

    /// Packets currently held.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.random_bool(probability)
    }

    fn loss_verdict(&mut self) -> Option<DropReason> {
        self.data_seen += 1;
        let nth = self.config.every_nth;
        if nth > 0 && self.data_seen.is_multiple_of(nth) {
            return Some(DropReason::EveryNth);
        }
        let loss = self.config.loss;
        self.chance(loss).then_some(DropReason::Random)
    }

    /// Departure time from the rate limiter, or `None` if its queue is full.
    fn shape(&mut self, now: u64, len: usize) -> Option<u64> {
        let rate = self.config.rate_bps;
        if rate == 0 {
            return Some(now);
        }
        while self.in_shaper.front().is_some_and(|&t| t <= now) {
            self.in_shaper.pop_front();
        }
        if self.in_shaper.len() >= self.config.queue_limit {
            return None;
        }
        let tx_ns = (len as u128 * 8 * 1_000_000_000).div_ceil(rate as u128) as u64;
        let depart = now.max(self.link_free_at) + tx_ns;
        self.link_free_at = depart;
        self.in_shaper.push_back(depart);
        Some(depart)
    }

    fn delayed(&mut self, depart: u64) -> u64 {
        let delay = self.config.delay.as_nanos() as i128;
        let jitter = self.config.jitter.as_nanos() as i64;
        let sample = if jitter > 0 {
            self.rng.random_range(-jitter..=jitter) as i128
        } else {
            0
        };
        let target = (depart as i128 + delay + sample).max(depart as i128) as u64;
        let release = target.max(self.last_release);
        self.last_release = release;
        release
    }

    fn hold(&mut self, release_at: u64, packet: P) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.held.push(Reverse(Held {
            release_at,
            seq,
            packet,
        }));
    }

    /// Takes a packet of `len` bytes that arrived at `now` (ns).
    pub fn push(&mut self, now: u64, packet: P, len: usize, class: PacketClass) -> Verdict {
        self.stats.received += 1;
        let data = class == PacketClass::Data;
        if data {
            self.stats.data += 1;
            if let Some(reason) = self.loss_verdict() {
                match reason {
                    DropReason::EveryNth => self.stats.dropped_nth += 1,
                    DropReason::Random => self.stats.dropped_random += 1,
                    DropReason::QueueFull => {}
                }
                return Verdict::Dropped(reason);
            }
        }
        let Some(depart) = self.shape(now, len) else {
            self.stats.dropped_queue += 1;
            return Verdict::Dropped(DropReason::QueueFull);
        };
        let reorder = self.config.reorder;
        let release_at = if data && self.chance(reorder) {
            self.stats.reordered += 1;
            depart
        } else {
            self.delayed(depart)
        };
        let duplicate = self.config.duplicate;
        let duplicated = data && self.chance(duplicate);
        if duplicated {
            self.stats.duplicated += 1;
            self.hold(release_at, packet.clone());
        }
        self.hold(release_at, packet);
        Verdict::Queued {
            release_at,
            duplicated,
        }
    }

    /// The earliest release time of the held packets.
    pub fn next_release(&self) -> Option<u64> {
        self.held.peek().map(|Reverse(h)| h.release_at)
    }

    /// Removes and returns the next packet due at or before `now`, in release order (FIFO
    /// among equal release times).
    pub fn pop_due(&mut self, now: u64) -> Option<Released<P>> {
        if self.next_release()? > now {
            return None;
        }
        let Reverse(held) = self.held.pop()?;
        self.stats.released += 1;
        Some(Released {
            packet: held.packet,
            release_at: held.release_at,
        })
    }
}

#[cfg(test)]
#[path = "logic_tests.rs"]
mod tests;
