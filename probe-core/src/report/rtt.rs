//! The round-trip summary that ping and trace reports share.

use serde::{Deserialize, Serialize};

/// Round-trip statistics in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RttMs {
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// Largest.
    pub max: f64,
    /// Population standard deviation.
    pub stddev: f64,
}

/// How text output names an address: `NAME (ADDR)`, or the address alone when the name is
/// the address.
pub(crate) fn labelled(name: &str, addr: impl std::fmt::Display) -> String {
    let addr = addr.to_string();
    if name == addr {
        addr
    } else {
        format!("{name} ({addr})")
    }
}
