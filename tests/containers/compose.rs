//! `deploy/compose.yaml` brought up with podman-compose in the testbed's container host: the
//! NAT service with its published ports, then the macvlan one (profile `macvlan`) at its own
//! address on the peer's segment, then `down -v`.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use super::agent::{HOST_V4, PEER_V4, assert_clean_run, fingerprint, setup};
use super::podman::{Podman, repo, unique};
use crate::common::a2a_json;

/// The macvlan service's address (`PROBE_MACVLAN_IP`).
const MACVLAN_IP: &str = "198.18.0.3";

/// podman-compose: `PROBE_PODMAN_COMPOSE`, else the one `scripts/test-all.sh` installs in its
/// venv (from the Python package index; Debian's 1.0.3 ignores `profiles` and `driver_opts`).
fn podman_compose() -> PathBuf {
    let path = std::env::var_os("PROBE_PODMAN_COMPOSE").map_or_else(
        || repo().join("target/deploy-venv/bin/podman-compose"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "no podman-compose at {} (run scripts/test-all.sh, which installs it, or set \
         PROBE_PODMAN_COMPOSE)",
        path.display()
    );
    path
}

/// A compose project of `deploy/compose.yaml` in the container host, taken down (with its
/// volumes) on drop.
struct Project {
    podman: Podman,
    name: String,
    /// podman-compose, found before the project starts (so the drop never fails to find it).
    compose: PathBuf,
}

impl Project {
    /// `podman-compose -p NAME -f compose.yaml ARGS` from `deploy/` (the file's seccomp path is
    /// relative), with the macvlan network and `--dns` set for the testbed.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["-p", &self.name, "-f", "compose.yaml"];
        all.extend_from_slice(args);
        let out = self
            .podman
            .tool(&self.compose, &all, Duration::from_mins(2))
            .current_dir(repo().join("deploy"))
            .env("PROBE_DNS", PEER_V4.to_string())
            .env("PROBE_PARENT", "eth0")
            .env("PROBE_SUBNET", "198.18.0.0/24")
            .env("PROBE_GATEWAY", HOST_V4.to_string())
            .env("PROBE_MACVLAN_IP", MACVLAN_IP)
            .output()
            .expect("run podman-compose");
        assert!(
            out.status.success(),
            "podman-compose {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The container of `service`, once its `HEALTHCHECK` passes.
    fn wait_healthy(&self, service: &str) {
        let names = self.podman.ok(&[
            "ps",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
            "--format",
            "{{.Names}}",
        ]);
        let name = names.trim();
        assert!(
            !name.is_empty() && !name.contains('\n'),
            "one container for {service}: {names:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .podman
            .output(&["healthcheck", "run", name], Duration::from_secs(20))
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "{service} ({name}) not healthy within 30 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The project's volumes still present.
    fn volumes(&self) -> Vec<String> {
        self.podman
            .ok(&[
                "volume",
                "ls",
                "--filter",
                &format!("label=com.docker.compose.project={}", self.name),
                "--format",
                "{{.Name}}",
            ])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let mut all = vec!["-p", self.name.as_str(), "-f", "compose.yaml"];
        all.extend(["--profile", "macvlan", "down", "-v", "-t", "0"]);
        let _ = self
            .podman
            .tool(&self.compose, &all, Duration::from_mins(1))
            .current_dir(repo().join("deploy"))
            .output();
    }
}

/// The NAT service: the peer measures it through its published ports and reads its
/// fingerprint on 8000/tcp. The macvlan service (profile `macvlan`, not started by a plain
/// `up`): the peer reaches it at its own address, with an identity of its own (its own
/// volumes). `down -v` removes the containers and volumes.
#[test]
fn compose_file_runs_with_podman_compose() {
    let Some(lab) = setup() else { return };
    let compose = podman_compose();
    let project = Project {
        podman: lab.podman.clone(),
        name: unique("compose").replace('-', "_"),
        compose,
    };
    project.run(&["up", "-d"]);
    project.wait_healthy("agent");
    let nat = fingerprint(&lab.net.b, HOST_V4, "compose");
    let v = a2a_json(&lab.net.b, "198.18.0.1", &["-c", "50", "-i", "5ms"]);
    assert_clean_run(&v, 50.0, "peer -> compose NAT service");
    assert!(
        !project.volumes().is_empty(),
        "the NAT service's volumes exist"
    );

    project.run(&["--profile", "macvlan", "up", "-d", "agent-macvlan"]);
    project.wait_healthy("agent-macvlan");
    let own = fingerprint(&lab.net.b, MACVLAN_IP.parse().expect("address"), "compose");
    assert_ne!(nat, own, "each service has its own state volume");
    let v = a2a_json(&lab.net.b, MACVLAN_IP, &["-c", "50", "-i", "5ms"]);
    assert_clean_run(&v, 50.0, "peer -> compose macvlan service");

    project.run(&["--profile", "macvlan", "down", "-v", "-t", "2"]);
    assert_eq!(
        project.volumes(),
        Vec::<String>::new(),
        "down -v removed them"
    );
}
