//! Deterministic tests of the ping machine: simulated answers, the global rate, timeouts and
//! the per-probe list.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::ping::TokenBucket;
use crate::wire::answer::TcpReply;
use crate::wire::probe::{PROTO_ICMP, PROTO_UDP, ProbeL4};
use crate::wire::quote::{Quote, QuotedL4};

const SRC: &str = "198.18.0.1";
const MS: u64 = 1_000_000;
const T0: Nanos = Nanos(1_000_000_000_000);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn targets(n: usize) -> Vec<PingTarget> {
    (0..n)
        .map(|i| {
            let a = format!("198.18.{}.{}", 1 + i / 250, 1 + i % 250);
            PingTarget {
                name: a.clone(),
                addr: ip(&a),
                src: ip(SRC),
            }
        })
        .collect()
}

fn config(protocol: Protocol, count: u32) -> PingConfig {
    PingConfig::builder(protocol)
        .count(count)
        .interval(Duration::from_millis(100))
        .timeout(Duration::from_millis(500))
        .rate_pps(0)
        .burst(TokenBucket::default_burst(1000))
        .src_port(40000)
        .build()
        .expect("valid ping settings")
}

/// The answer the target gives to `tx` (echo reply, port unreachable, SYN-ACK or RST).
fn reply(tx: &Transmit, tcp_open: bool) -> Answer {
    let from = tx.probe.dst;
    let (kind, quote, code) = match tx.probe.l4 {
        ProbeL4::IcmpEcho { ident, seq } => (
            AnswerKind::Icmp(IcmpKind::EchoReply { ident, seq }),
            None,
            Some((0, 0)),
        ),
        ProbeL4::Udp { src_port, dst_port } => (
            AnswerKind::Icmp(IcmpKind::Unreachable(Unreachable::Port)),
            Some(quote(
                tx,
                QuotedL4::Udp {
                    src_port,
                    dst_port,
                    length: 0,
                    checksum: tx.probe.l4_checksum.unwrap_or(0),
                },
            )),
            Some((3, 3)),
        ),
        ProbeL4::TcpSyn {
            src_port,
            dst_port,
            seq,
        } => (
            AnswerKind::Tcp(TcpReply {
                src_port: dst_port,
                dst_port: src_port,
                seq: 7,
                ack: seq.wrapping_add(1),
                syn: tcp_open,
                rst: !tcp_open,
            }),
            None,
            None,
        ),
    };
    Answer {
        from,
        reply_ttl: Some(64),
        kind,
        icmp_type_code: code,
        quote,
        mpls: Vec::new(),
    }
}

fn quote(tx: &Transmit, l4: QuotedL4) -> Quote {
    Quote {
        src: tx.probe.src,
        dst: tx.probe.dst,
        protocol: if matches!(l4, QuotedL4::Udp { .. }) {
            PROTO_UDP
        } else {
            PROTO_ICMP
        },
        ttl: 1,
        ip_id: 0,
        flow_label: 0,
        total_len: tx.probe.size,
        l4,
    }
}

/// Drives `m` from `start`, polling every `step_ns`; `answer(tx)` returns the answer and its
/// delay for probes that get one. Returns the send times per target.
fn run(
    m: &mut Ping,
    start: Nanos,
    step_ns: u64,
    mut answer: impl FnMut(&Transmit) -> Option<(Answer, u64)>,
) -> Vec<Transmit> {
    let mut now = start;
    let mut pending: Vec<(Nanos, Answer)> = Vec::new();
    let mut sent = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..1_000_000 {
        pending.sort_by_key(|p| p.0);
        while pending.first().is_some_and(|p| p.0 <= now) {
            let (at, a) = pending.remove(0);
            m.handle_answer(&a, at);
        }
        m.handle_timeout(now);
        while let Some(tx) = m.poll_transmit(now, &mut buf) {
            if let Some((a, delay)) = answer(&tx) {
                pending.push((now + Duration::from_nanos(delay), a));
            }
            sent.push(tx);
        }
        if m.is_done() {
            return sent;
        }
        now = Nanos(now.0 + step_ns);
    }
    panic!("the ping did not finish");
}

#[test]
fn icmp_counts_loss_and_round_trip_times_per_target() {
    let mut m = Ping::new(config(Protocol::Icmp, 3), targets(3), T0).expect("config");
    let silent = ip("198.18.1.3");
    let sent = run(&mut m, T0, MS / 10, |tx| {
        (tx.probe.dst != silent).then(|| (reply(tx, false), 2 * MS))
    });
    assert_eq!(sent.len(), 9);
    let t = m.targets();
    for s in &t[..2] {
        assert_eq!((s.sent, s.received), (3, 3));
        assert_eq!(s.rtt.min(), Some(2_000_000));
        assert_eq!(s.rtt.max(), Some(2_000_000));
        assert_eq!(s.rtt.median(), Some(2_000_000.0));
        assert!(s.error.is_none());
    }
    assert_eq!((t[2].sent, t[2].received), (3, 0));
    assert_eq!(t[2].rtt.min(), None);
    assert_eq!(m.unmatched(), 0);
    // Probes to one target are an interval apart; ids are unique among those in flight.
    for target in t {
        let times: Vec<u64> = sent
            .iter()
            .filter(|x| x.probe.dst == target.target.addr)
            .map(|x| x.at.0)
            .collect();
        assert!(
            times.windows(2).all(|w| w[1] - w[0] >= 100 * MS),
            "{times:?}"
        );
    }
}

#[test]
fn global_rate_is_never_exceeded() {
    let mut cfg = config(Protocol::Icmp, 2);
    cfg.rate_pps = 1000;
    cfg.burst = TokenBucket::default_burst(1000);
    cfg.interval = Duration::from_millis(50);
    let mut m = Ping::new(cfg, targets(300), T0).expect("config");
    // Wakes up 0 to 1.9 ms after the deadline asked for, like a timer of millisecond
    // resolution.
    let mut now = T0;
    let mut buf = Vec::new();
    let mut times = Vec::new();
    let mut k = 0u64;
    while !m.is_done() {
        m.handle_timeout(now);
        while let Some(tx) = m.poll_transmit(now, &mut buf) {
            times.push(tx.at.0);
        }
        k += 1;
        let wake = m.poll_timeout().map_or(now.0, |t| t.0.max(now.0));
        now = Nanos(wake + (k * 7_919 % 20) * 100_000);
        assert!(k < 100_000, "did not finish");
    }
    assert_eq!(times.len(), 600);
    let interval = MS;
    for i in 0..times.len() {
        for j in i + 1..times.len().min(i + 200) {
            let allowed = u64::from(cfg.burst) + (times[j] - times[i]) / interval;
            assert!(
                (j - i + 1) as u64 <= allowed,
                "{} probes in {} ns",
                j - i + 1,
                times[j] - times[i]
            );
        }
    }
    // And the rate is kept, not just bounded: 600 probes at 1000/s take 0.6 s less the burst
    // the full bucket lets go at once.
    let span = times[599] - times[0];
    let fastest = (600 - u64::from(cfg.burst)) * MS;
    assert!(
        (fastest..=fastest + 5 * MS).contains(&span),
        "span {span} ns"
    );
}

#[test]
fn timeouts_lose_probes_and_late_answers_do_not_count() {
    let mut m = Ping::new(config(Protocol::Icmp, 1), targets(2), T0).expect("config");
    let mut buf = Vec::new();
    let a = m.poll_transmit(T0, &mut buf).expect("probe");
    let b = m.poll_transmit(T0, &mut buf).expect("probe");
    assert!(m.poll_transmit(T0, &mut buf).is_none());
    assert_eq!(m.poll_timeout(), Some(Nanos(T0.0 + 500 * MS)));
    assert!(m.handle_answer(&reply(&a, false), Nanos(T0.0 + 499 * MS)));
    m.handle_timeout(Nanos(T0.0 + 500 * MS));
    assert!(m.is_done());
    assert!(!m.handle_answer(&reply(&b, false), Nanos(T0.0 + 501 * MS)));
    assert_eq!(m.targets()[0].received, 1);
    assert_eq!(m.targets()[0].rtt.min(), Some(499 * MS as i64));
    assert_eq!((m.targets()[1].sent, m.targets()[1].received), (1, 0));
    assert_eq!(m.unmatched(), 1);
}

#[test]
fn per_probe_list_keeps_every_probe_in_order() {
    let mut cfg = config(Protocol::Icmp, 4);
    cfg.per_probe = true;
    let mut m = Ping::new(cfg, targets(1), T0).expect("config");
    let mut n = 0u64;
    run(&mut m, T0, MS, |tx| {
        n += 1;
        (n % 2 == 1).then(|| (reply(tx, false), n * MS))
    });
    let t = &m.targets()[0];
    assert_eq!(
        t.per_probe,
        Some(vec![Some(MS as i64), None, Some(3 * MS as i64), None])
    );
    assert_eq!((t.sent, t.received), (4, 2));
    // Without --per-probe nothing is kept per probe.
    let mut m = Ping::new(config(Protocol::Icmp, 4), targets(1), T0).expect("config");
    run(&mut m, T0, MS, |tx| Some((reply(tx, false), MS)));
    assert_eq!(m.targets()[0].per_probe, None);
}

#[test]
fn udp_port_unreachable_from_the_target_is_an_answer() {
    let mut m = Ping::new(config(Protocol::Udp, 2), targets(2), T0).expect("config");
    let router = ip("198.18.0.254");
    let second = ip("198.18.1.2");
    run(&mut m, T0, MS, |tx| {
        let mut a = reply(tx, false);
        if tx.probe.dst == second {
            // A router says the host is unreachable: lost, with the reason.
            a.from = router;
            a.kind = AnswerKind::Icmp(IcmpKind::Unreachable(Unreachable::Host));
        }
        Some((a, MS))
    });
    let t = m.targets();
    assert_eq!((t[0].sent, t[0].received), (2, 2));
    assert_eq!(t[0].port, Some(PortState::Closed));
    assert_eq!((t[1].sent, t[1].received), (2, 0));
    assert_eq!(
        t[1].error.as_deref(),
        Some("host unreachable from 198.18.0.254")
    );
}

#[test]
fn tcp_syn_ack_is_open_and_reset_is_closed() {
    let mut m = Ping::new(config(Protocol::Tcp, 1), targets(2), T0).expect("config");
    let open = ip("198.18.1.1");
    run(&mut m, T0, MS, |tx| {
        Some((reply(tx, tx.probe.dst == open), 3 * MS))
    });
    let t = m.targets();
    assert_eq!(t[0].port, Some(PortState::Open));
    assert_eq!(t[1].port, Some(PortState::Closed));
    assert!(
        t.iter()
            .all(|s| s.received == 1 && s.rtt.min() == Some(3 * MS as i64))
    );
}

#[test]
fn answers_must_come_from_the_probed_target() {
    // Two names for one address are two targets; a reply from elsewhere matches neither.
    let mut list = targets(1);
    list.push(PingTarget {
        name: "alias".into(),
        ..list[0].clone()
    });
    let mut m = Ping::new(config(Protocol::Icmp, 1), list, T0).expect("config");
    let mut buf = Vec::new();
    let a = m.poll_transmit(T0, &mut buf).expect("probe");
    let b = m.poll_transmit(T0, &mut buf).expect("probe");
    assert_ne!(a.id, b.id);
    let mut foreign = reply(&a, false);
    foreign.from = ip("198.18.9.9");
    assert!(!m.handle_answer(&foreign, Nanos(T0.0 + MS)));
    assert!(m.handle_answer(&reply(&b, false), Nanos(T0.0 + MS)));
    assert_eq!(m.targets()[1].received, 1);
    assert_eq!(m.targets()[0].received, 0);
}

#[test]
fn bad_settings_are_refused() {
    let b = || PingConfig::builder(Protocol::Icmp);
    assert_eq!(b().count(0).build(), Err(PingConfigError::ZeroCount));
    assert_eq!(b().size(1).build(), Err(PingConfigError::Size { size: 1 }));
    assert_eq!(
        b().size(u16::MAX).build(),
        Err(PingConfigError::Size { size: u16::MAX })
    );
    assert!(PingConfig::builder(Protocol::Tcp).size(0).build().is_ok());
    // The machine checks again what it is handed.
    let mut c = config(Protocol::Icmp, 1);
    c.count = 0;
    assert!(Ping::new(c, targets(1), T0).is_err());
    c.count = 1;
    c.size = 1;
    assert!(Ping::new(c, targets(1), T0).is_err());
    c.size = u16::MAX;
    assert!(Ping::new(c, targets(1), T0).is_err());
    let mut v6 = targets(1);
    v6[0].addr = ip("2001:db8::1");
    assert!(Ping::new(config(Protocol::Icmp, 1), v6, T0).is_err());
}

#[test]
fn udp_stamp_reply_is_an_open_port() {
    use crate::wire::stamp::ReflectorPacket;
    let mut m = Ping::new(config(Protocol::Udp, 2), targets(2), T0).expect("config");
    let mut buf = Vec::new();
    let mut sent = Vec::new();
    while let Some(tx) = m.poll_transmit(T0, &mut buf) {
        // The reflector copies the first four payload bytes into its reply.
        let seq = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        sent.push((tx, seq));
    }
    assert_eq!(sent.len(), 2);
    let stamp = |tx: &Transmit, seq: u32, from_port: u16| {
        let mut bytes = vec![0u8; 64];
        ReflectorPacket::new_unchecked(&mut bytes[..]).set_sender_sequence_number(seq);
        let from = std::net::SocketAddr::new(tx.probe.dst, from_port);
        Answer::parse_stamp_reply(&bytes, from, 40000, Some(64)).expect("stamp reply")
    };
    let (a, seq_a) = &sent[0];
    let (b, seq_b) = &sent[1];
    // A reply from another port, or quoting another probe's word, is not ours.
    assert!(!m.handle_answer(&stamp(a, *seq_a, 9), Nanos(T0.0 + MS)));
    assert!(!m.handle_answer(&stamp(a, *seq_b, 33434), Nanos(T0.0 + MS)));
    assert!(m.handle_answer(&stamp(a, *seq_a, 33434), Nanos(T0.0 + 2 * MS)));
    assert!(m.handle_answer(&stamp(b, *seq_b, 33434), Nanos(T0.0 + 3 * MS)));
    let t = m.targets();
    assert_eq!((t[0].received, t[0].port), (1, Some(PortState::Open)));
    assert_eq!(t[1].rtt.min(), Some(3 * MS as i64));
    // Too short to be a STAMP packet.
    let from = std::net::SocketAddr::new(a.probe.dst, 33434);
    assert!(Answer::parse_stamp_reply(&[0; 20], from, 40000, None).is_err());
}

#[test]
fn a_failed_send_is_reported_on_its_target() {
    let mut m = Ping::new(config(Protocol::Icmp, 1), targets(2), T0).expect("config");
    let mut buf = Vec::new();
    let a = m.poll_transmit(T0, &mut buf).expect("probe");
    let err = std::io::Error::from_raw_os_error(libc::ENETUNREACH);
    m.note_send_error(a.id, &err);
    m.handle_timeout(Nanos(T0.0 + 600 * MS));
    let t = &m.targets()[0];
    assert_eq!((t.sent, t.received), (1, 0));
    assert!(
        t.error
            .as_deref()
            .is_some_and(|e| e.starts_with("sending failed")),
        "{t:?}"
    );
    assert!(m.targets()[1].error.is_none());
}
