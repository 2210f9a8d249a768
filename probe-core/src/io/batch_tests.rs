//! Tests of the batches on loopback sockets.

use super::*;
use std::net::UdpSocket;
use std::os::fd::AsFd;

#[test]
fn push_respects_capacity_and_slot_size() {
    let dst: SocketAddr = "127.0.0.1:9".parse().expect("literal");
    let mut b = SendBatch::new(2, 4);
    assert!(!b.push(&[1, 2, 3, 4, 5], dst, SendOptions::default()));
    assert!(b.push(&[1, 2, 3], dst, SendOptions::default()));
    assert!(b.push_with(dst, SendOptions::default(), |slot| {
        slot[..2].copy_from_slice(&[7, 8]);
        Some(2)
    }));
    assert!(b.is_full());
    assert!(!b.push(&[1], dst, SendOptions::default()));
    assert_eq!(b.payload(0), Some(&[1, 2, 3][..]));
    assert_eq!(b.payload(1), Some(&[7, 8][..]));
    assert_eq!(b.payload(2), None);
    assert_eq!(b.tx_id(0), None);
    b.clear();
    assert!(b.is_empty());
    assert_eq!(b.payload(0), None);
}

/// 64 datagrams of distinct sizes from two senders, out with one `sendmmsg` per sender
/// and in with one `recvmmsg`.
#[test]
fn sendmmsg_then_recvmmsg_64_on_loopback() {
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
    let dst = rx.local_addr().expect("receiver address");
    let tx_a = UdpSocket::bind("127.0.0.1:0").expect("bind sender a");
    let tx_b = UdpSocket::bind("127.0.0.1:0").expect("bind sender b");
    let mut out_a = SendBatch::new(32, 256);
    let mut out_b = SendBatch::new(32, 256);
    for i in 0..32u8 {
        assert!(out_a.push(&vec![i; 10 + usize::from(i)], dst, SendOptions::default()));
        assert!(out_b.push(
            &vec![100 + i; 100 + usize::from(i)],
            dst,
            SendOptions::default()
        ));
    }
    for (sock, batch) in [(&tx_a, &mut out_a), (&tx_b, &mut out_b)] {
        let mut report = SendReport::default();
        let mut next = TxId(0);
        batch
            .send_on_fd(sock.as_fd(), false, &mut next, &mut report)
            .expect("sendmmsg on loopback");
        assert_eq!((report.sent, report.failed), (32, 0));
        assert_eq!(next, TxId(32));
        assert_eq!(batch.tx_id(31), Some(TxId(31)));
        assert!(batch.is_done());
    }

    let mut batch = RecvBatch::new(64, 2048);
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while got.len() < 64 && std::time::Instant::now() < deadline {
        match batch.recv_from_fd(rx.as_fd()) {
            Ok(_) => got.extend(batch.iter().map(|(d, m)| (d.to_vec(), *m))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("recvmmsg failed: {e}"),
        }
    }
    assert_eq!(got.len(), 64);
    let a = tx_a.local_addr().expect("a address");
    let b = tx_b.local_addr().expect("b address");
    let from_a: Vec<_> = got.iter().filter(|(_, m)| m.source == Some(a)).collect();
    let from_b: Vec<_> = got.iter().filter(|(_, m)| m.source == Some(b)).collect();
    assert_eq!((from_a.len(), from_b.len()), (32, 32));
    for (i, (data, meta)) in from_a.iter().enumerate() {
        assert_eq!(meta.len, 10 + i);
        assert_eq!(data, &vec![i as u8; 10 + i]);
        assert!(!meta.truncated);
    }
    for (i, (data, meta)) in from_b.iter().enumerate() {
        assert_eq!(meta.len, 100 + i);
        assert_eq!(data[0], 100 + i as u8);
    }
}

#[test]
fn recv_batch_reports_truncation_and_would_block() {
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    let mut batch = RecvBatch::new(4, 8);
    let err = batch
        .recv_from_fd(rx.as_fd())
        .expect_err("nothing queued yet");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    tx.send_to(&[9u8; 20], rx.local_addr().expect("address"))
        .expect("send");
    rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .expect("timeout");
    let mut peek = [0u8; 1];
    rx.peek(&mut peek).expect("datagram arrives");
    assert_eq!(batch.recv_from_fd(rx.as_fd()).expect("recvmmsg"), 1);
    let (data, meta) = batch.get(0).expect("one datagram");
    assert_eq!(data, &[9u8; 8]);
    assert!(meta.truncated);
    assert_eq!(meta.len, 8);
}

/// A receiver with a tiny buffer drops most of a burst of 64; the drop counter on the
/// next datagram accounts for every one that did not arrive.
#[test]
fn drop_counter_accounts_for_a_full_buffer() {
    let opts = crate::io::SocketOptions {
        recv_buffer: Some(4096),
        drop_counter: true,
        ..crate::io::SocketOptions::default()
    };
    let rx =
        crate::io::udp_socket("127.0.0.1:0".parse().expect("literal"), &opts).expect("receiver");
    let dst = rx.local_addr().expect("address").as_socket().expect("inet");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    let mut burst = SendBatch::new(64, 1000);
    for _ in 0..64 {
        assert!(burst.push(&[3u8; 1000], dst, SendOptions::default()));
    }
    let mut report = SendReport::default();
    burst
        .send_on_fd(tx.as_fd(), false, &mut TxId(0), &mut report)
        .expect("sendmmsg");
    assert_eq!(report.sent, 64);
    // Loopback delivers within the send call; whatever fits is queued now.
    let mut batch = RecvBatch::new(64, 2048);
    let mut arrived = 0;
    while let Ok(n) = batch.recv_from_fd(rx.as_fd()) {
        arrived += n;
    }
    assert!(
        arrived > 0 && arrived < 64,
        "{arrived} of 64 fit a 4 KiB buffer"
    );
    tx.send_to(b"after", dst).expect("send");
    let rx = UdpSocket::from(rx);
    rx.set_nonblocking(false).expect("blocking");
    rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .expect("timeout");
    rx.peek(&mut [0u8; 1]).expect("datagram after the burst");
    assert_eq!(batch.recv_from_fd(rx.as_fd()).expect("recv"), 1);
    let (_, meta) = batch.get(0).expect("one datagram");
    assert_eq!(meta.drops, Some(64 - arrived as u32));
}

/// Runs to one destination with one size group into messages; anything else splits them.
#[test]
fn segmentation_groups_runs_of_equal_datagrams() {
    let a: SocketAddr = "127.0.0.1:9".parse().expect("literal");
    let b: SocketAddr = "127.0.0.1:10".parse().expect("literal");
    let ttl = SendOptions::with_ttl(7);
    let mut batch = SendBatch::new(200, 2000);
    let plan = |batch: &mut SendBatch| {
        let n = batch.plan_messages(0);
        batch.msg_count[..n].to_vec()
    };
    for _ in 0..70 {
        batch.push(&[1; 64], a, SendOptions::default());
    }
    batch.push(&[2; 30], a, SendOptions::default()); // shorter: may end the run
    batch.push(&[3; 64], a, SendOptions::default()); // after a shorter one: a new run
    batch.push(&[4; 64], b, SendOptions::default()); // other destination
    batch.push(&[5; 64], b, ttl); // other options
    batch.push(&[6; 1500], b, ttl); // too long to segment
    batch.push(&[7; 1500], b, ttl);
    assert_eq!(plan(&mut batch), vec![1; 76], "off by default");
    batch.set_segmentation(true);
    assert_eq!(plan(&mut batch), vec![64, 7, 1, 1, 1, 1, 1]);
    // A run's message carries its size in a UDP_SEGMENT control message.
    let n = batch.plan_messages(0);
    assert_eq!(n, 7);
    assert_eq!(
        batch.msg_control_len[0],
        batch.control_lens[0] + cmsg::SEGMENT_CONTROL_LEN
    );
}

/// A segmented batch arrives as separate datagrams, in order, with their own bytes.
#[test]
fn segmented_batch_arrives_as_datagrams() {
    let rx = crate::io::udp_socket(
        "127.0.0.1:0".parse().expect("literal"),
        &crate::io::SocketOptions {
            recv_buffer: Some(1 << 20),
            ..crate::io::SocketOptions::default()
        },
    )
    .expect("receiver");
    let dst = rx.local_addr().expect("address").as_socket().expect("inet");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    let mut out = SendBatch::new(100, 2048);
    out.set_segmentation(true);
    for i in 0..99u8 {
        let len = if i == 70 { 20 } else { 64 };
        assert!(out.push(&vec![i; len], dst, SendOptions::default()));
    }
    let mut report = SendReport::default();
    out.send_on_fd(tx.as_fd(), false, &mut TxId(0), &mut report)
        .expect("sendmmsg");
    assert_eq!(
        (report.sent, report.failed),
        (99, 0),
        "{:?}",
        report.first_error
    );
    assert!(out.segmentation(), "loopback takes segmented sends");
    let mut batch = RecvBatch::new(128, 2048);
    let mut got = Vec::new();
    while let Ok(n) = batch.recv_from_fd(rx.as_fd()) {
        assert!(n > 0);
        got.extend(batch.iter().map(|(d, _)| d.to_vec()));
    }
    assert_eq!(got.len(), 99);
    for (i, d) in got.iter().enumerate() {
        let len = if i == 70 { 20 } else { 64 };
        assert_eq!(d, &vec![i as u8; len], "datagram {i}");
    }
}

/// A socket that refuses segmented sends (`SO_NO_CHECK`: no UDP checksums, which
/// segmentation needs) still gets every datagram out: the batch turns segmentation off.
#[test]
fn refused_segmentation_falls_back_to_single_datagrams() {
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
    rx.set_nonblocking(true).expect("non-blocking");
    let dst = rx.local_addr().expect("address");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    crate::io::sys::setsockopt_int(tx.as_fd(), libc::SOL_SOCKET, libc::SO_NO_CHECK, 1)
        .expect("SO_NO_CHECK");
    let mut out = SendBatch::new(16, 256);
    out.set_segmentation(true);
    for i in 0..16u8 {
        assert!(out.push(&[i; 64], dst, SendOptions::default()));
    }
    let mut report = SendReport::default();
    out.send_on_fd(tx.as_fd(), false, &mut TxId(0), &mut report)
        .expect("sendmmsg");
    assert_eq!(
        (report.sent, report.failed),
        (16, 0),
        "{:?}",
        report.first_error
    );
    assert!(
        !out.segmentation(),
        "the kernel refused; segmentation is off now"
    );
    let mut batch = RecvBatch::new(32, 256);
    let n = batch.recv_from_fd(rx.as_fd()).expect("recvmmsg");
    assert_eq!(n, 16);
    for (i, (d, _)) in batch.iter().enumerate() {
        assert_eq!(d, &[i as u8; 64]);
    }
}
