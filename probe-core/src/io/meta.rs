//! What the kernel tells about one received datagram besides its bytes.

use std::net::{IpAddr, SocketAddr};

use crate::io::cmsg::{self, PacketSource, SendOptions};
use crate::io::sockaddr;
use crate::io::sys::Received;
use crate::io::timestamp::{TimestampSource, resolve};
use crate::time::Nanos;

/// Metadata of one received datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes of the datagram now in the buffer.
    pub len: usize,
    /// The datagram was longer than the buffer; the rest was dropped (`MSG_TRUNC`).
    pub truncated: bool,
    /// The sender. IPv4 senders on a dual-stack IPv6 socket appear as IPv4 addresses.
    /// For raw and ICMP sockets the port is 0.
    pub source: Option<SocketAddr>,
    /// Receive time (UNIX epoch, `CLOCK_REALTIME`).
    pub time: Nanos,
    /// Whether [`RecvMeta::time`] came from the kernel or from user space.
    pub time_source: TimestampSource,
    /// TTL / hop limit of the packet as it arrived (needs `recv_ttl`).
    pub ttl: Option<u8>,
    /// TOS / traffic class byte as it arrived, DSCP in the upper six bits (needs `recv_tos`).
    pub tos: Option<u8>,
    /// The address the packet was sent to, i.e. the local address it reached us on
    /// (needs `pktinfo`).
    pub local: Option<IpAddr>,
    /// Index of the interface the packet arrived on (needs `pktinfo`).
    pub ifindex: Option<u32>,
    /// Datagrams this socket has dropped so far because its receive buffer was full, a
    /// running total (needs `drop_counter`; the kernel adds it once a drop happened).
    pub drops: Option<u32>,
}

impl RecvMeta {
    /// Builds the metadata from a receive result, the address and control bytes the kernel
    /// filled in, and the user-space time read after the call.
    pub(crate) fn from_parts(
        received: Received,
        buf_len: usize,
        name: &[u8],
        control: &[u8],
        user_time: Nanos,
    ) -> Self {
        let anc = cmsg::parse(&control[..received.control_len.min(control.len())]);
        let (time, time_source) = resolve(anc.time, user_time);
        RecvMeta {
            len: received.len.min(buf_len),
            truncated: received.flags & libc::MSG_TRUNC != 0,
            source: sockaddr::decode(&name[..received.name_len.min(name.len())]),
            time,
            time_source,
            ttl: anc.ttl,
            tos: anc.tos,
            local: anc.local,
            ifindex: anc.ifindex,
            drops: anc.drops,
        }
    }

    /// The source to send a reply from so that it leaves from the address this datagram
    /// reached (for servers bound to a wildcard address). IPv6 link-local addresses keep the
    /// interface, other addresses leave the interface to routing. `None` without `pktinfo`.
    pub fn reply_source(&self) -> Option<PacketSource> {
        self.local.map(|addr| {
            let link_local = matches!(addr, IpAddr::V6(v6) if v6.is_unicast_link_local());
            PacketSource {
                addr,
                ifindex: if link_local {
                    self.ifindex.unwrap_or(0)
                } else {
                    0
                },
            }
        })
    }

    /// [`SendOptions`] for a reply: the source from [`RecvMeta::reply_source`], the
    /// socket's TTL and TOS.
    pub fn reply_options(&self) -> SendOptions {
        SendOptions::from_source(self.reply_source())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn truncation_source_and_user_time() {
        let mut name = [0u8; sockaddr::SOCKADDR_LEN];
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("literal");
        let name_len = sockaddr::encode(peer, false, &mut name);
        let r = Received {
            len: 3000,
            name_len,
            control_len: 0,
            flags: libc::MSG_TRUNC,
        };
        let m = RecvMeta::from_parts(r, 2048, &name, &[], Nanos(99));
        assert_eq!(m.len, 2048);
        assert!(m.truncated);
        assert_eq!(m.source, Some(peer));
        assert_eq!((m.time, m.time_source), (Nanos(99), TimestampSource::User));
        assert_eq!(m.reply_source(), None);
    }

    #[test]
    fn reply_source_keeps_interface_only_for_link_local() {
        let mut m = RecvMeta {
            local: Some("fe80::1".parse::<Ipv6Addr>().expect("literal").into()),
            ifindex: Some(4),
            ..RecvMeta::default()
        };
        assert_eq!(m.reply_source().map(|s| s.ifindex), Some(4));
        m.local = Some("2001:db8::1".parse::<Ipv6Addr>().expect("literal").into());
        assert_eq!(m.reply_source().map(|s| s.ifindex), Some(0));
    }
}
