//! Accuracy of the impairment hop: how far the delay it adds is from the configured one,
//! measured from outside with [`one_way_delays`] (kernel receive timestamps).

use std::net::SocketAddr;
use std::time::Duration;

use crate::check::one_way_delays;
use crate::error::{Error, Result};
use crate::impair::{ImpairConfig, Lateness, Timing};
use crate::topology::{Impaired, impaired_with};

/// UDP port the measurement uses on `b`.
const PORT: u16 = 9000;
/// Time allowed for the last datagrams to arrive.
const LINGER: Duration = Duration::from_millis(100);

/// Added-delay error at one packet rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccuracyRow {
    /// Packets per second sent.
    pub pps: u32,
    /// Datagrams sent with the delay configured.
    pub sent: usize,
    /// Of those, received.
    pub received: usize,
    /// Median one-way delay through the same hop with no delay configured, in µs.
    pub baseline_us: f64,
    /// Mean of (one-way delay − configured delay − baseline), in µs.
    pub mean_us: f64,
    /// 99th percentile of that error, in µs.
    pub p99_us: f64,
    /// Largest error, in µs.
    pub max_us: f64,
    /// Smallest (most negative) error, in µs.
    pub min_us: f64,
    /// The hop's own view: how late it wrote packets relative to their release time.
    pub lateness: Lateness,
}

fn path(timing: Timing, delay: Duration) -> Result<(Impaired, SocketAddr)> {
    let topology = impaired_with(ImpairConfig::delay(delay), ImpairConfig::default(), timing)?;
    let dst = SocketAddr::new(topology.b.ipv4().into(), PORT);
    Ok((topology, dst))
}

fn sends(pps: u32, duration: Duration) -> (usize, Duration) {
    let count = (f64::from(pps) * duration.as_secs_f64()).round().max(1.0) as usize;
    (
        count,
        Duration::from_nanos(1_000_000_000 / u64::from(pps.max(1))),
    )
}

/// Measures the delay error of the impairment hop at `pps` packets per second for
/// `duration`, with `delay` configured in the forward direction. The baseline (the path's own
/// one-way delay, including the hop's processing) is measured first on an identical path with
/// no delay, for `duration` as well; each topology is built and torn down here.
pub fn measure_delay_accuracy(
    pps: u32,
    delay: Duration,
    duration: Duration,
    timing: Timing,
) -> Result<AccuracyRow> {
    let (count, interval) = sends(pps, duration);
    let baseline = {
        let (t, dst) = path(timing, Duration::ZERO)?;
        let mut delays: Vec<i64> = one_way_delays(&t.a, &t.b, dst, count, interval, LINGER)?
            .into_iter()
            .flatten()
            .collect();
        delays.sort_unstable();
        *delays
            .get(delays.len() / 2)
            .ok_or_else(|| Error::Invalid("no baseline datagram arrived".into()))?
    };
    let (t, dst) = path(timing, delay)?;
    let measured = one_way_delays(&t.a, &t.b, dst, count, interval, LINGER)?;
    let lateness = t.forward_report().lateness;
    let delay_ns = delay.as_nanos() as i64;
    let mut errors: Vec<i64> = measured
        .iter()
        .flatten()
        .map(|owd| owd - delay_ns - baseline)
        .collect();
    errors.sort_unstable();
    let us = |ns: i64| ns as f64 / 1e3;
    let (Some(&min), Some(&max)) = (errors.first(), errors.last()) else {
        return Err(Error::Invalid("no delayed datagram arrived".into()));
    };
    let p99 = errors[((errors.len() as f64 * 0.99).ceil() as usize).clamp(1, errors.len()) - 1];
    let mean = errors.iter().map(|&e| e as f64).sum::<f64>() / errors.len() as f64;
    Ok(AccuracyRow {
        pps,
        sent: count,
        received: errors.len(),
        baseline_us: us(baseline),
        mean_us: mean / 1e3,
        p99_us: us(p99),
        max_us: us(max),
        min_us: us(min),
        lateness,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_schedule_matches_rate_and_duration() {
        assert_eq!(
            sends(1000, Duration::from_secs(2)),
            (2000, Duration::from_millis(1))
        );
        assert_eq!(
            sends(10_000, Duration::from_millis(500)),
            (5000, Duration::from_micros(100))
        );
    }
}
