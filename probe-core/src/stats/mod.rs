//! Statistics: delay distributions, loss/duplicate/reorder tracking, jitter and IPDV.

mod distribution;

pub use distribution::{Distribution, Summary};
