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
