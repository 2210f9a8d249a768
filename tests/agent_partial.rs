//! Runs cut short keep what they measured: in the testbed, an a2a run that passes its deadline
//! and one in flight when the agent gets SIGTERM are both recorded `cut_short` with the report
//! of the packets sent until then (on a clean link: every one of them answered).

mod common;

use std::time::Duration;

use common::agent::{Agent, Scratch, wait_for, write};
use serde_json::Value;

/// The report's `sent` and `received`, checked to be a partial run of a clean link.
fn partial(r: &Value, at_most: u64) -> (u64, u64) {
    let sent = r["report"]["sent"].as_u64().unwrap_or(0);
    let received = r["report"]["received"].as_u64().unwrap_or(0);
    assert!(
        (20..=at_most).contains(&sent),
        "a partial run of at most {at_most} packets: {r:#}"
    );
    // The packet in flight when the run was cut counts as lost; the rest answered.
    assert!(received + 2 >= sent && received <= sent, "{r:#}");
    (sent, received)
}

#[test]
fn runs_cut_short_by_their_deadline_or_sigterm_keep_their_partial_reports() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::direct().expect("direct topology");
    let _peer = common::serve(&lab.b, 49153, &["--no-control"]);
    let s = Scratch::new("partial");
    let config = s.0.join("agent.toml");
    // 100 packets per second for 60 s, cut at 1 s by the deadline.
    write(
        &config,
        &format!(
            "[[tests]]\nname = \"cut\"\nkind = \"a2a\"\ntarget = \"{b}\"\ninterval = \"2s\"\ndeadline = \"1s\"\njitter = \"0s\"\ncount = 6000\npacket_interval = \"10ms\"\n[[tests]]\nname = \"long\"\nkind = \"a2a\"\ntarget = \"{b}\"\ninterval = \"3s\"\ndeadline = \"2m\"\njitter = \"0s\"\ncount = 6000\npacket_interval = \"10ms\"\n",
            b = lab.b.ipv4()
        ),
    );
    let mut agent = Agent::start(&lab.a, &s.0, "a", &config, "127.0.0.1");
    let records = wait_for(&agent, 10, "a run cut by its deadline", |r| {
        r.iter().any(|x| x["test"] == "cut")
    });
    let cut = records
        .iter()
        .find(|x| x["test"] == "cut")
        .expect("a cut record");
    assert_eq!(cut["error_class"], "cut_short", "{cut:#}");
    let why = cut["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("deadline of 1s") && why.contains("the report covers the"),
        "{why}"
    );
    // At most 1 s of packets at 100 per second (the hello exchange comes first).
    partial(cut, 101);

    // The long run (60 s) started within its first 3 s interval: SIGTERM finds it in flight
    // and its 5 s grace cuts it.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(agent.stop(), Some(0), "{}", agent.log());
    let all = agent.records(Some("long"));
    let runs: Vec<&Value> = all
        .iter()
        .filter(|x| x["error_class"] != "skipped")
        .collect();
    assert_eq!(runs.len(), 1, "{all:#?}");
    assert_eq!(runs[0]["error_class"], "cut_short", "{all:#?}");
    let why = runs[0]["error"].as_str().unwrap_or_default();
    assert!(why.contains("agent stopped"), "{why}");
    // At most the 6 s before SIGTERM and the 5 s of grace, at 100 packets per second.
    partial(runs[0], 1100);
}
