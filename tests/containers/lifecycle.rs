//! The agent container's logs and stop: `podman logs`, the log file rotating in the log
//! volume (`PROBE_LOG_DIR`), and `podman stop` (SIGTERM) flushing the spool into the state
//! volume and exiting 0.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::agent::{self, HOST_V4, Net, PEER_V4, Volumes, http_get, run_line, setup, with_config};
use super::podman::unique;
use crate::common::agent::records_in;
use crate::common::{TempDir, serve};

/// One a2a test toward the peer, twice a second.
const TO_PEER: &str = r#"
[[tests]]
name = "to-peer"
kind = "a2a"
target = "198.18.0.2"
interval = "500ms"
count = 10
packet_interval = "5ms"
"#;

/// The log's size limit in this test (`PROBE_LOG_MAX_FILE_BYTES`), and the rotated files kept.
const LOG_LIMIT: u64 = 2048;
const LOG_KEEP: usize = 2;

/// The agent (debug logging, a small log size limit) runs its test toward the peer: `podman
/// logs` shows its log, and `probe-agent.log` in the log volume rotates at its limit keeping
/// `LOG_KEEP` files. `podman stop` ends it within the stop timeout with exit status 0, and the
/// spool in the state volume holds every result: every result `/results` showed before, with
/// no gap in the sequence, and every test packet the peer saw belongs to a spooled run.
#[test]
fn logs_rotate_and_stop_flushes_the_spool() {
    let Some(lab) = setup() else { return };
    let peer = serve(&lab.net.b, 49153, &["--no-control"]);
    let volumes = Volumes::new(&lab.podman);
    let name = unique("lifecycle");
    let config = TempDir::new("container-config");
    let mut options = run_line(&name, &volumes, PEER_V4, Net::Published);
    with_config(&mut options, &config, TO_PEER);
    options.extend([
        "--env=PROBE_DEBUG=yes".to_owned(),
        format!("--env=PROBE_LOG_MAX_FILE_BYTES={LOG_LIMIT}"),
        format!("--env=PROBE_LOG_KEEP_FILES={LOG_KEEP}"),
    ]);
    let c = agent::start(&lab.podman, &name, &options);

    // The log volume: the rotated files appear and the oldest goes.
    let logs = volumes.logs.mountpoint();
    let file = |n: usize| match n {
        0 => logs.join("probe-agent.log"),
        n => logs.join(format!("probe-agent.log.{n}")),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !file(LOG_KEEP).exists() {
        assert!(
            Instant::now() < deadline,
            "no {} within 30 s; log volume: {:?}",
            file(LOG_KEEP).display(),
            std::fs::read_dir(&logs).map(Iterator::count)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for n in 1..=LOG_KEEP {
        let text = std::fs::read_to_string(file(n)).expect("rotated log");
        let size = text.len() as u64;
        assert!(
            size > LOG_LIMIT / 2 && size <= LOG_LIMIT,
            "{} holds {size} bytes (limit {LOG_LIMIT})",
            file(n).display()
        );
        assert!(text.contains("result spooled"), "{text}");
    }
    assert!(
        !file(LOG_KEEP + 1).exists(),
        "only {LOG_KEEP} rotated files are kept"
    );
    let podman_logs = c.logs();
    for want in ["probe agent starting", "result spooled"] {
        assert!(
            podman_logs.contains(want),
            "podman logs: no {want:?}:\n{podman_logs}"
        );
    }

    // Results so far, then stop.
    let before = wait_results(&lab.net.b, 3);
    let (out, took) = c.stop(10);
    assert!(out.status.success(), "podman stop: {out:?}");
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert_eq!(c.inspect("{{.State.ExitCode}}"), "0", "{}", c.logs());

    let spooled = records_in(&volumes.state.mountpoint(), None);
    let seqs: Vec<u64> = spooled
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    let first = seqs.first().copied().unwrap_or_default();
    assert_eq!(
        seqs,
        (first..first + seqs.len() as u64).collect::<Vec<_>>(),
        "no gap in the spool"
    );
    let key = |r: &Value| (r["seq"].as_u64(), r["start_unix_ns"].as_u64());
    let spooled_keys: Vec<_> = spooled.iter().map(key).collect();
    for r in &before {
        assert!(
            spooled_keys.contains(&key(r)),
            "{r} shown by /results is not in the spool"
        );
    }
    for r in &spooled {
        assert_eq!(r["ok"], true, "{r}");
    }
    // Every packet the peer saw came from a spooled run (no loss on this path).
    let sent: u64 = spooled
        .iter()
        .map(|r| r["report"]["sent"].as_u64().expect("sent"))
        .sum();
    let out = peer
        .terminate(Duration::from_secs(5))
        .expect("stop the peer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let received: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("probe serve: received "))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no final counters from the peer:\n{stderr}"));
    // Each run opens with a clock hello (one on this lossless path, a retry at most now and
    // then): a run missing from the spool would leave 10 test packets unaccounted for.
    let runs = spooled.len() as u64;
    assert!(
        received >= sent + runs && received - sent - runs < 10,
        "the peer saw {received} packets: {sent} of the {runs} spooled runs and their hellos"
    );
}

/// The agent's results through the published 8000/tcp once it has `n` of them.
fn wait_results(peer: &probe_lab::Host, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = http_get(peer, &format!("http://{HOST_V4}:8000/results"), "*/*");
        let results: Vec<Value> = serde_json::from_str(&body).expect("GET /results");
        if results.len() >= n {
            return results;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} results in 20 s: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
