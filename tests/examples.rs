//! The embedding examples run and report real measurements.

use std::process::Command;

/// Runs the example `name` without arguments; it must succeed. Returns its stdout.
fn run_example(name: &str) -> String {
    let out = Command::new(probe_suite::example_bin(name))
        .output()
        .unwrap_or_else(|e| panic!("run the {name} example: {e}"));
    assert!(
        out.status.success(),
        "{name}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a2a_example_against_its_own_responder() {
    let stdout = run_example("a2a");
    assert!(stdout.contains("sent 200, received 200"), "{stdout}");
    // The last line is the report as JSON.
    let json = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(v["clock"]["mode"], "shared");
    assert_eq!(v["forward"]["loss_pct"], 0.0);
}

#[test]
fn dns_example_against_its_own_server() {
    let stdout = run_example("dns");
    assert!(
        stdout.contains("www.example.test.\t120\tA\t192.0.2.80"),
        "{stdout}"
    );
    let json = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    let server = &v["servers"][0];
    assert_eq!(server["status"], "ok");
    assert_eq!(server["responses"], 5);
    let p50 = server["latency_ms"]["p50"].as_f64().expect("p50");
    assert!(p50 > 0.0 && p50 < 100.0, "{server}");
}

#[test]
fn http_example_against_its_own_server() {
    let stdout = run_example("http");
    let json = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(v["succeeded"], 3, "{v}");
    for r in v["requests"].as_array().expect("requests") {
        assert_eq!(r["status"], 200);
        assert_eq!(r["size_bytes"], 30);
        assert_eq!(r["http_version"], "HTTP/1.1");
        let total = r["phases"]["total_ms"].as_f64().expect("total");
        let connect = r["phases"]["connect_ms"].as_f64().expect("connect");
        assert!(connect > 0.0 && connect < total && total < 1000.0, "{r}");
    }
}
