//! `probe a2a` against the wire: the per-direction one-way delay medians probe reports, checked
//! against tcpdump captures on both sides of the impairment hop.
//!
//! All namespaces share one kernel clock, so a capture time on the sender's interface and one
//! on the reflector's interface subtract directly. The configured delay is not the truth for
//! medians (the userspace hop adds its own delay under load); the captures are.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::capture::{Capture, Captured, Frame};
use common::{a2a_json, num, serve, text};
use pcap_file::DataLink;
use pnet_packet::Packet;
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::udp::UdpPacket;
use probe_core::stats::Distribution;
use probe_core::wire::stamp::{BASE_LEN, ReflectorPacket, SenderPacket};
use probe_lab::impair::ImpairConfig;
use probe_lab::topology;

const PORT: u16 = 49153;

/// The largest difference allowed between probe's median and the captured one, per direction.
const BOUND_US: f64 = 25.0;

/// Test packets: 1000 at 1 ms, so the test sends for about a second.
const COUNT: usize = 1000;

/// Capture times of one session's STAMP packets on one interface, by sender sequence number.
#[derive(Default)]
struct Seen {
    /// Session-Sender packets (toward the reflector).
    sender: HashMap<u32, Duration>,
    /// Session-Reflector packets (back to the sender), by the sender sequence number they
    /// carry.
    reflector: HashMap<u32, Duration>,
    /// The reflector's receive (t2) and transmit (t3) timestamps written in each reply, as
    /// times since the UNIX epoch like the capture times.
    t2_t3: HashMap<u32, (Duration, Duration)>,
}

/// The UDP header and payload of an Ethernet/IPv4/UDP frame.
fn udp_of(frame: &Frame) -> Option<(u16, u16, Vec<u8>)> {
    let ip = frame.ipv4(IpNextHeaderProtocols::Udp)?;
    let udp = UdpPacket::new(ip.payload())?;
    Some((
        udp.get_source(),
        udp.get_destination(),
        udp.payload().to_vec(),
    ))
}

/// The STAMP packets of session `ssid` in a capture: to [`PORT`] are sender packets, from it
/// reflector packets. Hellos (another SSID) and anything else are skipped.
fn stamp_packets(cap: &Captured, ssid: u16) -> Seen {
    assert_eq!(cap.link, DataLink::ETHERNET, "link type on {}", cap.label);
    let mut seen = Seen::default();
    for frame in &cap.frames {
        let Some((sport, dport, payload)) = udp_of(frame) else {
            continue;
        };
        let (map, seq) = if dport == PORT {
            let Ok(p) = SenderPacket::new_checked(&payload[..]) else {
                continue;
            };
            if p.ssid() != ssid {
                continue;
            }
            (&mut seen.sender, p.sequence_number())
        } else if sport == PORT {
            // Replies to requests that arrived in one batch leave as one segmented (UDP GSO)
            // buffer, which the capture sees before the kernel cuts it: one reply per
            // test-packet size (the test sends the 44-octet minimum).
            for reply in payload.chunks(BASE_LEN) {
                let Ok(p) = ReflectorPacket::new_checked(reply) else {
                    continue;
                };
                if p.ssid() != ssid {
                    continue;
                }
                let ptp = p.error_estimate().ptp();
                let (t2, t3) = (p.receive_timestamp().decode(ptp), p.timestamp().decode(ptp));
                let seq = p.sender_sequence_number();
                seen.t2_t3.insert(
                    seq,
                    (Duration::from_nanos(t2.0), Duration::from_nanos(t3.0)),
                );
                let earlier = seen.reflector.insert(seq, frame.time);
                assert!(earlier.is_none(), "seq {seq} twice on {}", cap.label);
            }
            continue;
        } else {
            continue;
        };
        let earlier = map.insert(seq, frame.time);
        assert!(earlier.is_none(), "seq {seq} twice on {}", cap.label);
    }
    seen
}

/// `to[seq] - from[seq]` in nanoseconds for every sequence number captured at both points.
fn one_way(from: &HashMap<u32, Duration>, to: &HashMap<u32, Duration>) -> Vec<i64> {
    from.iter()
        .filter_map(|(seq, &t0)| {
            let t1 = *to.get(seq)?;
            Some(t1.as_nanos() as i64 - t0.as_nanos() as i64)
        })
        .collect()
}

/// Exact median in nanoseconds (mean of the middle two for an even count).
fn median_ns(mut v: Vec<i64>) -> f64 {
    assert!(!v.is_empty(), "no samples");
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        f64::midpoint(v[n / 2 - 1] as f64, v[n / 2] as f64)
    }
}

#[test]
fn one_way_medians_match_captures_on_both_sides_of_the_hop() {
    if !probe_lab::require_root() {
        return;
    }
    // Jitter spreads the delays so the median is not one repeated value.
    let fwd = ImpairConfig {
        delay: Duration::from_millis(5),
        jitter: Duration::from_micros(300),
        seed: Some(7),
        ..ImpairConfig::default()
    };
    let rev = ImpairConfig {
        delay: Duration::from_millis(1),
        jitter: Duration::from_micros(100),
        seed: Some(8),
        ..ImpairConfig::default()
    };
    let lab = topology::impaired(fwd, rev).expect("impaired topology");
    let _srv = serve(&lab.b, PORT, &[]);
    let filter = format!("udp port {PORT}");
    // The sender's egress and the reflector's ingress interface: the two ends of the path.
    let at_sender = Capture::start(&lab.a, "eth0", &filter);
    let at_reflector = Capture::start(&lab.b, "eth0", &filter);
    let count = COUNT.to_string();
    let v = a2a_json(
        &lab.a,
        &lab.b.ipv4().to_string(),
        &["-c", &count, "-i", "1ms"],
    );
    let [a, b] = Capture::stop_all([at_sender, at_reflector]);
    for cap in [&a, &b] {
        assert_eq!(cap.dropped_by_kernel, Some(0), "tcpdump on {}", cap.label);
    }
    assert_eq!(text(&v, "clock.mode"), "shared");
    assert_eq!(text(&v, "timestamps"), "kernel");
    let received = num(&v, "received") as usize;
    assert_eq!(received, COUNT, "a lossless path: {v}");

    let ssid = num(&v, "ssid") as u16;
    let (a, b) = (stamp_packets(&a, ssid), stamp_packets(&b, ssid));
    for (seen, what) in [
        (&a.sender, "requests captured at the sender"),
        (&b.sender, "requests captured at the reflector"),
        (&b.reflector, "replies captured at the reflector"),
        (&a.reflector, "replies captured at the sender"),
    ] {
        assert_eq!(seen.len(), COUNT, "{what}");
    }
    let forward = one_way(&a.sender, &b.sender);
    let reverse = one_way(&b.reflector, &a.reflector);
    assert_eq!((forward.len(), reverse.len()), (COUNT, COUNT));

    // Where the reflector's timestamps sit against its own interface, from the t2 and t3 it
    // wrote into each reply (t2: kernel RX stamp of the request; t3: its clock read before
    // sending the reply). The sender's t1 and t4 are not on the wire; with them replaced by
    // the sender-side captures, the "stamps" delays below are probe's delays as far as the
    // wire can tell, so any difference left is at the sender.
    let t2: HashMap<u32, Duration> = b.t2_t3.iter().map(|(&seq, t)| (seq, t.0)).collect();
    let t3: HashMap<u32, Duration> = b.t2_t3.iter().map(|(&seq, t)| (seq, t.1)).collect();
    let t2_offset = median_ns(one_way(&b.sender, &t2)) / 1e3;
    let send_lag = one_way(&t3, &b.reflector);
    let lag_mean = send_lag.iter().sum::<i64>() as f64 / send_lag.len() as f64 / 1e3;
    let lag_median = median_ns(send_lag) / 1e3;
    println!(
        "reflector: t2 - request capture median {t2_offset:+.1} us; \
         reply capture - t3 median {lag_median:+.1} us, mean {lag_mean:+.1} us"
    );
    let stamps = [one_way(&a.sender, &t2), one_way(&t3, &a.reflector)];

    for ((dir, samples), stamps) in [("forward", forward), ("reverse", reverse)]
        .into_iter()
        .zip(stamps)
    {
        // The captured median as probe's histogram reports medians (3 significant digits), to
        // tell quantization apart from where the timestamps are taken.
        let mut hist = Distribution::new();
        for &ns in &samples {
            hist.record(ns);
        }
        let hist_us = hist.quantile(0.5).expect("samples") as f64 / 1e3;
        let wire_us = median_ns(samples) / 1e3;
        let stamps_us = median_ns(stamps) / 1e3;
        let probe_us = num(&v, &format!("{dir}.delay_ms.p50")) * 1e3;
        let diff = probe_us - wire_us;
        println!(
            "{dir}: probe p50 {probe_us:.1} us, captured median {wire_us:.1} us \
             (histogram {hist_us:.1} us, stamps {stamps_us:.1} us), probe - capture {diff:+.1} us"
        );
        assert!(
            diff.abs() <= BOUND_US,
            "{dir} one-way median: probe {probe_us:.1} us, captured {wire_us:.1} us, \
             differ by {diff:+.1} us (bound {BOUND_US} us); the reflector's t3 precedes its \
             reply on the wire by {lag_median:.1} us (median; mean {lag_mean:.1} us)"
        );
    }
}
