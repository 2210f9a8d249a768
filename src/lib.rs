//! Helpers shared by the workspace's integration tests (`tests/`), benchmarks (`benches/`)
//! and examples (`examples/`).

use std::path::PathBuf;

/// Path of the `probe` binary built by this workspace (`target/<profile>/probe`).
///
/// `cargo test --workspace` builds it alongside the tests (probe-cli has integration tests of
/// its own, which makes cargo build the binary). `PROBE_BIN` overrides the location.
pub fn probe_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PROBE_BIN") {
        return PathBuf::from(p);
    }
    let bin = profile_dir().join("probe");
    assert!(
        bin.exists(),
        "the probe binary is missing at {}: run `cargo build -p probe-cli` (or `cargo test --workspace`) first, or set PROBE_BIN",
        bin.display()
    );
    bin
}

/// Path of a release-grade `probe`, for the tests that compare probe's timing with other tools'
/// (a debug build spends measurably more CPU in each step), or `None` when there is none:
/// `PROBE_BIN` when set; else the static binary `deploy/build-image.sh` builds (and
/// `scripts/test-all.sh` before the tests), under `PROBE_STATIC_TARGET_DIR` or `target/static`;
/// else `target/release/probe`.
pub fn release_probe_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROBE_BIN") {
        return Some(PathBuf::from(p));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let static_dir = std::env::var_os("PROBE_STATIC_TARGET_DIR")
        .map_or_else(|| root.join("target/static"), PathBuf::from);
    let static_bin = static_dir.join("x86_64-unknown-linux-gnu/container/probe");
    let release_bin = profile_dir()
        .parent()
        .map(|target| target.join("release/probe"));
    [Some(static_bin), release_bin]
        .into_iter()
        .flatten()
        .find(|p| p.exists())
}

/// Path of an example built by this workspace (`target/<profile>/examples/<name>`);
/// `cargo test --all-targets` builds the examples.
pub fn example_bin(name: &str) -> PathBuf {
    let bin = profile_dir().join("examples").join(name);
    assert!(
        bin.exists(),
        "the example {name} is missing at {}: run `cargo build --examples` (or `cargo test --all-targets`) first",
        bin.display()
    );
    bin
}

/// `target/<profile>`, from the running test binary's path (`target/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default()
}
