//! Clock offset and drift between two ends, estimated from two-way exchanges (clock mode
//! `estimated`).
//!
//! Each exchange gives four timestamps: t1 (local send), t2 (peer receive), t3 (peer send), t4
//! (local receive). As in NTP, its round-trip delay is `δ = (t4 - t1) - (t3 - t2)` and its offset
//! `θ = ((t2 - t1) + (t3 - t4)) / 2`, the peer clock minus the local clock. `θ` is exact only when
//! both directions took equal time; queueing inflates one side, so the estimator keeps, for each
//! time window, the exchange with the smallest `δ` (the least queued). Over several windows it
//! fits a line `θ(t) = offset + drift * (t - reference)` by least squares.
//!
//! **Assumption**: the minimum delay is symmetric (the fastest forward trip takes as long as the
//! fastest reverse trip). An asymmetric path shifts the offset by half the asymmetry, and no
//! two-way method can see that. The reported error bound is half the smallest round trip (the
//! most that asymmetry can shift it) plus the largest residual of the fit.
//!
//! Memory: one point (24 bytes) per window, at most [`MAX_POINTS`]: when a long test fills
//! them, neighbouring windows are merged (the smaller round trip of each pair stays) and the
//! window doubles, so the estimator's size does not grow with the test's duration.

use super::Nanos;

/// Most window minima kept (see the module documentation).
pub const MAX_POINTS: usize = 4096;

/// Fewer window minima than this fit a constant offset only (no drift).
const MIN_FIT_POINTS: usize = 4;

/// The best (smallest round trip) exchange of one window.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    /// Local time of the exchange midpoint, ns.
    t: u64,
    /// Peer minus local, ns.
    offset: i64,
    /// Round-trip delay, ns.
    rtt: i64,
}

/// Streaming estimator of the peer clock's offset and drift (see the module documentation).
#[derive(Clone, Debug)]
pub struct OffsetEstimator {
    window_ns: u64,
    origin: Option<u64>,
    current: Option<(u64, Point)>,
    points: Vec<Point>,
    samples: u64,
    rejected: u64,
}

/// The result of an [`OffsetEstimator`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OffsetEstimate {
    /// Peer clock minus local clock at `reference`, ns.
    pub offset_ns: f64,
    /// The local instant the offset refers to (mean time of the window minima).
    pub reference: Nanos,
    /// Rate of the peer clock relative to the local one, parts per million (0 when too few
    /// windows to fit).
    pub drift_ppm: f64,
    /// Error bound, ns: half the smallest round trip plus the largest fit residual.
    pub error_ns: f64,
    /// Smallest round-trip delay seen, ns.
    pub min_rtt_ns: i64,
    /// Windows that contributed a minimum.
    pub windows: usize,
    /// Exchanges accepted.
    pub samples: u64,
}

impl OffsetEstimate {
    /// The estimated offset (peer minus local, ns) at local time `t`.
    pub fn offset_at(&self, t: Nanos) -> i64 {
        let dt = t.since(self.reference) as f64;
        (self.offset_ns + self.drift_ppm * 1e-6 * dt).round() as i64
    }
}

impl OffsetEstimator {
    /// An estimator keeping one minimum per `window_ns` of local send time (at least 1 ns).
    pub fn new(window_ns: u64) -> Self {
        OffsetEstimator {
            window_ns: window_ns.max(1),
            origin: None,
            current: None,
            points: Vec::new(),
            samples: 0,
            rejected: 0,
        }
    }

    /// An estimator as [`OffsetEstimator::new`] with room for the minima of `expected`
    /// windows (at most [`MAX_POINTS`]), allocated once.
    pub fn with_capacity(window_ns: u64, expected: usize) -> Self {
        OffsetEstimator {
            points: Vec::with_capacity(expected.min(MAX_POINTS)),
            ..Self::new(window_ns)
        }
    }

    /// Window minima it has room for without growing.
    #[cfg(test)]
    pub(crate) fn points_capacity(&self) -> usize {
        self.points.capacity()
    }

    /// Feeds one exchange. Exchanges with a negative round trip (inconsistent timestamps) are
    /// rejected; the return value tells whether this one was accepted.
    pub fn add(&mut self, t1: Nanos, t2: Nanos, t3: Nanos, t4: Nanos) -> bool {
        let fwd = t2.since(t1);
        let rev = t4.since(t3);
        self.add_raw(t1, fwd, rev)
    }

    /// Feeds one exchange as `fwd = t2 - t1` and `rev = t4 - t3` (each still holding the
    /// clock offset); `t1` is the local send time.
    pub fn add_raw(&mut self, t1: Nanos, fwd: i64, rev: i64) -> bool {
        let rtt = fwd.saturating_add(rev);
        if rtt < 0 {
            self.rejected += 1;
            return false;
        }
        self.samples += 1;
        let point = Point {
            t: t1.0.saturating_add((rtt / 2) as u64),
            offset: ((fwd as i128 - rev as i128) / 2) as i64,
            rtt,
        };
        let origin = *self.origin.get_or_insert(t1.0);
        let window = t1.0.saturating_sub(origin) / self.window_ns;
        match &mut self.current {
            Some((w, best)) if window <= *w => {
                if point.rtt < best.rtt {
                    *best = point;
                }
            }
            Some((w, best)) => {
                self.points.push(*best);
                *w = window;
                *best = point;
            }
            None => self.current = Some((window, point)),
        }
        if self.points.len() >= MAX_POINTS {
            self.compact();
        }
        true
    }

    /// Halves the points: merges neighbouring windows, keeping the least-queued exchange of
    /// each pair, and doubles the window.
    fn compact(&mut self) {
        let merged: Vec<Point> = self
            .points
            .chunks(2)
            .filter_map(|pair| pair.iter().min_by_key(|p| p.rtt).copied())
            .collect();
        self.points.clear();
        self.points.extend(merged);
        self.window_ns = self.window_ns.saturating_mul(2);
        if let Some((w, _)) = &mut self.current {
            *w /= 2;
        }
    }

    /// Window minima kept now (bounded by [`MAX_POINTS`]).
    pub fn points(&self) -> usize {
        self.points.len() + usize::from(self.current.is_some())
    }

    /// Exchanges rejected for a negative round trip.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The estimate from everything fed so far; `None` before the first accepted exchange.
    pub fn estimate(&self) -> Option<OffsetEstimate> {
        let mut points = self.points.clone();
        points.push(self.current?.1);
        let min_rtt = points.iter().map(|p| p.rtt).min()?;
        let t0 = points[0].t;
        let n = points.len() as f64;
        // Times relative to the first point keep the sums well inside f64 precision.
        let xs: Vec<f64> = points.iter().map(|p| (p.t - t0) as f64).collect();
        let mean_x = xs.iter().sum::<f64>() / n;
        let reference = Nanos(t0 + mean_x.round() as u64);
        let (offset, slope) = if points.len() >= MIN_FIT_POINTS {
            let mean_y = points.iter().map(|p| p.offset as f64).sum::<f64>() / n;
            let (mut sxy, mut sxx) = (0.0, 0.0);
            for (x, p) in xs.iter().zip(&points) {
                sxy += (x - mean_x) * (p.offset as f64 - mean_y);
                sxx += (x - mean_x) * (x - mean_x);
            }
            let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
            (mean_y, slope)
        } else {
            // Too few windows for a line: the least-queued exchange gives the offset.
            let best = points.iter().min_by_key(|p| p.rtt)?;
            (best.offset as f64, 0.0)
        };
        let residual = xs
            .iter()
            .zip(&points)
            .map(|(x, p)| (p.offset as f64 - (offset + slope * (x - mean_x))).abs())
            .fold(0.0, f64::max);
        Some(OffsetEstimate {
            offset_ns: offset,
            reference,
            drift_ppm: slope * 1e6,
            error_ns: min_rtt as f64 / 2.0 + residual,
            min_rtt_ns: min_rtt,
            windows: points.len(),
            samples: self.samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_for_the_expected_windows_is_bounded() {
        assert!(OffsetEstimator::with_capacity(1, 56).points.capacity() >= 56);
        assert_eq!(
            OffsetEstimator::with_capacity(1, usize::MAX)
                .points
                .capacity(),
            MAX_POINTS
        );
    }

    const MS: u64 = 1_000_000;
    const START: u64 = 1_700_000_000_000_000_000;

    /// One exchange sent at local time `t1` with the given one-way delays, against a peer clock
    /// `offset` ns ahead (plus `drift` ns per ns elapsed since START).
    fn exchange(t1: u64, fwd: u64, rev: u64, offset: i64, drift: f64) -> [Nanos; 4] {
        let peer = |local: u64| {
            let off = offset as f64 + drift * (local - START) as f64;
            Nanos((local as i64 + off.round() as i64) as u64)
        };
        let t2_local = t1 + fwd;
        let t3_local = t2_local + 50_000;
        let t4 = t3_local + rev;
        [Nanos(t1), peer(t2_local), peer(t3_local), Nanos(t4)]
    }

    #[test]
    fn empty_has_no_estimate() {
        assert!(OffsetEstimator::new(MS).estimate().is_none());
    }

    #[test]
    fn constant_offset_from_min_rtt() {
        let mut est = OffsetEstimator::new(1_000 * MS);
        // Symmetric 5 ms minimum; the others carry forward queueing of up to 20 ms.
        for i in 0..10u64 {
            let queue = if i == 3 { 0 } else { (i + 1) * 2 * MS };
            let [t1, t2, t3, t4] = exchange(
                START + i * 10 * MS,
                5 * MS + queue,
                5 * MS,
                42 * MS as i64,
                0.0,
            );
            assert!(est.add(t1, t2, t3, t4));
        }
        let e = est.estimate().expect("estimate");
        assert_eq!(e.windows, 1);
        assert_eq!(e.samples, 10);
        assert!((e.offset_ns - 42e6).abs() < 1.0, "offset {}", e.offset_ns);
        assert_eq!(e.min_rtt_ns, 10 * MS as i64);
        assert!((e.error_ns - 5e6).abs() < 1.0, "error {}", e.error_ns);
        assert!(e.drift_ppm.abs() < f64::EPSILON);
    }

    #[test]
    fn asymmetry_shifts_by_half_and_error_covers_it() {
        let mut est = OffsetEstimator::new(MS);
        let [t1, t2, t3, t4] = exchange(START, 8 * MS, 2 * MS, -7 * MS as i64, 0.0);
        est.add(t1, t2, t3, t4);
        let e = est.estimate().expect("estimate");
        // Measured offset is true offset + (fwd - rev) / 2 = -7 + 3 ms.
        assert!((e.offset_ns + 4e6).abs() < 1.0);
        assert!(e.error_ns >= 3e6, "true offset must lie inside the bound");
    }

    #[test]
    fn drift_is_fitted_over_windows() {
        // 20 ppm drift, 1 s windows over 60 s, symmetric 1 ms delays with a queued exchange
        // next to every clean one.
        let mut est = OffsetEstimator::new(1_000 * MS);
        for i in 0..600u64 {
            let t = START + i * 100 * MS;
            let queue = if i % 10 == 0 { 0 } else { 3 * MS };
            let [t1, t2, t3, t4] = exchange(t, MS + queue, MS, 10 * MS as i64, 20e-6);
            est.add(t1, t2, t3, t4);
        }
        let e = est.estimate().expect("estimate");
        assert_eq!(e.windows, 60);
        assert!((e.drift_ppm - 20.0).abs() < 0.01, "drift {}", e.drift_ppm);
        // At 30 s the peer is 10 ms + 600 us ahead.
        let at = e.offset_at(Nanos(START + 30_000 * MS));
        assert!((at - 10_600_000).abs() < 1_000, "offset at 30 s {at}");
        assert!((e.error_ns - 1e6).abs() < 100.0, "error {}", e.error_ns);
    }

    #[test]
    fn points_stay_bounded_over_a_long_test() {
        // One exchange per 1 ms window for 20 000 windows: the points are merged, not grown.
        let mut est = OffsetEstimator::new(MS);
        for i in 0..20_000u64 {
            let [t1, t2, t3, t4] = exchange(START + i * MS, MS, MS, 3 * MS as i64, 0.0);
            est.add(t1, t2, t3, t4);
            assert!(est.points() <= MAX_POINTS);
        }
        let e = est.estimate().expect("estimate");
        assert!((e.offset_ns - 3e6).abs() < 1.0, "offset {}", e.offset_ns);
        assert_eq!(e.samples, 20_000);
    }

    #[test]
    fn negative_round_trip_rejected() {
        let mut est = OffsetEstimator::new(MS);
        assert!(!est.add_raw(Nanos(START), 1_000, -2_000));
        assert_eq!(est.rejected(), 1);
        assert!(est.estimate().is_none());
    }
}
