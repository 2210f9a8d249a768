//! Linux `struct tcp_info` (getsockopt `TCP_INFO`), decoded from its bytes.
//!
//! The kernel returns as many bytes as it and the caller both know; fields beyond the length
//! are absent. Offsets are those of `include/uapi/linux/tcp.h`.

use serde::{Deserialize, Serialize};

/// Bytes to ask `TCP_INFO` for (the whole struct of current kernels fits).
pub const TCP_INFO_LEN: usize = 256;

/// The `tcp_info` fields probe reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpInfo {
    /// Smoothed round-trip time, µs (`tcpi_rtt`).
    pub rtt_us: u32,
    /// Its mean deviation, µs (`tcpi_rttvar`).
    pub rttvar_us: u32,
    /// Smallest RTT seen, µs (`tcpi_min_rtt`; 0 on old kernels).
    pub min_rtt_us: u32,
    /// Congestion window, segments (`tcpi_snd_cwnd`).
    pub snd_cwnd: u32,
    /// Sender's maximum segment size, bytes (`tcpi_snd_mss`).
    pub snd_mss: u32,
    /// Segments retransmitted over the connection's life (`tcpi_total_retrans`).
    pub total_retrans: u32,
    /// Bytes acknowledged by the peer (`tcpi_bytes_acked`; 0 on old kernels).
    pub bytes_acked: u64,
    /// Bytes received (`tcpi_bytes_received`; 0 on old kernels).
    pub bytes_received: u64,
}

const RTT: usize = 68;
const RTTVAR: usize = 72;
const SND_CWND: usize = 80;
const SND_MSS: usize = 16;
const TOTAL_RETRANS: usize = 100;
const BYTES_ACKED: usize = 120;
const BYTES_RECEIVED: usize = 128;
const MIN_RTT: usize = 148;

/// The shortest `tcp_info` that carries every mandatory field (up to `tcpi_total_retrans`).
pub(crate) const MIN_LEN: usize = TOTAL_RETRANS + 4;

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        u64::from_ne_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

impl TcpInfo {
    /// Decodes the bytes `TCP_INFO` returned (native byte order); `None` when shorter than
    /// [`MIN_LEN`].
    pub fn parse(b: &[u8]) -> Option<TcpInfo> {
        if b.len() < MIN_LEN {
            return None;
        }
        Some(TcpInfo {
            rtt_us: u32_at(b, RTT),
            rttvar_us: u32_at(b, RTTVAR),
            min_rtt_us: u32_at(b, MIN_RTT),
            snd_cwnd: u32_at(b, SND_CWND),
            snd_mss: u32_at(b, SND_MSS),
            total_retrans: u32_at(b, TOTAL_RETRANS),
            bytes_acked: u64_at(b, BYTES_ACKED),
            bytes_received: u64_at(b, BYTES_RECEIVED),
        })
    }

    /// The congestion window in bytes (segments times the sender's MSS).
    pub fn cwnd_bytes(&self) -> u64 {
        u64::from(self.snd_cwnd) * u64::from(self.snd_mss)
    }
}

#[cfg(test)]
mod tests {
    use std::mem::offset_of;

    use super::*;

    #[test]
    fn offsets_match_the_kernel_struct() {
        assert_eq!(offset_of!(libc::tcp_info, tcpi_rtt), RTT);
        assert_eq!(offset_of!(libc::tcp_info, tcpi_rttvar), RTTVAR);
        assert_eq!(offset_of!(libc::tcp_info, tcpi_snd_cwnd), SND_CWND);
        assert_eq!(offset_of!(libc::tcp_info, tcpi_snd_mss), SND_MSS);
        assert_eq!(
            offset_of!(libc::tcp_info, tcpi_total_retrans),
            TOTAL_RETRANS
        );
        assert_eq!(offset_of!(libc::tcp_info, tcpi_bytes_acked), BYTES_ACKED);
        assert_eq!(
            offset_of!(libc::tcp_info, tcpi_bytes_received),
            BYTES_RECEIVED
        );
        assert_eq!(offset_of!(libc::tcp_info, tcpi_min_rtt), MIN_RTT);
    }

    #[test]
    fn decodes_fields_and_tolerates_short_structs() {
        let mut b = [0u8; TCP_INFO_LEN];
        b[RTT..RTT + 4].copy_from_slice(&1_500u32.to_ne_bytes());
        b[SND_CWND..SND_CWND + 4].copy_from_slice(&10u32.to_ne_bytes());
        b[SND_MSS..SND_MSS + 4].copy_from_slice(&1_448u32.to_ne_bytes());
        b[TOTAL_RETRANS..TOTAL_RETRANS + 4].copy_from_slice(&3u32.to_ne_bytes());
        b[BYTES_ACKED..BYTES_ACKED + 8].copy_from_slice(&123_456u64.to_ne_bytes());
        let i = TcpInfo::parse(&b).expect("full");
        assert_eq!(
            (i.rtt_us, i.snd_cwnd, i.total_retrans, i.bytes_acked),
            (1_500, 10, 3, 123_456)
        );
        assert_eq!(i.cwnd_bytes(), 14_480);
        // An old kernel's 104-byte struct: the later fields read as zero.
        let old = TcpInfo::parse(&b[..MIN_LEN]).expect("old");
        assert_eq!((old.rtt_us, old.bytes_acked, old.min_rtt_us), (1_500, 0, 0));
        assert_eq!(TcpInfo::parse(&b[..MIN_LEN - 1]), None);
    }
}
