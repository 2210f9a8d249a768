//! Wire formats as typed views over byte buffers. Parse and emit are symmetric.

pub mod stamp;
pub mod stamp_clock_tlv;
pub mod stamp_tlv;
