//! The embedding examples run and report real measurements.

use std::process::Command;

#[test]
fn a2a_example_against_its_own_responder() {
    let out = Command::new(probe_suite::example_bin("a2a"))
        .output()
        .expect("run the a2a example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sent 200, received 200"), "{stdout}");
    // The last line is the report as JSON.
    let json = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(v["clock"]["mode"], "shared");
    assert_eq!(v["forward"]["loss_pct"], 0.0);
}

#[test]
fn ping_example_on_loopback() {
    let out = Command::new(probe_suite::example_bin("ping"))
        .output()
        .expect("run the ping example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3/3 targets answered"), "{stdout}");
    let json = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    let targets = v["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 3);
    for t in targets {
        assert_eq!(
            (t["sent"].as_u64(), t["received"].as_u64()),
            (Some(3), Some(3)),
            "{t}"
        );
        assert!(
            t["rtt_ms"]["max"]
                .as_f64()
                .is_some_and(|m| m > 0.0 && m < 100.0),
            "{t}"
        );
    }
}
