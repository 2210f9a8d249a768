use serde_json::json;

use super::*;

fn run(seq: u64, test: &str, peer: &str, report: Value) -> ResultRecord {
    ResultRecord {
        seq,
        start_unix_ns: seq * 1_000_000_000,
        duration_ns: 100_000_000,
        agent: "a".into(),
        test: test.into(),
        kind: "a2a".into(),
        target: "mesh.lab.test".into(),
        peer: Some(peer.into()),
        ok: true,
        error_class: None,
        error: None,
        report,
    }
}

fn a2a(fwd_loss: f64, fwd_ms: f64, rev_loss: f64, rev_ms: f64) -> Value {
    json!({
        "loss_pct": fwd_loss + rev_loss,
        "rtt_ms": {"p50": fwd_ms + rev_ms},
        "forward": {"loss_pct": fwd_loss, "delay_ms": {"p50": fwd_ms}},
        "reverse": {"loss_pct": rev_loss, "delay_ms": {"p50": rev_ms}},
        "clock": {"mode": "shared", "error_ms": 0.0},
    })
}

fn cell(h: &Heatmap, from: &str, to: &str) -> Option<Cell> {
    let i = |a: &str| h.agents.iter().position(|x| x == a).expect(a);
    h.cells[i(from)][i(to)].clone()
}

#[test]
fn each_run_fills_both_directions_of_its_pair_and_the_newest_wins() {
    let records = vec![
        run(1, "mesh", "10.0.0.2:49153", a2a(50.0, 9.0, 50.0, 9.0)),
        run(2, "mesh", "10.0.0.2:49153", a2a(10.0, 4.0, 0.0, 1.0)),
        run(3, "mesh", "10.0.0.3:49153", a2a(0.0, 2.0, 20.0, 3.0)),
    ];
    let h = heatmap("a", &Peers::new(), &records);
    assert_eq!(h.agents, ["a", "10.0.0.2", "10.0.0.3"]);
    let ab = cell(&h, "a", "10.0.0.2").expect("a -> b");
    assert_eq!(
        (ab.loss_pct, ab.delay_ms, ab.at_unix_ns),
        (Some(10.0), Some(4.0), 2_000_000_000)
    );
    let ba = cell(&h, "10.0.0.2", "a").expect("b -> a");
    assert_eq!((ba.loss_pct, ba.delay_ms), (Some(0.0), Some(1.0)));
    let ca = cell(&h, "10.0.0.3", "a").expect("c -> a");
    assert_eq!(
        (ca.value(Metric::Loss), ca.value(Metric::Delay)),
        (Some(20.0), Some(3.0))
    );
    assert!(cell(&h, "a", "10.0.0.3").is_some());
    // This agent sees its own pairs only; the diagonal is never a cell.
    assert_eq!(cell(&h, "10.0.0.2", "10.0.0.3"), None);
    assert_eq!(cell(&h, "10.0.0.3", "10.0.0.2"), None);
    for i in 0..3 {
        assert_eq!(h.cells[i][i], None);
    }
    let filled = h.cells.iter().flatten().filter(|c| c.is_some()).count();
    assert_eq!(filled, 4);
}

#[test]
fn the_far_end_s_own_report_fills_the_direction_toward_this_agent() {
    let mut report = a2a(0.0, 2.0, 30.0, 7.0);
    report["from"] = json!({"report": {"forward": {"loss_pct": 5.0, "delay_ms": {"p50": 6.5}}}});
    let h = heatmap(
        "a",
        &Peers::new(),
        &[run(1, "mesh", "10.0.0.2:49153", report)],
    );
    let ba = cell(&h, "10.0.0.2", "a").expect("b -> a");
    assert_eq!((ba.loss_pct, ba.delay_ms), (Some(5.0), Some(6.5)));
    // A `from` that did not run (null report) falls back to the reverse direction.
    let mut report = a2a(0.0, 2.0, 30.0, 7.0);
    report["from"] = json!({"report": null, "error": "refused"});
    let h = heatmap(
        "a",
        &Peers::new(),
        &[run(1, "mesh", "10.0.0.2:49153", report)],
    );
    assert_eq!(
        cell(&h, "10.0.0.2", "a").expect("b -> a").loss_pct,
        Some(30.0)
    );
}

#[test]
fn failures_show_skips_do_not_and_peers_not_measured_yet_get_empty_rows() {
    let mut failed = run(2, "mesh", "10.0.0.2:49153", Value::Null);
    failed.ok = false;
    failed.error_class = Some(ErrorClass::Timeout);
    let mut skipped = run(3, "mesh", "10.0.0.2:49153", Value::Null);
    skipped.ok = false;
    skipped.error_class = Some(ErrorClass::Skipped);
    let mut trace = run(4, "path", "10.0.0.9:0", json!({}));
    trace.kind = "trace".into();
    let records = vec![
        run(1, "mesh", "10.0.0.2:49153", a2a(0.0, 1.0, 0.0, 1.0)),
        failed,
        skipped,
        trace,
    ];
    let peers = Peers::from([
        (
            "mesh".to_owned(),
            BTreeSet::from(["10.0.0.4:49153".to_owned()]),
        ),
        ("path".to_owned(), BTreeSet::from(["10.0.0.9:0".to_owned()])),
    ]);
    let h = heatmap("a", &peers, &records);
    assert_eq!(
        h.agents,
        ["a", "10.0.0.2", "10.0.0.4"],
        "trace targets are not mesh members"
    );
    let ab = cell(&h, "a", "10.0.0.2").expect("a -> b");
    assert!(!ab.ok);
    assert_eq!((ab.loss_pct, ab.at_unix_ns), (None, 2_000_000_000));
    assert_eq!(cell(&h, "a", "10.0.0.4"), None);
    assert_eq!(Metric::parse(Some("delay")), Metric::Delay);
    assert_eq!(Metric::parse(Some("nonsense")), Metric::Loss);
    assert_eq!(Metric::parse(None).as_str(), "loss");
}

#[test]
fn recent_results_are_bounded_per_test_newest_first() {
    let records: Vec<ResultRecord> = (0..10)
        .map(|i| {
            run(
                i,
                if i % 2 == 0 { "even" } else { "odd" },
                "10.0.0.2:49153",
                a2a(0.0, 1.0, 0.0, 2.0),
            )
        })
        .collect();
    let by = recent_by_test(&records, 3);
    let seqs = |t: &str| by[t].iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(seqs("even"), [8, 6, 4]);
    assert_eq!(seqs("odd"), [9, 7, 5]);
    assert_eq!(
        summary(&records[0]),
        "loss 0.0%, RTT p50 3.000 ms, forward p50 1.000 ms, reverse p50 2.000 ms"
    );
}

#[test]
fn a_pair_s_history_keeps_the_newest_runs_relative_to_now() {
    let records: Vec<ResultRecord> = (1..=5)
        .map(|i| {
            run(
                i * 60,
                "mesh",
                "10.0.0.2:49153",
                a2a(0.0, i as f64, 0.0, 1.0),
            )
        })
        .chain([run(400, "mesh", "10.0.0.3:49153", a2a(0.0, 99.0, 0.0, 1.0))])
        .collect();
    let h = pair_history(&records, "10.0.0.2", 300_000_000_000, 3);
    assert_eq!(h.series.forward_ms, [(-2.0, 3.0), (-1.0, 4.0), (0.0, 5.0)]);
    assert_eq!(h.series.rtt_ms.len(), 3);
    assert_eq!(h.clock, "clock shared, ±0.000 ms");
    assert!(h.trace.is_none());
}
