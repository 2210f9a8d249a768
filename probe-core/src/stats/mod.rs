//! Statistics: delay distributions, loss/duplicate/reorder tracking, jitter and IPDV, an
//! emulated voice jitter buffer and the ITU-T G.107 E-model.

mod distribution;
pub mod emodel;
mod exact;
mod jitter;
mod jitter_buffer;
mod loss;

pub use distribution::{Distribution, Summary};
pub use jitter::{InterarrivalJitter, Ipdv};
pub use jitter_buffer::{
    JitterBuffer, JitterBufferMode, JitterBufferModeError, JitterBufferStats, PATTERN_WINDOW,
    Playout,
};
pub use loss::{Arrival, DEFAULT_WINDOW, SeqTracker, loss_pct};
