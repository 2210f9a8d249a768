//! Running `probe agent` inside testbed hosts and reading its spool through `probe results`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use probe_lab::{Background, Host};
use serde_json::Value;

use super::{output, probe, wait_udp_listening};

/// A scratch directory removed at the end of the test (also on failure).
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory for the test `name`.
    pub fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("probe-agent-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes a configuration file.
pub fn write(path: &Path, text: &str) {
    fs::write(path, text).expect("write config");
}

/// A running agent with its output in files (a full pipe would stall it).
pub struct Agent {
    bg: Option<Background>,
    /// Its state directory (identity, spool).
    pub state: PathBuf,
    /// The file holding its stdout and stderr.
    pub log: PathBuf,
}

impl Agent {
    /// Starts `probe agent --config CONFIG` in `host` as `name`, with `PROBE_DNS=dns`, and
    /// waits for its responder.
    pub fn start(host: &Host, dir: &Path, name: &str, config: &Path, dns: &str) -> Agent {
        Agent::start_with(host, dir, name, config, dns, &[])
    }

    /// [`Agent::start`] with more environment variables.
    pub fn start_with(
        host: &Host,
        dir: &Path,
        name: &str,
        config: &Path,
        dns: &str,
        env: &[(&str, &str)],
    ) -> Agent {
        let state = dir.join(format!("{name}-state"));
        let log = dir.join(format!(
            "{name}-{}.out",
            Instant::now().elapsed().as_nanos()
        ));
        let file = fs::File::create(&log).expect("log file");
        let mut cmd = probe(host, &["agent", "--config"]);
        cmd.arg(config)
            .env("PROBE_NAME", name)
            .env("PROBE_STATE_DIR", &state)
            .env("PROBE_DNS", dns)
            .env("PROBE_INET", "4")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(Stdio::from(file.try_clone().expect("dup")))
            .stderr(Stdio::from(file));
        let bg = host.spawn(&mut cmd).expect("start probe agent");
        wait_udp_listening(host, 49153);
        Agent {
            bg: Some(bg),
            state,
            log,
        }
    }

    /// Its records (of `test`, or all) through `probe results --json`.
    pub fn records(&self, test: Option<&str>) -> Vec<Value> {
        records_in(&self.state, test)
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The agent id it logged at start (the last start in its log).
    pub fn id(&self) -> String {
        let log = self.log();
        let line = log
            .lines()
            .rfind(|l| l.contains("probe agent starting"))
            .unwrap_or_else(|| panic!("no start line in:\n{log}"));
        let id = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("id="))
            .expect("id=");
        id.to_owned()
    }

    /// Its process id.
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.bg.as_ref().expect("running").pid() as i32)
    }

    /// Sends it `sig`.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), sig).expect("signal");
    }

    /// SIGTERM; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let out = self
            .bg
            .take()
            .expect("running")
            .terminate(Duration::from_secs(10))
            .expect("terminate");
        out.status.code()
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = self.bg.take().expect("running").wait();
    }
}

/// The records (of `test`, or all) in an agent's state directory, through `probe results
/// --json`.
pub fn records_in(state: &Path, test: Option<&str>) -> Vec<Value> {
    let mut cmd = Command::new(probe_suite::probe_bin());
    cmd.args(["results", "--json", "--state-dir"]).arg(state);
    if let Some(t) = test {
        cmd.args(["--test", t]);
    }
    let out = output(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a complete JSON line"))
        .collect()
}

/// Waits up to `secs` for `cond` on fresh records.
pub fn wait_for(
    agent: &Agent,
    secs: u64,
    what: &str,
    cond: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = agent.records(None);
        if cond(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {secs} s; records: {r:#?}\nlog:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The records of `test` that ran (not skipped).
pub fn ran<'a>(records: &'a [Value], test: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["test"] == test && r["error_class"] != "skipped")
        .collect()
}

/// The peers of the successful records of `test`.
pub fn ok_peers(records: &[Value], test: &str) -> BTreeSet<String> {
    records
        .iter()
        .filter(|r| r["test"] == test && r["ok"] == true)
        .filter_map(|r| r["peer"].as_str().map(str::to_owned))
        .collect()
}

/// Serves `name` (in the zone `lab.test.`) as the A records `ips` from a DNS server on a UDP
/// socket in `host`'s namespace (call inside a tokio runtime). Returns the server (it stops
/// when dropped) and its `ADDR:PORT` for `PROBE_DNS`.
pub fn serve_mesh_name(
    host: &probe_lab::Host,
    name: &str,
    ips: &[std::net::Ipv4Addr],
) -> (
    hickory_server::Server<hickory_server::zone_handler::Catalog>,
    String,
) {
    use hickory_server::proto::rr::RData;
    use hickory_server::proto::rr::rdata::A;
    let zone = super::dns_zone(
        "lab.test.",
        ips.iter()
            .map(|&ip| (name.to_owned(), RData::A(A(ip))))
            .collect(),
    );
    let mut catalog = hickory_server::zone_handler::Catalog::new();
    catalog.upsert(zone.origin().clone(), vec![zone]);
    let ip = host.ipv4();
    let udp = host.run_in(move || {
        let s = std::net::UdpSocket::bind((ip, 0)).expect("bind dns");
        s.set_nonblocking(true).expect("nonblocking");
        s
    });
    let udp = tokio::net::UdpSocket::from_std(udp).expect("tokio udp");
    let dns = udp.local_addr().expect("addr").to_string();
    let mut server = hickory_server::Server::new(catalog);
    server.register_socket(udp);
    (server, dns)
}
