//! Statistics: delay distributions, loss/duplicate/reorder tracking, jitter and IPDV.

mod distribution;
mod jitter;
mod loss;

pub use distribution::{Distribution, Summary};
pub use jitter::{InterarrivalJitter, Ipdv};
pub use loss::{Arrival, DEFAULT_WINDOW, SeqTracker, loss_pct};
