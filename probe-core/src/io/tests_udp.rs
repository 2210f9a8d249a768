//! Loopback tests of [`TimestampedSocket`] over UDP: kernel timestamps, metadata, batches,
//! source selection and the error queue. Traffic goes to 127.0.0.0/8 and `::1` only.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::timeout;

use crate::io::{
    ErrQueueMessage, IcmpError, PacketSource, RecvBatch, RecvMeta, SendBatch, SendOptions,
    SocketOptions, TimestampMode, TimestampSource, TimestampedSocket, TxId, TxStampKind,
    TxTimestamp,
};
use crate::time::Nanos;

const WAIT: Duration = Duration::from_secs(3);

fn udp(addr: &str, opts: &SocketOptions, tx: bool) -> TimestampedSocket {
    TimestampedSocket::bind_udp(addr.parse().expect("literal address"), opts, tx)
        .expect("bind loopback UDP socket")
}

fn addr_of(s: &TimestampedSocket) -> SocketAddr {
    s.local_addr().expect("bound socket has an address")
}

/// Keeps one timestamping socket open for the whole test run and waits until the kernel
/// stamps received packets.
///
/// The kernel turns its global receive-timestamp switch on from a work queue when the first
/// socket asks for timestamps (and off again when the last one closes), so packets right
/// after that moment can arrive without a kernel timestamp and get a user-space one. Tests
/// that insist on kernel timestamps call this first.
pub(super) fn kernel_rx_timestamps_on() {
    static KEEPER: OnceLock<std::net::UdpSocket> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind keeper socket");
        crate::io::enable_timestamps(&s, false);
        s.set_read_timeout(Some(WAIT)).expect("read timeout");
        let addr = s.local_addr().expect("address");
        let mut batch = RecvBatch::new(1, 16);
        for _ in 0..1000 {
            s.send_to(b"warm-up", addr).expect("send to self");
            s.peek(&mut [0u8; 1]).expect("datagram to self arrives");
            batch.recv_from_fd(s.as_fd()).expect("recv");
            if batch
                .get(0)
                .is_some_and(|(_, m)| m.time_source == TimestampSource::Kernel)
            {
                return s;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("kernel receive timestamps never switched on");
    });
}

/// Receives one datagram, failing the test after [`WAIT`].
pub(super) async fn recv_within(s: &TimestampedSocket, buf: &mut [u8]) -> RecvMeta {
    match timeout(WAIT, s.recv(buf)).await {
        Ok(result) => result.expect("recv"),
        Err(elapsed) => panic!("no datagram arrived: {elapsed}"),
    }
}

/// Receives one batch, failing the test after [`WAIT`].
async fn recv_batch_within(s: &TimestampedSocket, batch: &mut RecvBatch) -> usize {
    match timeout(WAIT, s.recv_batch(batch)).await {
        Ok(result) => result.expect("recvmmsg"),
        Err(elapsed) => panic!("no batch arrived: {elapsed}"),
    }
}

/// Reads error-queue messages until `count` transmit timestamps arrived.
async fn tx_timestamps(s: &TimestampedSocket, count: usize) -> BTreeMap<TxId, TxTimestamp> {
    let mut out = BTreeMap::new();
    let mut buf = [0u8; 64];
    while out.len() < count {
        match timeout(WAIT, s.recv_error(&mut buf)).await {
            Ok(Ok(ErrQueueMessage::TxTimestamp(t))) => {
                assert!(out.insert(t.id, t).is_none(), "duplicate id {:?}", t.id);
            }
            Ok(Ok(other)) => panic!("unexpected error-queue message {other:?}"),
            Ok(Err(e)) => panic!("error queue read failed: {e}"),
            Err(elapsed) => panic!("{elapsed}: {} of {count} transmit timestamps", out.len()),
        }
    }
    out
}

/// Reads the next ICMP error from the error queue.
async fn icmp_error(s: &TimestampedSocket, buf: &mut [u8]) -> IcmpError {
    loop {
        match timeout(WAIT, s.recv_error(buf)).await {
            Ok(Ok(ErrQueueMessage::Icmp(e))) => return e,
            Ok(Ok(ErrQueueMessage::TxTimestamp(_))) => {}
            Ok(other) => panic!("unexpected error-queue result {other:?}"),
            Err(elapsed) => panic!("no ICMP error arrived: {elapsed}"),
        }
    }
}

/// A port that was just bound and released, so nothing listens on it.
fn closed_port(ip: &str) -> SocketAddr {
    let s = std::net::UdpSocket::bind((ip, 0)).expect("bind to find a free port");
    s.local_addr().expect("address")
}

#[tokio::test]
async fn udp4_receive_metadata_and_kernel_timestamp() {
    kernel_rx_timestamps_on();
    let server = udp(
        "127.0.0.1:0",
        &SocketOptions::default().with_receive_metadata(),
        false,
    );
    assert_eq!(
        server.timestamp_mode(),
        TimestampMode::Timestamping { tx: false }
    );
    for (ttl, dscp) in [(64u8, 46u8), (17, 10)] {
        let opts = SocketOptions {
            ttl: Some(ttl),
            ..SocketOptions::default().with_dscp(dscp)
        };
        let client = udp("127.0.0.1:0", &opts, false);
        let before = Nanos::now_realtime();
        client
            .send_to(b"metadata", addr_of(&server))
            .await
            .expect("send");
        let mut buf = [0u8; 64];
        let meta = recv_within(&server, &mut buf).await;
        let after = Nanos::now_realtime();
        assert_eq!(&buf[..meta.len], b"metadata");
        assert_eq!(meta.source, Some(addr_of(&client)));
        assert_eq!(meta.time_source, TimestampSource::Kernel);
        assert!(
            before <= meta.time && meta.time <= after,
            "{before} <= {} <= {after}",
            meta.time
        );
        assert!((after - meta.time).abs() < 1_000_000_000);
        assert_eq!(meta.ttl, Some(ttl));
        assert_eq!(meta.tos, Some(dscp << 2));
        assert_eq!(meta.local, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(meta.ifindex.is_some_and(|i| i > 0));
        assert!(!meta.truncated);
    }
}

#[tokio::test]
async fn udp6_receive_metadata_and_kernel_timestamp() {
    kernel_rx_timestamps_on();
    let server = udp(
        "[::1]:0",
        &SocketOptions::default().with_receive_metadata(),
        false,
    );
    let opts = SocketOptions {
        ttl: Some(33),
        ..SocketOptions::default().with_dscp(34)
    };
    let client = udp("[::1]:0", &opts, false);
    let before = Nanos::now_realtime();
    client
        .send_to(b"six", addr_of(&server))
        .await
        .expect("send");
    let mut buf = [0u8; 64];
    let meta = recv_within(&server, &mut buf).await;
    assert_eq!(meta.time_source, TimestampSource::Kernel);
    assert!(before <= meta.time && meta.time <= Nanos::now_realtime());
    assert_eq!(meta.source, Some(addr_of(&client)));
    assert_eq!(meta.ttl, Some(33));
    assert_eq!(meta.tos, Some(34 << 2));
    assert_eq!(meta.local, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
}

/// A burst of sends: every datagram's [`TxId`] comes back with a transmit timestamp that
/// precedes the receiver's kernel timestamp of the same datagram.
#[tokio::test]
async fn tx_timestamps_carry_the_ids_of_a_burst() {
    kernel_rx_timestamps_on();
    let cases = [
        ("127.0.0.1:0", "IPv4"),
        ("[::1]:0", "IPv6"),
        ("[::ffff:127.0.0.1]:0", "IPv4 on IPv6 sockets"),
    ];
    for (bind, label) in cases {
        let server = udp(bind, &SocketOptions::default(), false);
        let client = udp(bind, &SocketOptions::default(), true);
        assert!(client.timestamp_mode().tx_enabled());
        let before = Nanos::now_realtime();
        let mut ids = Vec::new();
        for i in 0..32u32 {
            ids.push(
                client
                    .send_to(&i.to_be_bytes(), addr_of(&server))
                    .await
                    .expect("send"),
            );
        }
        assert_eq!(ids, (0..32).map(TxId).collect::<Vec<_>>(), "{label}");
        let mut rx_times = BTreeMap::new();
        let mut buf = [0u8; 16];
        while rx_times.len() < 32 {
            let meta = recv_within(&server, &mut buf).await;
            let seq = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
            rx_times.insert(TxId(seq), meta.time);
        }
        let stamps = tx_timestamps(&client, 32).await;
        let after = Nanos::now_realtime();
        assert_eq!(stamps.keys().copied().collect::<Vec<_>>(), ids, "{label}");
        let mut last = before;
        for (id, t) in &stamps {
            assert_eq!(t.kind, TxStampKind::Send);
            assert!(
                last <= t.time && t.time <= after,
                "{label}: id {id:?} out of order"
            );
            assert!(
                t.time <= rx_times[id],
                "{label}: sent after received for {id:?}"
            );
            last = t.time;
        }
    }
}

/// Send, echo, receive on loopback; the kernel TX → RX round trip is well under 1 ms.
#[tokio::test]
async fn loopback_round_trip_under_a_millisecond() {
    kernel_rx_timestamps_on();
    let server = std::sync::Arc::new(udp("127.0.0.1:0", &SocketOptions::default(), false));
    let echo = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            for _ in 0..20 {
                let meta = server.recv(&mut buf).await.expect("echo recv");
                let peer = meta.source.expect("peer address");
                server
                    .send_to(&buf[..meta.len], peer)
                    .await
                    .expect("echo send");
            }
        })
    };
    let client = udp("127.0.0.1:0", &SocketOptions::default(), true);
    let mut rtts = Vec::new();
    let mut buf = [0u8; 64];
    for i in 0..20u32 {
        let id = client
            .send_to(&i.to_be_bytes(), addr_of(&server))
            .await
            .expect("send");
        let meta = recv_within(&client, &mut buf).await;
        assert_eq!(meta.time_source, TimestampSource::Kernel);
        let sent = tx_timestamps(&client, 1).await;
        let rtt = meta.time - sent[&id].time;
        assert!(rtt > 0, "negative round trip {rtt} ns");
        rtts.push(rtt);
    }
    echo.await.expect("echo task");
    let min = rtts.iter().min().copied().unwrap_or(i64::MAX);
    assert!(min < 1_000_000, "fastest loopback round trip {min} ns");
}

/// Reflector shape: `send_batch` out, `recv_batch` in, replies built into a [`SendBatch`]
/// from each request's metadata, and back.
#[tokio::test]
async fn batches_through_a_reflector() {
    kernel_rx_timestamps_on();
    let opts = SocketOptions::default().with_receive_metadata();
    let reflector = udp("127.0.0.1:0", &opts, false);
    let client = udp("127.0.0.1:0", &opts, true);
    let mut out = SendBatch::new(64, 128);
    for i in 0..64u16 {
        assert!(out.push(
            &[&i.to_be_bytes()[..], &[7u8; 30]].concat(),
            addr_of(&reflector),
            SendOptions::default()
        ));
    }
    let report = client.send_batch(&mut out).await.expect("sendmmsg");
    assert_eq!((report.sent, report.failed), (64, 0));
    assert_eq!(out.tx_id(63), Some(TxId(63)));

    let mut inbox = RecvBatch::new(16, 2048);
    let mut replies = SendBatch::new(64, 128);
    while !replies.is_full() {
        recv_batch_within(&reflector, &mut inbox).await;
        assert!(inbox.len() <= 16);
        for (data, meta) in inbox.iter() {
            assert_eq!(meta.source, Some(addr_of(&client)));
            assert_eq!(meta.time_source, TimestampSource::Kernel);
            let reply = [data, &meta.ttl.unwrap_or(0).to_be_bytes()[..]].concat();
            let dst = meta.source.expect("source");
            assert!(replies.push(&reply, dst, meta.reply_options()));
        }
    }
    let report = reflector.send_batch(&mut replies).await.expect("reflect");
    assert_eq!(report.sent, 64);

    let mut back = RecvBatch::new(64, 2048);
    let mut seen = Vec::new();
    while seen.len() < 64 {
        recv_batch_within(&client, &mut back).await;
        for (data, meta) in back.iter() {
            assert_eq!(meta.source, Some(addr_of(&reflector)));
            assert_eq!(data.len(), 33);
            assert_eq!(data[32], 64, "reflector saw TTL 64");
            seen.push(u16::from_be_bytes([data[0], data[1]]));
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..64).collect::<Vec<_>>());
    assert_eq!(tx_timestamps(&client, 64).await.len(), 64);
}

/// A server on a wildcard address answers from the address it was reached on, for IPv4
/// and for IPv4 peers of a dual-stack IPv6 socket.
#[tokio::test]
async fn wildcard_server_replies_from_the_reached_address() {
    let cases = [
        ("0.0.0.0:0", Some(false), "127.0.0.2"),
        ("[::]:0", Some(false), "127.0.0.3"),
    ];
    for (bind, v6_only, reached) in cases {
        let opts = SocketOptions {
            v6_only,
            ..SocketOptions::default().with_receive_metadata()
        };
        let server = udp(bind, &opts, false);
        let client = udp("127.0.0.1:0", &SocketOptions::default(), false);
        let reached: IpAddr = reached.parse().expect("literal");
        let target = SocketAddr::new(reached, addr_of(&server).port());
        client.send_to(b"ping", target).await.expect("send");
        let mut buf = [0u8; 16];
        let meta = recv_within(&server, &mut buf).await;
        assert_eq!(meta.local, Some(reached), "{bind}");
        assert_eq!(meta.source, Some(addr_of(&client)), "{bind}");
        let peer = meta.source.expect("source");
        // Without a source the kernel picks 127.0.0.1; with pktinfo the reached address.
        server.send_to(b"plain", peer).await.expect("reply");
        server
            .send_with(b"pinned", peer, &meta.reply_options())
            .await
            .expect("reply");
        let plain = recv_within(&client, &mut buf).await;
        assert_eq!(
            plain.source.map(|s| s.ip()),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        let pinned = recv_within(&client, &mut buf).await;
        assert_eq!(pinned.source, Some(target), "{bind}");
        assert_eq!(&buf[..pinned.len], b"pinned");
    }
}

/// `IP_RECVERR`: a datagram to a closed port comes back as ICMP port unreachable on the
/// error queue, and the pending socket error does not break the next send or receive.
#[tokio::test]
async fn port_unreachable_arrives_on_the_error_queue() {
    kernel_rx_timestamps_on();
    // (client bind address, target address, ICMPv6?, (type, code)): port unreachable is
    // ICMP 3/3 and ICMPv6 1/4; an IPv6 socket bound to an IPv4-mapped address gets ICMP.
    let cases = [
        ("127.0.0.1", "127.0.0.1", false, (3u8, 3u8)),
        ("::1", "::1", true, (1, 4)),
        ("::ffff:127.0.0.1", "127.0.0.1", false, (3, 3)),
    ];
    for (client_ip, ip, icmpv6, (icmp_type, icmp_code)) in cases {
        let bind = SocketAddr::new(ip.parse().expect("literal"), 0);
        let client_bind = SocketAddr::new(client_ip.parse().expect("literal"), 0);
        let opts = SocketOptions {
            recv_err: true,
            recv_ttl: true,
            ..SocketOptions::default()
        };
        let client = TimestampedSocket::bind_udp(client_bind, &opts, false).expect("client");
        let live =
            TimestampedSocket::bind_udp(bind, &SocketOptions::default(), false).expect("live peer");
        let closed = closed_port(ip);
        let before = Nanos::now_realtime();
        client
            .send_to(b"probe-1234", closed)
            .await
            .expect("send to closed port");
        // Let the ICMP error arrive and set the socket error before the next send.
        tokio::time::sleep(Duration::from_millis(50)).await;
        client
            .send_to(b"after", addr_of(&live))
            .await
            .expect("send despite pending error");
        let mut buf = [0u8; 64];
        let meta = recv_within(&live, &mut buf).await;
        assert_eq!(&buf[..meta.len], b"after");

        let mut quoted = [0u8; 128];
        let e = icmp_error(&client, &mut quoted).await;
        assert_eq!(e.icmpv6, icmpv6);
        assert_eq!((e.icmp_type, e.icmp_code), (icmp_type, icmp_code), "{ip}");
        assert_eq!(e.errno, libc::ECONNREFUSED);
        assert_eq!(e.offender, Some(bind.ip()));
        assert_eq!(e.original_dst, Some(closed));
        assert_eq!(
            &quoted[..e.payload_len],
            b"probe-1234",
            "loopback quotes the payload"
        );
        assert_eq!(e.time_source, TimestampSource::Kernel);
        assert!(before <= e.time && e.time <= Nanos::now_realtime());
        assert_eq!(e.ttl, Some(64), "{ip}: hop limit of the ICMP error");
        let mut none = [0u8; 8];
        let empty = client.try_recv_error(&mut none).expect_err("queue drained");
        assert_eq!(empty.kind(), std::io::ErrorKind::WouldBlock);
    }
}

/// Per-datagram source, TTL and TOS override the socket's settings for that datagram only,
/// for IPv4, IPv6, and IPv4 peers of an IPv6 socket.
#[tokio::test]
async fn per_datagram_source_ttl_and_tos() {
    let cases = [
        ("127.0.0.1:0", "127.0.0.1:0", Some("127.0.0.9")),
        ("[::1]:0", "[::1]:0", None),
        ("127.0.0.1:0", "[::ffff:127.0.0.1]:0", None),
    ];
    for (server_bind, client_bind, source) in cases {
        let server = udp(
            server_bind,
            &SocketOptions::default().with_receive_metadata(),
            false,
        );
        let socket_opts = SocketOptions {
            ttl: Some(60),
            ..SocketOptions::default().with_dscp(2)
        };
        let client = udp(client_bind, &socket_opts, false);
        let source: Option<IpAddr> = source.map(|s| s.parse().expect("literal"));
        let opts = SendOptions {
            source: source.map(PacketSource::addr),
            ttl: Some(5),
            tos: Some(0xb8),
        };
        let mut buf = [0u8; 4];
        client
            .send_with(b"x", addr_of(&server), &opts)
            .await
            .expect("send");
        let meta = recv_within(&server, &mut buf).await;
        assert_eq!((meta.ttl, meta.tos), (Some(5), Some(0xb8)), "{client_bind}");
        let expected_source = source.unwrap_or(addr_of(&client).ip());
        assert_eq!(
            meta.source.map(|s| s.ip()),
            Some(expected_source),
            "{client_bind}"
        );
        client.send_to(b"y", addr_of(&server)).await.expect("send");
        let meta = recv_within(&server, &mut buf).await;
        assert_eq!(
            (meta.ttl, meta.tos),
            (Some(60), Some(2 << 2)),
            "{client_bind}"
        );
    }
}
