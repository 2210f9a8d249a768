//! Command-line surface: help, version, completions, and honest refusals.

use std::process::Command;

fn probe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_probe"))
}

#[test]
fn version_and_help() {
    let out = probe().arg("--version").output().expect("run probe");
    assert!(out.status.success());
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.starts_with("probe "), "{v}");
    let out = probe().arg("--help").output().expect("run probe");
    let h = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "serve",
        "a2a",
        "trace",
        "ping",
        "dns",
        "agent",
        "completions",
    ] {
        assert!(h.contains(sub), "help lacks {sub}: {h}");
    }
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_probe()"),
        ("zsh", "#compdef probe"),
        ("fish", "complete -c probe"),
    ] {
        let out = probe()
            .args(["completions", shell])
            .output()
            .expect("run probe");
        assert!(out.status.success(), "{shell}");
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains(marker), "{shell} completions lack {marker}");
        assert!(s.contains("a2a"), "{shell} completions lack a2a");
    }
}
