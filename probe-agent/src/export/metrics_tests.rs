use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::*;
use crate::record::ErrorClass;

fn record(peer: &str, ok: bool, report: Value) -> ResultRecord {
    ResultRecord {
        seq: 1,
        start_unix_ns: 1,
        duration_ns: 1,
        agent: "a".into(),
        test: "mesh".into(),
        kind: "a2a".into(),
        target: "mesh.example".into(),
        peer: Some(peer.into()),
        ok,
        error_class: (!ok).then_some(ErrorClass::Refused),
        error: None,
        report,
    }
}

fn a2a() -> Value {
    serde_json::json!({
        "loss_pct": 20.0, "received": 100, "size": 100, "duration_s": 2.0,
        "rtt_ms": {"min": 0.05, "mean": 1.0, "p50": 0.1, "p90": 0.5, "p99": 2.0, "max": 9.0, "stddev": 1.0},
        "forward": {"received": 100, "loss_pct": 20.0, "jitter_ms": 0.25,
            "delay_ms": {"min": 0.05, "mean": 1.0, "p50": 0.1, "p90": 0.5, "p99": 2.0, "max": 9.0, "stddev": 1.0}},
        "reverse": {"received": 100, "loss_pct": 0.0},
    })
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_summary_becomes_one_observation_per_packet_never_below_its_band() {
    let m = Metrics::new();
    m.observe(&record("10.0.0.2:49153", true, a2a()));
    let t = m.encode();
    let fwd = r#"{test="mesh",peer="10.0.0.2:49153",direction="forward""#;
    assert_eq!(
        value(&t, &format!("probe_loss_ratio{fwd}}}")),
        Some(0.2),
        "{t}"
    );
    assert_eq!(
        value(&t, &format!("probe_jitter_seconds{fwd}}}")),
        Some(0.000_25),
        "{t}"
    );
    assert_eq!(
        value(&t, &format!("probe_one_way_delay_seconds_count{fwd}}}")),
        Some(100.0),
        "{t}"
    );
    // Buckets: 1 packet at 50 µs, 49 more at 100 µs (p50), 40 at 500 µs, 9 at 2 ms, 1 at 9 ms.
    let le = |b: &str| {
        let labels = fwd.replacen('{', &format!("{{le=\"{b}\","), 1);
        value(&t, &format!("probe_one_way_delay_seconds_bucket{labels}}}"))
    };
    assert_eq!(le("0.00008"), Some(1.0), "{t}");
    assert_eq!(le("0.00016"), Some(50.0), "{t}");
    assert_eq!(le("0.00064"), Some(90.0), "{t}");
    assert_eq!(le("0.00256"), Some(99.0), "{t}");
    assert_eq!(le("0.01024"), Some(100.0), "{t}");
    let peer = r#"{test="mesh",peer="10.0.0.2:49153"}"#;
    assert_eq!(
        value(&t, &format!("probe_throughput_bytes_per_second{peer}")),
        Some(5000.0),
        "{t}"
    );
    assert_eq!(
        value(&t, &format!("probe_runs_total{peer}")),
        Some(1.0),
        "{t}"
    );
}

#[test]
fn a_failure_changes_the_reason_and_gone_peers_lose_every_series() {
    let m = Metrics::new();
    m.observe(&record("10.0.0.2:49153", true, a2a()));
    m.observe(&record("10.0.0.3:49153", false, Value::Null));
    m.observe(&record("10.0.0.2:49153", false, Value::Null));
    let t = m.encode();
    assert!(
        t.contains(r#"probe_success{test="mesh",peer="10.0.0.2:49153",reason="refused"} 0"#),
        "{t}"
    );
    assert!(
        !t.contains(r#"peer="10.0.0.2:49153",reason="""#),
        "the old up series is gone: {t}"
    );
    let mut http = record("x", false, Value::Null);
    http.peer = None;
    http.target = "http://192.0.2.1/".into();
    m.observe(&http);
    let peers = Peers::from([(
        "mesh".to_owned(),
        BTreeSet::from(["10.0.0.3:49153".to_owned()]),
    )]);
    m.forget_peers_not_in(&peers);
    let t = m.encode();
    assert!(!t.contains("10.0.0.2"), "{t}");
    assert!(t.contains("10.0.0.3"), "{t}");
    assert!(
        t.contains(r#"peer="http://192.0.2.1/""#),
        "a target, not a peer: {t}"
    );
    // No result for three intervals (unknown interval: ten minutes): removed.
    assert!(m.sweep(Instant::now()).is_empty());
    let gone = m.sweep(Instant::now() + Duration::from_secs(601));
    assert_eq!(gone.len(), 2);
    assert!(!m.encode().contains("10.0.0.3"));
}

#[test]
fn a_member_behind_nat_is_a_peer_by_name_and_goes_with_its_membership() {
    let m = Metrics::new();
    m.observe(&record("edge-nat", true, a2a()));
    m.observe(&record("10.0.0.3:49153", true, a2a()));
    let t = m.encode();
    assert!(
        t.contains(r#"probe_loss_ratio{test="mesh",peer="edge-nat",direction="forward"} 0.2"#),
        "{t}"
    );
    let both = Peers::from([(
        "mesh".to_owned(),
        BTreeSet::from(["10.0.0.3:49153".to_owned(), "edge-nat".to_owned()]),
    )]);
    m.forget_peers_not_in(&both);
    assert!(m.encode().contains(r#"peer="edge-nat""#));
    let left = Peers::from([(
        "mesh".to_owned(),
        BTreeSet::from(["10.0.0.3:49153".to_owned()]),
    )]);
    m.forget_peers_not_in(&left);
    let t = m.encode();
    assert!(!t.contains("edge-nat"), "{t}");
    assert!(t.contains("10.0.0.3"), "{t}");
}
