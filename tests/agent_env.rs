//! Tests defined by environment variables (`PROBE_TEST_<NAME>_<KEY>`), through `probe agent
//! --check`: they join the file's tests (replacing one of the same name), and every problem
//! in them is listed with its variable, all at once, with exit code 2. No network.

mod common;

use std::process::Command;

use common::agent::{Scratch, write};
use common::output;
use serde_json::Value;

fn check(
    file: &std::path::Path,
    env: &[(&str, &str)],
    state: &std::path::Path,
) -> std::process::Output {
    output(
        Command::new(probe_suite::probe_bin())
            .args(["agent", "--check", "--config"])
            .arg(file)
            .env("PROBE_STATE_DIR", state)
            .envs(env.iter().copied()),
    )
}

#[test]
fn environment_tests_join_the_files_and_replace_one_of_the_same_name() {
    let s = Scratch::new("env-tests");
    let file = s.0.join("agent.toml");
    write(
        &file,
        "[[tests]]\nname = \"to-core\"\nkind = \"a2a\"\ntarget = \"192.0.2.7\"\ninterval = \"10s\"\n[[tests]]\nname = \"kept\"\nkind = \"trace\"\ntarget = \"192.0.2.9\"\ninterval = \"1m\"\n",
    );
    let out = check(
        &file,
        &[
            ("PROBE_TEST_TO_CORE_KIND", "a2a"),
            ("PROBE_TEST_TO_CORE_TARGET", "core.example.net:4000"),
            ("PROBE_TEST_TO_CORE_INTERVAL", "5s"),
            ("PROBE_TEST_TO_CORE_PACKET_INTERVAL", "1s"),
            ("PROBE_TEST_GW_KIND", "ping"),
            ("PROBE_TEST_GW_TARGETS", "192.0.2.1,192.0.2.2"),
            ("PROBE_TEST_GW_INTERVAL", "30s"),
            ("PROBE_TEST_GW_COUNT", "3"),
        ],
        &s.0.join("state"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let tests = v["tests"].as_array().expect("tests");
    let names: Vec<&str> = tests.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["to-core", "kept", "gw"], "{v:#}");
    assert_eq!(tests[0]["target"], "core.example.net:4000");
    assert_eq!(tests[0]["interval"], "5s");
    assert_eq!(tests[0]["packet_interval"], "1s");
    assert_eq!(tests[1]["kind"], "trace");
    assert_eq!(tests[2]["kind"], "ping");
    assert_eq!(tests[2]["count"], 3);
    assert_eq!(
        tests[2]["targets"],
        serde_json::json!(["192.0.2.1", "192.0.2.2"])
    );
    assert!(!s.0.join("state").exists(), "--check starts nothing");
}

#[test]
fn bad_environment_tests_list_every_problem_with_its_variable_and_exit_2() {
    let s = Scratch::new("env-bad");
    let file = s.0.join("agent.toml");
    write(&file, "name = \"edge-1\"\n");
    let out = check(
        &file,
        &[
            ("PROBE_TEST_A_KIND", "a2a"),
            ("PROBE_TEST_A_TARGET", "192.0.2.7"),
            ("PROBE_TEST_A_INTERVAL", "soon"),
            ("PROBE_TEST_A_COUNT", "-3"),
            ("PROBE_TEST_A_PROTOCOL", "udp"),
            ("PROBE_TEST_B_TARGET", "192.0.2.8"),
            ("PROBE_TEST_B_INTERVALL", "10s"),
            ("PROBE_INET", "5"),
        ],
        &s.0.join("state"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "7 problem(s)",
        "PROBE_TEST_A_INTERVAL (environment): `soon` is not a duration",
        "PROBE_TEST_A_COUNT (environment): expected a whole number",
        "PROBE_TEST_A_PROTOCOL (environment): a a2a test does not take `protocol`",
        "PROBE_TEST_B_INTERVALL (environment): unknown test key (hint: did you mean `PROBE_TEST_<NAME>_INTERVAL`?)",
        "PROBE_TEST_B_* (environment): `kind` is missing",
        "PROBE_TEST_B_* (environment): `interval` is missing",
        "PROBE_INET (environment): `5` is not a family",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!s.0.join("state").exists());
}
