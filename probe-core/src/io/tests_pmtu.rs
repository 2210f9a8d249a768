//! Loopback tests of the don't-fragment / path-MTU modes: the DF bit on the wire (seen by a
//! raw socket) and `IPV6_DONTFRAG` refusing datagrams over the loopback MTU.

use std::net::SocketAddr;

use pnet_packet::ipv4::{Ipv4Flags, Ipv4Packet};
use pnet_packet::udp::UdpPacket;

use crate::io::test_skip::require;
use crate::io::tests_udp::recv_within;
use crate::io::{PmtuMode, Privileges, SocketOptions, TimestampedSocket, raw_ip_socket};

fn udp(addr: &str, opts: &SocketOptions) -> TimestampedSocket {
    TimestampedSocket::bind_udp(addr.parse().expect("literal address"), opts, false)
        .expect("bind loopback UDP socket")
}

/// The DF flag of the IPv4 packet carrying a datagram from `client`, as a raw UDP socket
/// sees it.
async fn df_bit_on_the_wire(
    raw: &TimestampedSocket,
    client: &TimestampedSocket,
    to: SocketAddr,
) -> bool {
    let port = client.local_addr().expect("bound").port();
    client.send_to(b"df?", to).await.expect("send");
    let mut buf = [0u8; 2048];
    for _ in 0..100 {
        let meta = recv_within(raw, &mut buf).await;
        let ip = Ipv4Packet::new(&buf[..meta.len]).expect("raw IPv4 read starts with the header");
        let ihl = usize::from(ip.get_header_length()) * 4;
        let Some(udp) = UdpPacket::new(&buf[ihl..meta.len]) else {
            continue;
        };
        if udp.get_source() == port {
            return ip.get_flags() & Ipv4Flags::DontFragment != 0;
        }
    }
    panic!("the datagram from port {port} never showed up on the raw socket");
}

#[tokio::test]
async fn df_bit_follows_the_pmtu_mode() {
    if !require(
        Privileges::detect().expect("read /proc").cap_net_raw,
        "watching the DF bit needs a raw socket (CAP_NET_RAW)",
    ) {
        return;
    }
    let raw = raw_ip_socket(false, libc::IPPROTO_UDP, false, &SocketOptions::default())
        .expect("raw UDP socket");
    let raw = TimestampedSocket::from_socket(raw, false).expect("register");
    let server = udp("127.0.0.1:0", &SocketOptions::default());
    let to = server.local_addr().expect("bound");
    for (mode, df) in [
        (PmtuMode::Dont, false),
        (PmtuMode::Do, true),
        (PmtuMode::Probe, true),
    ] {
        let client = udp(
            "127.0.0.1:0",
            &SocketOptions {
                pmtu: Some(mode),
                ..SocketOptions::default()
            },
        );
        assert_eq!(df_bit_on_the_wire(&raw, &client, to).await, df, "{mode:?}");
    }
}

/// 65 500 bytes of UDP payload make an IPv6 packet of 65 548 bytes, over the 65 536-byte
/// loopback MTU: refused with `EMSGSIZE` under `Do`/`Probe`, fragmented and delivered under
/// `Dont`.
#[tokio::test]
async fn ipv6_dontfrag_refuses_datagrams_over_the_mtu() {
    let opts = SocketOptions {
        recv_buffer: Some(1 << 20),
        ..SocketOptions::default()
    };
    let server = udp("[::1]:0", &opts);
    let to = server.local_addr().expect("bound");
    let big = vec![0x5au8; 65_500];
    for mode in [PmtuMode::Do, PmtuMode::Probe] {
        let client = udp(
            "[::1]:0",
            &SocketOptions {
                pmtu: Some(mode),
                ..SocketOptions::default()
            },
        );
        let err = client
            .send_to(&big, to)
            .await
            .expect_err("over the MTU with DF");
        assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{mode:?}");
    }
    let client = udp(
        "[::1]:0",
        &SocketOptions {
            pmtu: Some(PmtuMode::Dont),
            ..SocketOptions::default()
        },
    );
    client.send_to(&big, to).await.expect("fragmenting send");
    let mut buf = vec![0u8; 70_000];
    let meta = recv_within(&server, &mut buf).await;
    assert_eq!(meta.len, big.len());
    assert!(buf[..meta.len].iter().all(|b| *b == 0x5a));
}
