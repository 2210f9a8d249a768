//! The exact samples of a [`Distribution`](super::Distribution) before its histograms take
//! over: 32-bit while every sample fits (delays under about 2.1 s, nearly all of them), so a
//! short test's distributions take half the memory, and 64-bit from the first that does not.

/// Signed nanosecond samples, stored as narrowly as they allow.
#[derive(Clone, Debug)]
pub(super) enum ExactSamples {
    /// Every sample fits in 32 bits.
    Narrow(Vec<i32>),
    /// Some sample did not.
    Wide(Vec<i64>),
}

impl Default for ExactSamples {
    fn default() -> Self {
        ExactSamples::Narrow(Vec::new())
    }
}

impl ExactSamples {
    /// No samples, with room for `n`.
    pub(super) fn with_capacity(n: usize) -> Self {
        ExactSamples::Narrow(Vec::with_capacity(n))
    }

    /// Samples held.
    pub(super) fn len(&self) -> usize {
        match self {
            ExactSamples::Narrow(v) => v.len(),
            ExactSamples::Wide(v) => v.len(),
        }
    }

    /// Whether it holds no sample.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples it has room for without growing.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        match self {
            ExactSamples::Narrow(v) => v.capacity(),
            ExactSamples::Wide(v) => v.capacity(),
        }
    }

    /// Adds one sample; the first that does not fit in 32 bits widens the storage.
    pub(super) fn push(&mut self, ns: i64) {
        match self {
            ExactSamples::Narrow(v) => match i32::try_from(ns) {
                Ok(x) => v.push(x),
                Err(_) => {
                    let mut wide = Vec::with_capacity(v.capacity().max(v.len() + 1));
                    wide.extend(v.iter().map(|&x| i64::from(x)));
                    wide.push(ns);
                    *self = ExactSamples::Wide(wide);
                }
            },
            ExactSamples::Wide(v) => v.push(ns),
        }
    }

    /// Every sample, in the order added.
    pub(super) fn to_vec(&self) -> Vec<i64> {
        match self {
            ExactSamples::Narrow(v) => v.iter().map(|&x| i64::from(x)).collect(),
            ExactSamples::Wide(v) => v.clone(),
        }
    }

    /// Forgets every sample (keeps the allocation).
    pub(super) fn clear(&mut self) {
        match self {
            ExactSamples::Narrow(v) => v.clear(),
            ExactSamples::Wide(v) => v.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_until_a_sample_does_not_fit_then_wide_with_every_sample() {
        let mut s = ExactSamples::with_capacity(4);
        s.push(-5);
        s.push(i64::from(i32::MAX));
        assert!(matches!(s, ExactSamples::Narrow(_)));
        s.push(3_000_000_000); // 3 s
        s.push(7);
        assert!(matches!(s, ExactSamples::Wide(_)));
        assert_eq!(s.to_vec(), [-5, i64::from(i32::MAX), 3_000_000_000, 7]);
        assert_eq!((s.len(), s.capacity()), (4, 4));
        s.push(i64::MIN);
        assert_eq!(s.to_vec()[4], i64::MIN);
        s.clear();
        assert!(s.is_empty());
    }
}
