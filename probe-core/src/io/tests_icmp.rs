//! Loopback tests of ICMP echo over raw and datagram sockets. Traffic goes to 127.0.0.1
//! only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use pnet_packet::Packet;
use pnet_packet::icmp::echo_reply::EchoReplyPacket;
use pnet_packet::icmp::echo_request::MutableEchoRequestPacket;
use pnet_packet::icmp::{IcmpPacket, IcmpTypes, checksum};
use pnet_packet::ipv4::Ipv4Packet;
use tokio::time::timeout;

use crate::io::test_skip::require;
use crate::io::tests_udp::{kernel_rx_timestamps_on, recv_within};
use crate::io::{
    ErrQueueMessage, PrivilegeMode, Privileges, SocketOptions, TimestampSource, TimestampedSocket,
    TxId, icmp_socket,
};

const WAIT: Duration = Duration::from_secs(3);
const LOCALHOST: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// An ICMP echo request with `id`, `seq` and a 16-byte payload, checksum filled in.
fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + 16];
    let mut pkt = MutableEchoRequestPacket::new(&mut buf).expect("buffer fits an echo request");
    pkt.set_icmp_type(IcmpTypes::EchoRequest);
    pkt.set_identifier(id);
    pkt.set_sequence_number(seq);
    pkt.set_payload(b"probe-echo-bytes");
    let sum = checksum(&IcmpPacket::new(pkt.packet()).expect("valid ICMP"));
    pkt.set_checksum(sum);
    buf
}

/// Waits for the error-queue transmit timestamp of `id`.
async fn tx_time(s: &TimestampedSocket, id: TxId) -> crate::time::Nanos {
    let mut buf = [0u8; 64];
    loop {
        match timeout(WAIT, s.recv_error(&mut buf)).await {
            Ok(Ok(ErrQueueMessage::TxTimestamp(t))) if t.id == id => return t.time,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("error queue: {e}"),
            Err(elapsed) => panic!("no transmit timestamp for {id:?}: {elapsed}"),
        }
    }
}

/// Raw socket (as root): echo to 127.0.0.1, pick our reply out of all ICMP the host sees,
/// check TTL, source and a kernel-timestamped round trip below 1 ms.
#[tokio::test]
async fn raw_icmp_echo_on_loopback() {
    kernel_rx_timestamps_on();
    let privileges = Privileges::detect().expect("read /proc");
    if !require(
        privileges.cap_net_raw,
        "raw ICMP needs CAP_NET_RAW, which this test process lacks",
    ) {
        return;
    }
    let opts = SocketOptions {
        recv_ttl: true,
        ..SocketOptions::default()
    };
    let socket = icmp_socket(false, PrivilegeMode::Raw, &opts, None).expect("raw ICMP socket");
    let s = TimestampedSocket::from_socket(socket, true).expect("register");
    let id = (std::process::id() & 0xffff) as u16 ^ 0x5a5a;
    let mut rtts = Vec::new();
    for seq in 0..5u16 {
        let tx_id = s
            .send_to(&echo_request(id, seq), LOCALHOST)
            .await
            .expect("send echo");
        let mut buf = [0u8; 256];
        let meta = loop {
            let meta = recv_within(&s, &mut buf).await;
            let ip = Ipv4Packet::new(&buf[..meta.len]).expect("IPv4 header first on raw IPv4");
            let ihl = usize::from(ip.get_header_length()) * 4;
            let Some(reply) = EchoReplyPacket::new(&buf[ihl..meta.len]) else {
                continue;
            };
            if reply.get_icmp_type() == IcmpTypes::EchoReply
                && reply.get_identifier() == id
                && reply.get_sequence_number() == seq
            {
                assert_eq!(reply.payload(), b"probe-echo-bytes");
                break meta;
            }
        };
        assert_eq!(meta.source, Some(LOCALHOST));
        assert_eq!(meta.ttl, Some(64));
        assert_eq!(meta.time_source, TimestampSource::Kernel);
        rtts.push(meta.time - tx_time(&s, tx_id).await);
    }
    assert!(rtts.iter().all(|r| *r > 0), "{rtts:?}");
    let min = rtts.iter().min().copied().unwrap_or(i64::MAX);
    assert!(min < 1_000_000, "fastest raw echo round trip {min} ns");
}

/// ICMP datagram ("ping") socket. It runs where `ping_group_range` covers our groups. As root
/// elsewhere (CI: the default range covers no group) it runs on a thread moved into a network
/// namespace of its own, whose range it opens; the host's sysctl is left alone. Otherwise it
/// says why it skips.
#[test]
fn datagram_icmp_echo_on_loopback() {
    kernel_rx_timestamps_on();
    let privileges = Privileges::detect().expect("read /proc");
    if privileges.ping_allowed() {
        current_thread_runtime().block_on(datagram_echo());
        return;
    }
    let why = format!(
        "net.ipv4.ping_group_range {:?} does not cover groups {:?}, and only root may open it \
         in a private network namespace",
        privileges.ping_group_range, privileges.groups
    );
    if !require(privileges.euid == 0, why) {
        return;
    }
    let run = std::thread::spawn(|| {
        enter_private_netns_with_ping_range();
        current_thread_runtime().block_on(datagram_echo());
    });
    if let Err(panic) = run.join() {
        std::panic::resume_unwind(panic);
    }
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Moves the calling thread (only it) into a new network namespace, brings its loopback up and
/// lets every group open ping sockets there. The namespace goes away with the thread.
fn enter_private_netns_with_ping_range() {
    // SAFETY: unshare takes no pointers; CLONE_NEWNET changes the namespace of the calling
    // thread only, which runs nothing but this test.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    // /proc/sys/net resolves to the namespace of the thread that opens it.
    std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647")
        .expect("set ping_group_range in the private namespace");
    let status = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run `ip` (iproute2) to bring the private loopback up");
    assert!(status.success(), "ip link set lo up: {status}");
    assert!(
        Privileges::detect().expect("read /proc").ping_allowed(),
        "the private namespace's ping range does not apply"
    );
}

async fn datagram_echo() {
    let opts = SocketOptions {
        recv_ttl: true,
        ..SocketOptions::default()
    };
    let socket = icmp_socket(false, PrivilegeMode::Datagram, &opts, Some(LOCALHOST))
        .expect("ICMP datagram socket");
    let s = TimestampedSocket::from_socket(socket, false).expect("register");
    // The kernel replaces the identifier with the socket's port and computes the checksum.
    let port = s.local_addr().expect("bound").port();
    s.send_to(&echo_request(0, 7), LOCALHOST)
        .await
        .expect("send echo");
    let mut buf = [0u8; 256];
    let meta = recv_within(&s, &mut buf).await;
    let reply = EchoReplyPacket::new(&buf[..meta.len]).expect("ICMP without IP header");
    assert_eq!(reply.get_icmp_type(), IcmpTypes::EchoReply);
    assert_eq!(reply.get_sequence_number(), 7);
    if port != 0 {
        assert_eq!(reply.get_identifier(), port);
    }
    assert_eq!(meta.source.map(|a| a.ip()), Some(LOCALHOST.ip()));
    assert_eq!(meta.ttl, Some(64));
    assert_eq!(meta.time_source, TimestampSource::Kernel);
}
