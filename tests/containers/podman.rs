//! podman driven from the tests: the image (built once per test binary by
//! `deploy/build-image.sh`), commands run inside a testbed "container host" namespace with a
//! time bound, and RAII guards for containers, networks and volumes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use probe_lab::Host;

/// The image the tests run (what `deploy/build-image.sh` builds).
pub const IMAGE: &str = "localhost/probe:latest";

/// The repository root (deploy/ lives there).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `deploy/seccomp.json`, as the run line passes it.
pub fn seccomp_profile() -> PathBuf {
    repo().join("deploy/seccomp.json")
}

/// Builds the image once for this test binary (panics with the script's output on failure).
pub fn ensure_image() {
    static BUILT: OnceLock<Result<Duration, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let start = Instant::now();
        let mut cmd = Command::new("timeout");
        cmd.args(["--kill-after=10", "1500"])
            .arg(repo().join("deploy/build-image.sh"))
            .env("PROBE_IMAGE", IMAGE);
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run build-image.sh: {e}"))?;
        if out.status.success() {
            Ok(start.elapsed())
        } else {
            Err(format!(
                "deploy/build-image.sh failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    match built {
        Ok(took) => eprintln!("image {IMAGE} ready ({took:.1?} to build)"),
        Err(e) => panic!("{e}"),
    }
}

/// A unique name for a container, network or volume of this test process.
pub fn unique(kind: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "probe-test-{}-{kind}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// podman run inside a testbed host's network namespace (`nsenter --net`, which, unlike
/// `ip netns exec`, keeps the cgroup mounts podman needs), so its bridge, masquerade and
/// published-port rules live in that namespace.
#[derive(Debug, Clone)]
pub struct Podman {
    netns: PathBuf,
}

impl Podman {
    /// podman in `host`'s namespace.
    pub fn in_host(host: &Host) -> Self {
        Self {
            netns: PathBuf::from("/run/netns").join(host.name()),
        }
    }

    /// `podman ARGS`, killed after `limit`.
    pub fn command(&self, args: &[&str], limit: Duration) -> Command {
        self.tool(Path::new("podman"), args, limit)
    }

    /// `PROGRAM ARGS` (a podman tool such as podman-compose) in the host's namespace with
    /// podman's settings, killed after `limit`.
    pub fn tool(&self, program: &Path, args: &[&str], limit: Duration) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.arg("--kill-after=5")
            .arg(format!("{}", limit.as_secs().max(1)))
            .arg("nsenter")
            .arg(format!("--net={}", self.netns.display()))
            .arg(program)
            .args(args)
            .env("CONTAINERS_CONF", repo().join("deploy/containers.conf"));
        cmd
    }

    /// Runs `podman ARGS` (at most `limit`) and returns its output, whatever the status.
    pub fn output(&self, args: &[&str], limit: Duration) -> Output {
        self.command(args, limit)
            .output()
            .unwrap_or_else(|e| panic!("cannot run podman {args:?}: {e}"))
    }

    /// Runs `podman ARGS` and panics unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args, Duration::from_mins(1));
        assert!(
            out.status.success(),
            "podman {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a detached container named `name` with `options` (before the image) and
    /// `command` (after it); the guard removes it.
    pub fn run(&self, name: &str, options: &[&str], command: &[&str]) -> Container {
        let mut args = vec!["run", "--detach", "--pull=never", "--name", name];
        args.extend_from_slice(options);
        args.push(IMAGE);
        args.extend_from_slice(command);
        // The guard exists before the container does: a failed start is cleaned up too.
        let container = Container {
            podman: self.clone(),
            name: name.to_owned(),
        };
        self.ok(&args);
        container
    }

    /// Creates a network; the guard removes it.
    pub fn network(&self, args: &[&str]) -> Network {
        let name = unique("net");
        let network = Network {
            podman: self.clone(),
            name: name.clone(),
        };
        let mut all = vec!["network", "create"];
        all.extend_from_slice(args);
        all.push(&name);
        self.ok(&all);
        network
    }

    /// Creates a named volume; the guard removes it.
    pub fn volume(&self) -> Volume {
        let name = unique("vol");
        let volume = Volume {
            podman: self.clone(),
            name: name.clone(),
        };
        self.ok(&["volume", "create", &name]);
        volume
    }
}

/// A container, force-removed on drop.
#[derive(Debug)]
pub struct Container {
    podman: Podman,
    /// Its name.
    pub name: String,
}

impl Container {
    /// `podman exec NAME ARGS` (bounded by `limit`).
    pub fn exec(&self, args: &[&str], limit: Duration) -> Output {
        let mut all = vec!["exec", self.name.as_str()];
        all.extend_from_slice(args);
        self.podman.output(&all, limit)
    }

    /// `podman logs NAME` (stdout and stderr of the container, merged).
    pub fn logs(&self) -> String {
        let out = self
            .podman
            .output(&["logs", &self.name], Duration::from_secs(30));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// `podman inspect --format FORMAT NAME`, trimmed.
    pub fn inspect(&self, format: &str) -> String {
        self.podman
            .ok(&["inspect", "--format", format, &self.name])
            .trim()
            .to_owned()
    }

    /// `podman healthcheck run NAME`: runs the image's `HEALTHCHECK` command once; true when
    /// it reports healthy.
    pub fn healthcheck(&self) -> bool {
        self.podman
            .output(&["healthcheck", "run", &self.name], Duration::from_secs(20))
            .status
            .success()
    }

    /// Waits (at most `limit`) until the image's `HEALTHCHECK` passes (the agent's HTTP
    /// endpoint answers, so its responders are bound).
    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.healthcheck() {
            assert!(
                Instant::now() < deadline,
                "container {} not healthy within {limit:?}; state {}; log:\n{}",
                self.name,
                self.inspect("{{.State.Status}}"),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `podman stop --time SECS NAME` (SIGTERM, SIGKILL after `secs`): its output and how
    /// long it took.
    pub fn stop(&self, secs: u64) -> (Output, Duration) {
        let start = Instant::now();
        let out = self.podman.output(
            &["stop", "--time", &secs.to_string(), &self.name],
            Duration::from_secs(secs + 20),
        );
        (out, start.elapsed())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.podman.output(
            &["rm", "--force", "--time", "0", &self.name],
            Duration::from_secs(30),
        );
    }
}

/// A podman network, removed on drop (after the containers on it, which are declared later).
#[derive(Debug)]
pub struct Network {
    podman: Podman,
    /// Its name.
    pub name: String,
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = self.podman.output(
            &["network", "rm", "--force", &self.name],
            Duration::from_secs(30),
        );
    }
}

/// A named volume, removed on drop.
#[derive(Debug)]
pub struct Volume {
    podman: Podman,
    /// Its name.
    pub name: String,
}

impl Volume {
    /// Where podman keeps its files on the host.
    pub fn mountpoint(&self) -> PathBuf {
        PathBuf::from(
            self.podman
                .ok(&[
                    "volume",
                    "inspect",
                    "--format",
                    "{{.Mountpoint}}",
                    &self.name,
                ])
                .trim(),
        )
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = self.podman.output(
            &["volume", "rm", "--force", &self.name],
            Duration::from_secs(30),
        );
    }
}
