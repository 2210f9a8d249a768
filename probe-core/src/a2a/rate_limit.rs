//! Per-source-address token buckets, fed timestamps as values.

use std::net::IpAddr;
use std::num::NonZeroUsize;

use lru::LruCache;

use crate::time::Nanos;

/// One token, in the buckets' fixed-point unit (10^-9 token), so that refilling by
/// `elapsed_ns * rate_per_s` needs no division.
const TOKEN: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens held, in units of 10^-9 token.
    level: u64,
    /// Time of the last refill.
    last: Nanos,
}

/// Token buckets keyed by source IP: `rate` packets per second sustained, bursts of `burst`.
/// At most `max_sources` buckets are kept; the least recently seen source's bucket is dropped
/// to make room (that source then starts again with a full bucket).
#[derive(Debug)]
pub struct RateLimiter {
    rate: u64,
    capacity: u64,
    buckets: LruCache<IpAddr, Bucket>,
}

impl RateLimiter {
    /// A limiter allowing `rate` packets per second with bursts of `burst` (at least 1) per
    /// source, remembering up to `max_sources` sources.
    pub fn new(rate: u32, burst: u32, max_sources: NonZeroUsize) -> Self {
        RateLimiter {
            rate: u64::from(rate),
            capacity: u64::from(burst.max(1)) * TOKEN,
            buckets: LruCache::new(max_sources),
        }
    }

    /// Takes one token from `ip`'s bucket at time `now`; `false` when it is empty.
    pub fn allow(&mut self, ip: IpAddr, now: Nanos) -> bool {
        if let Some(b) = self.buckets.get_mut(&ip) {
            let elapsed = now.0.saturating_sub(b.last.0);
            b.level = b
                .level
                .saturating_add(elapsed.saturating_mul(self.rate))
                .min(self.capacity);
            b.last = now;
            if b.level >= TOKEN {
                b.level -= TOKEN;
                true
            } else {
                false
            }
        } else {
            self.buckets.push(
                ip,
                Bucket {
                    level: self.capacity - TOKEN,
                    last: now,
                },
            );
            true
        }
    }

    /// Sources currently tracked.
    pub fn sources(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    fn nz(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).expect("non-zero")
    }

    #[test]
    fn burst_then_rate() {
        let mut rl = RateLimiter::new(100, 5, nz(8));
        let t0 = Nanos(1_000_000_000);
        let allowed = (0..10).filter(|_| rl.allow(A, t0)).count();
        assert_eq!(allowed, 5, "burst of 5");
        // 100 pps refills one token every 10 ms.
        assert!(!rl.allow(A, Nanos(t0.0 + 9_999_999)));
        assert!(rl.allow(A, Nanos(t0.0 + 10_000_000)));
        assert!(!rl.allow(A, Nanos(t0.0 + 10_000_000)));
        // A full second refills only up to the burst.
        let t1 = Nanos(t0.0 + 2_000_000_000);
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
    fn bounded_source_table() {
        let mut rl = RateLimiter::new(1, 1, nz(2));
        let t = Nanos(0);
        for last in 1..=10u8 {
            assert!(rl.allow(IpAddr::V4(Ipv4Addr::new(127, 0, 1, last)), t));
        }
        assert_eq!(rl.sources(), 2);
    }
}
