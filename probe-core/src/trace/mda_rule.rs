//! The MDA stopping rule (Augustin, Friedman, Teixeira; Veitch et al.): how many probes with
//! distinct flows must reach a hop, having seen `k - 1` interfaces there, before concluding
//! that there is no `k`-th one.
//!
//! With `k` equally likely interfaces, the probability that `n` probes miss at least one is
//! `P(k, n) = 1 - k! S(n, k) / k^n`. `n_k` is the smallest `n` with `P(k, n) <= 1 - confidence`.
//! At 95 % this gives the classic table 1, 6, 11, 16, 21, 27, 33, 38, 44, 51, 57 for
//! `k = 1..=11`. `P` is computed with the occupancy Markov chain (number of distinct interfaces
//! seen after each probe), which is numerically stable where the inclusion-exclusion sum is not.

/// Precomputed stopping points for one confidence level.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct StoppingRule {
    /// `n[k - 1]` = probes needed to rule out a `k`-th interface.
    n: Vec<u32>,
}

/// The occupancy chain: `dist[j]` is the probability that `j` distinct interfaces out of `k`
/// were seen.
struct Occupancy {
    k: usize,
    dist: Vec<f64>,
}

impl Occupancy {
    fn new(k: u32) -> Self {
        let mut dist = vec![0.0f64; k as usize + 1];
        dist[0] = 1.0;
        Occupancy {
            k: k as usize,
            dist,
        }
    }

    /// One more probe.
    fn step(&mut self) {
        let kf = self.k as f64;
        for j in (0..=self.k).rev() {
            let stay = self.dist[j] * (j as f64 / kf);
            let arrive = if j > 0 {
                self.dist[j - 1] * ((kf - (j - 1) as f64) / kf)
            } else {
                0.0
            };
            self.dist[j] = stay + arrive;
        }
    }

    fn miss(&self) -> f64 {
        1.0 - self.dist[self.k]
    }
}

/// Probability that `n` uniform draws over `k` interfaces miss at least one.
#[cfg(test)]
fn miss_probability(k: u32, n: u32) -> f64 {
    if k == 0 {
        return 0.0;
    }
    let mut o = Occupancy::new(k);
    for _ in 0..n {
        o.step();
    }
    o.miss()
}

impl StoppingRule {
    /// The rule for `confidence` in (0, 1), with stopping points for up to `max_k` interfaces.
    pub(super) fn new(confidence: f64, max_k: u32) -> Self {
        let alpha = (1.0 - confidence).clamp(1e-9, 0.999);
        let mut n = Vec::with_capacity(max_k as usize);
        for k in 1..=max_k.max(1) {
            let mut o = Occupancy::new(k);
            let mut m = 0;
            while o.miss() > alpha {
                o.step();
                m += 1;
            }
            n.push(m);
        }
        StoppingRule { n }
    }

    /// Probes needed once `seen` interfaces are known (to rule out interface `seen + 1`).
    /// Beyond the table the last step is extrapolated linearly.
    pub(super) fn probes_needed(&self, seen: usize) -> u32 {
        let k = seen + 1;
        if let Some(&v) = self.n.get(k - 1) {
            return v;
        }
        let len = self.n.len();
        let last = self.n[len - 1];
        let step = if len >= 2 {
            last - self.n[len - 2]
        } else {
            last
        };
        last + step * (k - len) as u32
    }

    /// The table `n_1, n_2, ...`.
    #[cfg(test)]
    fn table(&self) -> &[u32] {
        &self.n
    }
}

impl Default for StoppingRule {
    /// 95 % confidence, up to 32 interfaces.
    fn default() -> Self {
        StoppingRule::new(0.95, 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_95_percent_table() {
        let r = StoppingRule::new(0.95, 11);
        assert_eq!(r.table(), &[1, 6, 11, 16, 21, 27, 33, 38, 44, 51, 57]);
        assert_eq!(r.probes_needed(0), 1);
        assert_eq!(r.probes_needed(1), 6);
        assert_eq!(r.probes_needed(10), 57);
    }

    #[test]
    fn other_confidence_levels() {
        // k = 2: P = 2^(1-n), so n_2 = 1 + ceil(log2(1 / alpha)).
        assert_eq!(StoppingRule::new(0.99, 2).table(), &[1, 8]);
        assert_eq!(StoppingRule::new(0.90, 2).table(), &[1, 5]);
        let r99 = StoppingRule::new(0.99, 32);
        let r95 = StoppingRule::default();
        for k in 1..32 {
            assert!(r99.probes_needed(k) >= r95.probes_needed(k));
            assert!(r95.probes_needed(k) > r95.probes_needed(k - 1));
        }
        // Each stopping point is the first n meeting the bound.
        for k in 2..=30u32 {
            let n = r95.probes_needed(k as usize - 1);
            assert!(miss_probability(k, n) <= 0.05);
            assert!(miss_probability(k, n - 1) > 0.05);
        }
    }

    #[test]
    fn miss_probability_matches_closed_forms() {
        // k = 2: 2 * (1/2)^n. k = 3: 3 (2/3)^n - 3 (1/3)^n.
        for n in 1..20 {
            let two = 2.0 * 0.5f64.powi(n);
            assert!((miss_probability(2, n as u32) - two.min(1.0)).abs() < 1e-12);
            let three = 3.0 * (2.0f64 / 3.0).powi(n) - 3.0 * (1.0f64 / 3.0).powi(n);
            assert!((miss_probability(3, n as u32) - three.min(1.0)).abs() < 1e-12);
        }
        assert!(
            (miss_probability(5, 4) - 1.0).abs() < 1e-12,
            "4 probes cannot see 5"
        );
    }

    #[test]
    fn extrapolates_beyond_the_table() {
        let r = StoppingRule::new(0.95, 11);
        assert_eq!(r.probes_needed(11), 57 + 6);
    }
}
