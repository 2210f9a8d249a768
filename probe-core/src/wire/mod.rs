//! Wire formats as typed views over byte buffers. Parse and emit are symmetric.

pub mod answer;
pub mod checksum;
pub mod icmp;
pub mod icmp_ext;
pub mod mpls;
pub mod packet_error;
pub mod probe;
pub mod quote;
pub mod reply_kind;
pub mod stamp;
pub mod stamp_auth;
pub mod stamp_clock_tlv;
pub mod stamp_hmac;
pub mod stamp_tlv;
