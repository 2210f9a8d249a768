//! Tests for [`super`]: the JSON field names are the public contract; the table layout.

use super::*;

fn sample() -> TraceReport {
    let responder = ResponderReport {
        addr: "10.0.1.1".parse().expect("addr"),
        hostname: Some("r1.lab".into()),
        sent: 3,
        received: 3,
        loss_pct: 0.0,
        rtt_ms: Some(RttMs {
            min: 0.2,
            mean: 0.25,
            p50: 0.25,
            max: 0.3,
            stddev: 0.04,
        }),
        last_ms: Some(0.3),
        jitter_ms: Some(0.05),
        jitter_max_ms: Some(0.1),
        mpls: vec![vec![MplsLabel {
            label: 24001,
            tc: 0,
            s: true,
            ttl: 1,
        }]],
        kind: ReplyKind::TimeExceeded,
        icmp_type: Some(11),
        icmp_code: Some(0),
        nat: false,
        quoted_ttl: Some(1),
        reply_ttl: Some(255),
    };
    let target = ResponderReport {
        addr: "10.0.9.9".parse().expect("addr"),
        hostname: None,
        mpls: Vec::new(),
        kind: ReplyKind::AdminProhibited,
        icmp_code: Some(13),
        icmp_type: Some(3),
        ..responder.clone()
    };
    TraceReport {
        target: "10.0.9.9".parse().expect("addr"),
        target_name: Some("dst.lab".into()),
        source: "10.0.0.1".parse().expect("addr"),
        protocol: Protocol::Udp,
        mode: TraceMode::Paris,
        privilege: Some(Privilege::Raw),
        reached: true,
        pmtu: Some(1400),
        first_ttl: 1,
        max_ttl: 30,
        queries: 3,
        count: 1,
        confidence_pct: None,
        probes_sent: 9,
        duration_ms: 1.5,
        hops: vec![
            HopReport {
                ttl: 1,
                sent: 3,
                received: 3,
                loss_pct: 0.0,
                responders: vec![responder],
            },
            HopReport {
                ttl: 2,
                sent: 3,
                received: 0,
                loss_pct: 100.0,
                responders: Vec::new(),
            },
            HopReport {
                ttl: 3,
                sent: 3,
                received: 3,
                loss_pct: 0.0,
                responders: vec![target],
            },
        ],
        links: vec![LinkReport {
            ttl: 1,
            from: "10.0.1.1".parse().expect("addr"),
            to: "10.0.9.9".parse().expect("addr"),
        }],
    }
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_string()).collect();
    v.sort();
    v
}

#[test]
fn json_field_names_are_pinned() {
    let v = serde_json::to_value(sample()).expect("json");
    assert_eq!(
        keys(&v),
        sorted(&[
            "target",
            "target_name",
            "source",
            "protocol",
            "mode",
            "privilege",
            "reached",
            "pmtu",
            "first_ttl",
            "max_ttl",
            "queries",
            "count",
            "confidence_pct",
            "probes_sent",
            "duration_ms",
            "hops",
            "links",
        ])
    );
    let hop = &v["hops"][0];
    assert_eq!(
        keys(hop),
        sorted(&["ttl", "sent", "received", "loss_pct", "responders"])
    );
    let r = &hop["responders"][0];
    assert_eq!(
        keys(r),
        sorted(&[
            "addr",
            "hostname",
            "sent",
            "received",
            "loss_pct",
            "rtt_ms",
            "last_ms",
            "jitter_ms",
            "jitter_max_ms",
            "mpls",
            "kind",
            "icmp_type",
            "icmp_code",
            "nat",
            "quoted_ttl",
            "reply_ttl",
        ])
    );
    assert_eq!(
        keys(&r["rtt_ms"]),
        sorted(&["min", "mean", "p50", "max", "stddev"])
    );
    assert_eq!(keys(&r["mpls"][0][0]), sorted(&["label", "tc", "s", "ttl"]));
    assert_eq!(keys(&v["links"][0]), sorted(&["ttl", "from", "to"]));
    assert_eq!(v["target"], "10.0.9.9");
    assert_eq!(r["mpls"][0][0]["label"], 24001);
    assert_eq!(r["kind"], "time exceeded");
    assert_eq!(v["hops"][2]["responders"][0]["kind"], "admin prohibited");
    let back: TraceReport = serde_json::from_value(v).expect("roundtrip");
    assert_eq!(back, sample());
}

/// The enum-valued fields serialize to the strings the README documents, and back.
#[test]
fn json_enum_values_are_pinned() {
    fn pin<T>(values: &[(T, &str)])
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        for (value, name) in values {
            assert_eq!(serde_json::to_value(value).expect("json"), *name);
            let back: T = serde_json::from_value((*name).into()).expect("parse");
            assert_eq!(&back, value);
        }
    }
    pin(&[
        (Protocol::Icmp, "icmp"),
        (Protocol::Udp, "udp"),
        (Protocol::Tcp, "tcp"),
    ]);
    pin(&[
        (TraceMode::Paris, "paris"),
        (TraceMode::Classic, "classic"),
        (TraceMode::Mda, "mda"),
    ]);
    pin(&[
        (Privilege::Raw, "raw"),
        (Privilege::Unprivileged, "unprivileged"),
    ]);
    let kinds: Vec<_> = ReplyKind::ALL.iter().map(|k| (*k, k.as_str())).collect();
    pin(&kinds);
    for (mode, name) in [(TraceMode::Paris, "paris"), (TraceMode::Mda, "mda")] {
        assert_eq!(mode.as_str(), name);
    }
    assert_eq!(Privilege::Unprivileged.as_str(), "unprivileged");
    let v = serde_json::to_value(sample()).expect("json");
    assert_eq!(
        (&v["protocol"], &v["mode"], &v["privilege"]),
        (&"udp".into(), &"paris".into(), &"raw".into())
    );
}

#[test]
fn table_has_mtr_columns_stars_mpls_and_annotations() {
    let t = render_table(&sample());
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[0],
        "probe trace to dst.lab (10.0.9.9) from 10.0.0.1: udp paris, 3 hops, reached, pmtu 1400"
    );
    for col in [
        "Hop", "Host", "Loss%", "Snt", "Last", "Avg", "Best", "Wrst", "StDev", "Javg",
    ] {
        assert!(lines[1].contains(col), "{col}");
    }
    assert!(
        lines[2].starts_with("   1  r1.lab (10.0.1.1)"),
        "{}",
        lines[2]
    );
    assert!(
        lines[2].ends_with("  0.0%     3    0.300    0.250    0.200    0.300    0.040    0.050"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "      [MPLS label 24001 tc 0 s 1 ttl 1]");
    assert!(lines[4].starts_with("   2  *"), "{}", lines[4]);
    assert!(lines[4].contains("100.0%     3"), "{}", lines[4]);
    assert!(lines[5].starts_with("   3  10.0.9.9 !X"), "{}", lines[5]);
    assert_eq!(lines[6], "links:");
    assert_eq!(lines[7], "   1  10.0.1.1 -> 10.0.9.9");
}
