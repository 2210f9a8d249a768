//! Per-source token buckets, fed timestamps as values.
//!
//! A *source* is an IPv4 address, or the /64 an IPv6 address lies in: one host normally holds
//! a whole /64, so keying IPv6 per address would hand it 2^64 buckets. IPv4-mapped IPv6
//! addresses count as the IPv4 address.
//!
//! The table is bounded, and spraying source addresses must not buy fresh bursts. A source
//! seen for the first time gets a bucket of its own (starting full) when
//!
//! - the table has room, or
//! - the least recently seen source's bucket has refilled to the full burst: that bucket is
//!   recycled (counted in [`RateLimiter::recycled`]). Forgetting a full bucket loses nothing,
//!   since that source would find a full bucket anyway if it came back.
//!
//! Otherwise (the table is full of sources still spending their tokens) the newcomer is charged
//! to one *shared* bucket, with the same rate and burst, that every source without a bucket of
//! its own draws from (counted in [`RateLimiter::shared`]). So over any interval of length T
//! each bucket of the table answers at most `burst + rate × T` (a recycled bucket's previous
//! owner had spent only what it had earned), and the reflector as a whole at most
//! `(max_sources + 1) × (burst + rate × T)`, however many addresses the datagrams come from.
//! Give the table at least as many buckets as the reflector has sessions so that legitimate
//! senders always have their own.
//!
//! Per datagram: one hash lookup of a 128-bit key; the eviction check runs only for new
//! sources when the table is full.

use std::net::IpAddr;
use std::num::NonZeroUsize;

use lru::LruCache;

use crate::time::Nanos;

/// One token, in the buckets' fixed-point unit (10^-9 token), so that refilling by
/// `elapsed_ns * rate_per_s` needs no division.
const TOKEN: u64 = 1_000_000_000;

/// The network half of an IPv6 address (a /64).
const V6_SOURCE_MASK: u128 = !0 << 64;

/// The table key of a source: an IPv4 address as its IPv4-mapped IPv6 form (low 64 bits never
/// zero), an IPv6 address as its /64 (low 64 bits zero), so the two never collide.
fn source_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a) & V6_SOURCE_MASK,
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens held, in units of 10^-9 token.
    level: u64,
    /// Time of the last refill.
    last: Nanos,
}

impl Bucket {
    /// The level at `now` (refilled at `rate` per second up to `capacity`).
    fn level_at(&self, now: Nanos, rate: u64, capacity: u64) -> u64 {
        let elapsed = now.0.saturating_sub(self.last.0);
        self.level
            .saturating_add(elapsed.saturating_mul(rate))
            .min(capacity)
    }

    /// Refills up to `now` and takes one token; `false` when there is none.
    fn take(&mut self, now: Nanos, rate: u64, capacity: u64) -> bool {
        self.level = self.level_at(now, rate, capacity);
        self.last = now;
        if self.level >= TOKEN {
            self.level -= TOKEN;
            true
        } else {
            false
        }
    }
}

/// Token buckets per source: `rate` packets per second sustained, bursts of `burst`, at most
/// `max_sources` buckets plus a shared one (see the module documentation).
#[derive(Debug)]
pub struct RateLimiter {
    rate: u64,
    capacity: u64,
    buckets: LruCache<u128, Bucket>,
    shared_bucket: Bucket,
    shared: u64,
    recycled: u64,
}

impl RateLimiter {
    /// A limiter allowing `rate` packets per second with bursts of `burst` (at least 1) per
    /// source, with buckets for up to `max_sources` sources.
    pub fn new(rate: u32, burst: u32, max_sources: NonZeroUsize) -> Self {
        let capacity = u64::from(burst.max(1)) * TOKEN;
        RateLimiter {
            rate: u64::from(rate),
            capacity,
            buckets: LruCache::new(max_sources),
            shared_bucket: Bucket {
                level: capacity,
                last: Nanos(0),
            },
            shared: 0,
            recycled: 0,
        }
    }

    /// Takes one token for a datagram from `ip` at time `now`; `false` when its bucket (or
    /// the shared one) is empty.
    pub fn allow(&mut self, ip: IpAddr, now: Nanos) -> bool {
        let key = source_key(ip);
        if let Some(b) = self.buckets.get_mut(&key) {
            return b.take(now, self.rate, self.capacity);
        }
        if self.buckets.len() >= self.buckets.cap().get() {
            let lru_full = self
                .buckets
                .peek_lru()
                .is_some_and(|(_, b)| b.level_at(now, self.rate, self.capacity) >= self.capacity);
            if !lru_full {
                self.shared += 1;
                return self.shared_bucket.take(now, self.rate, self.capacity);
            }
            self.buckets.pop_lru();
            self.recycled += 1;
        }
        self.buckets.push(
            key,
            Bucket {
                level: self.capacity - TOKEN,
                last: now,
            },
        );
        true
    }

    /// Sources with a bucket of their own.
    pub fn sources(&self) -> usize {
        self.buckets.len()
    }

    /// Datagrams charged to the shared bucket (their source found the table full).
    pub fn shared(&self) -> u64 {
        self.shared
    }

    /// Full buckets handed from an idle source to a new one.
    pub fn recycled(&self) -> u64 {
        self.recycled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    const SEC: u64 = 1_000_000_000;

    fn nz(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).expect("non-zero")
    }

    fn v4(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn burst_then_rate() {
        let mut rl = RateLimiter::new(100, 5, nz(8));
        let t0 = Nanos(SEC);
        let allowed = (0..10).filter(|_| rl.allow(A, t0)).count();
        assert_eq!(allowed, 5, "burst of 5");
        // 100 pps refills one token every 10 ms.
        assert!(!rl.allow(A, Nanos(t0.0 + 9_999_999)));
        assert!(rl.allow(A, Nanos(t0.0 + 10_000_000)));
        assert!(!rl.allow(A, Nanos(t0.0 + 10_000_000)));
        // A full second refills only up to the burst.
        let t1 = Nanos(t0.0 + 2 * SEC);
        assert_eq!((0..10).filter(|_| rl.allow(A, t1)).count(), 5);
        // Other sources have their own bucket.
        assert!(rl.allow(B, t1));
        assert_eq!(rl.sources(), 2);
    }

    #[test]
    fn sustained_rate_over_a_second() {
        let mut rl = RateLimiter::new(1_000, 1, nz(8));
        // Offered 10 000 pps for one second: 1 000 pass (plus the first).
        let passed = (0..10_000u64)
            .filter(|i| rl.allow(A, Nanos(i * 100_000)))
            .count();
        assert_eq!(passed, 1_000);
    }

    #[test]
    fn ipv6_sources_are_keyed_per_64() {
        let mut rl = RateLimiter::new(1, 3, nz(16));
        let t = Nanos(SEC);
        let in_64 = |i: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 7, i, 0, 0, i));
        // 1 000 addresses of one /64 share its burst of 3.
        let passed = (0..1_000).filter(|&i| rl.allow(in_64(i), t)).count();
        assert_eq!(passed, 3);
        assert_eq!(rl.sources(), 1);
        // The next /64 has its own bucket.
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 8, 0, 0, 0, 1));
        assert!(rl.allow(other, t));
        // IPv4-mapped addresses are IPv4 sources, one bucket per address.
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!((0..5).filter(|_| rl.allow(mapped, t)).count(), 3);
        assert!(rl.allow(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), t));
        assert!(
            !rl.allow(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), t),
            "same bucket as its mapped form"
        );
        assert_eq!(rl.sources(), 4);
    }

    /// Spraying sources beyond the table: newcomers share one bucket, so the total answered
    /// stays within (buckets + 1) × burst, not sources × burst.
    #[test]
    fn sprayed_sources_share_one_bucket_when_the_table_is_full() {
        let (burst, table) = (4u32, 100usize);
        let mut rl = RateLimiter::new(10, burst, nz(table));
        let t = Nanos(SEC);
        let mut passed_by = vec![0u32; 10_000];
        for (i, passed) in passed_by.iter_mut().enumerate() {
            for _ in 0..burst {
                *passed += u32::from(rl.allow(v4(i as u32), t));
            }
        }
        // The first `table` sources have their own full burst; the 9 900 others together
        // one burst from the shared bucket.
        assert!(passed_by[..table].iter().all(|&n| n == burst));
        assert_eq!(passed_by[table..].iter().sum::<u32>(), burst);
        assert_eq!(rl.sources(), table);
        assert_eq!(rl.shared(), u64::from(burst) * (10_000 - table as u64));
        assert_eq!(rl.recycled(), 0);
        // The shared bucket refills at the per-source rate: 100 ms = one token in total.
        let later = Nanos(t.0 + SEC / 10);
        let passed = (table..10_000)
            .filter(|&i| rl.allow(v4(i as u32), later))
            .count();
        assert_eq!(passed, 1);
        // Sources with buckets keep them (no fresh burst for anybody).
        assert!(rl.allow(v4(0), later), "one token refilled in 100 ms");
        assert!(!rl.allow(v4(0), later));
    }

    /// A source whose bucket has refilled to the full burst is forgotten for a newcomer: it
    /// would come back to a full bucket anyway. One still spending its tokens is not.
    #[test]
    fn only_full_buckets_are_recycled() {
        let mut rl = RateLimiter::new(10, 2, nz(2));
        let t0 = Nanos(SEC);
        assert!(rl.allow(v4(1), t0));
        assert!(rl.allow(v4(2), t0));
        // 50 ms later neither bucket is full (1.5 of 2 tokens): v4(3) gets the shared bucket.
        let t1 = Nanos(t0.0 + SEC / 20);
        assert!(rl.allow(v4(3), t1));
        assert_eq!((rl.shared(), rl.recycled()), (1, 0));
        // 100 ms after t0 v4(1) is full again: its bucket goes to v4(4).
        let t2 = Nanos(t0.0 + SEC / 10);
        assert!(rl.allow(v4(4), t2));
        assert_eq!((rl.shared(), rl.recycled(), rl.sources()), (1, 1, 2));
        assert!(rl.allow(v4(4), t2), "own burst of 2");
        assert!(!rl.allow(v4(4), t2));
        // v4(1) comes back to a full bucket of its own after v4(2) refilled.
        assert!(rl.allow(v4(1), t2));
        assert_eq!(rl.recycled(), 2);
    }

    #[test]
    fn bounded_source_table() {
        let mut rl = RateLimiter::new(1, 1, nz(2));
        // Ten seconds apart every bucket is full again, so each newcomer gets one.
        for last in 1..=10u32 {
            assert!(rl.allow(v4(last), Nanos(u64::from(last) * 10 * SEC)));
        }
        assert_eq!(rl.sources(), 2);
        assert_eq!(rl.recycled(), 8);
    }
}
