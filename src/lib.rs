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
