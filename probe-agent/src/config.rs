//! The agent's configuration: a TOML file (`--config`, `PROBE_CONFIG`) with environment
//! variables over it, validated as a whole before anything starts. Every problem names its
//! key (file and line, or variable) and a hint, and all of them are reported at once.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use crate::config_kinds::{A2aProto, Kind, PingProtocol};
use crate::config_toml::Table;
use crate::config_values::{
    check_ca_file, check_url, parse_coalesce, parse_inet, parse_listen, read_test, read_token,
};

/// How long the agent's responder lets requests gather by default: at a mesh's thousands
/// of requests a second, a wake-up and a send call per millisecond instead of per request.
pub const DEFAULT_RESPONDER_COALESCE: Duration = Duration::from_millis(1);

/// The environment the configuration reads (a snapshot, so tests can give their own).
pub type Env = BTreeMap<String, String>;

/// The process environment as an [`Env`].
pub fn process_env() -> Env {
    std::env::vars().collect()
}

/// Where a problem is: a key of the file (with its line) or an environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Where {
    /// A key in the configuration file.
    File {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The key's dotted path (`tests[0].interval`).
        key: String,
    },
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Where::File { file, line, key } if key.is_empty() => write!(f, "{file}:{line}"),
            Where::File { file, line, key } => write!(f, "{file}:{line}: {key}"),
            Where::Env(var) => write!(f, "{var} (environment)"),
        }
    }
}

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where it is.
    pub at: Where,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Every problem found, in the order found.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub(crate) fn push(&mut self, at: Where, message: impl Into<String>, hint: impl Into<String>) {
        self.0.push(Problem {
            at,
            message: message.into(),
            hint: hint.into(),
        });
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the agent configuration:", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  {}: {} (hint: {})", p.at, p.message, p.hint)?;
        }
        Ok(())
    }
}

/// How a test shares the line with others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Runs alongside every other latency test.
    Latency,
    /// Runs alone: no other test runs while it does.
    Throughput,
}

/// Address family for names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Inet {
    /// IPv4 only.
    #[serde(rename = "4")]
    V4,
    /// IPv6 only.
    #[serde(rename = "6")]
    V6,
    /// Either.
    #[serde(rename = "any")]
    Any,
}

/// One scheduled test.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TestConfig {
    /// Its name (unique).
    pub name: String,
    /// What it measures.
    pub kind: Kind,
    /// An address, `HOST:PORT`, or a DNS name that may resolve to a whole mesh.
    pub target: String,
    /// Time between runs.
    #[serde(with = "humantime_serde_str")]
    pub interval: Duration,
    /// Packets per run (a2a), rounds (trace), requests (http).
    pub count: u32,
    /// Time between packets (a2a) or requests (http) of a run.
    #[serde(with = "humantime_serde_str")]
    pub packet_interval: Duration,
    /// A run still going after this is cut short.
    #[serde(with = "humantime_serde_str")]
    pub deadline: Duration,
    /// The most a run starts after its slot, drawn afresh each run.
    #[serde(with = "humantime_serde_str")]
    pub jitter: Duration,
    /// Latency (continuous) or throughput (exclusive).
    pub class: Class,
    /// The responder's port when the target has none (a2a: 49153, its control port 49152
    /// with `proto = "quic"`).
    pub port: u16,
    /// The largest TTL (trace).
    pub max_ttl: u8,
    /// Every target of a ping or a2a test written as a list (`targets`); `target` then shows them
    /// joined. Empty when the test has the single `target`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// The probes of a ping test.
    pub protocol: PingProtocol,
    /// The transport of an a2a test (`udp`: STAMP, `quic`: the QUIC test).
    pub proto: A2aProto,
    /// How long one probe (ping) or query (dns) waits for its answer.
    #[serde(with = "humantime_serde_str")]
    pub timeout: Duration,
    /// The record type a dns test asks for (`A`, `AAAA`, `MX`, ...).
    pub record_type: String,
    /// The servers a dns test asks (`IP[:PORT]`); empty for the agent's (`PROBE_DNS`, else
    /// the system's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// Whether a dns test queries over TCP.
    pub tcp: bool,
}

impl TestConfig {
    /// The targets a run measures: the `targets` list, else the single `target`.
    pub fn all_targets(&self) -> Vec<&str> {
        if self.targets.is_empty() {
            vec![self.target.as_str()]
        } else {
            self.targets.iter().map(String::as_str).collect()
        }
    }
}

/// The `[mesh]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MeshConfig {
    /// Test at most this many peers of a name (a stable subset); `None` for all.
    pub max_peers: Option<usize>,
    /// How often names are resolved again.
    #[serde(with = "humantime_serde_str")]
    pub resolve_interval: Duration,
    /// `mesh.behind_nat` / `PROBE_BEHIND_NAT`: the agent cannot be reached, so it keeps a
    /// control connection to each peer and is measured over it (see [`crate::mesh_nat`]).
    pub behind_nat: bool,
}

/// The `[spool]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpoolConfig {
    /// A spool file larger than this is rotated.
    pub max_file_bytes: u64,
    /// Rotated files kept besides the current one.
    pub keep_files: usize,
}

/// The `[export]` settings (read by the exporters).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportConfig {
    /// `export.remote_write.url`: where Prometheus remote write pushes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_write_url: Option<String>,
    /// `export.upload.url`: where results are `POST`ed as `NDJSON`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_url: Option<String>,
    /// `export.ca_file`: CA certificates (PEM) trusted for `https` export URLs besides the
    /// system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// The whole, validated configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// The file it came from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The agent's name.
    pub name: String,
    /// The agent's tags.
    pub tags: Vec<String>,
    /// The shared control-plane token (never printed).
    #[serde(serialize_with = "redact")]
    pub token: Option<String>,
    /// The state directory (identity, spool).
    pub state_dir: PathBuf,
    /// Where `probe-agent.log` goes, if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<PathBuf>,
    /// `probe-agent.log` is rotated past this size (`PROBE_LOG_MAX_FILE_BYTES`).
    pub log_max_file_bytes: u64,
    /// Rotated log files kept (`PROBE_LOG_KEEP_FILES`).
    pub log_keep_files: usize,
    /// DNS servers (`PROBE_DNS`); empty for the system's.
    pub dns: Vec<String>,
    /// Address family for names.
    pub inet: Inet,
    /// The HTTP endpoint's listen address.
    pub http_listen: SocketAddr,
    /// The identity to adopt (`PROBE_FINGERPRINT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Debug logging.
    pub debug: bool,
    /// `RUST_LOG`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_filter: Option<String>,
    /// The STAMP responder's port.
    pub stamp_port: u16,
    /// How long the responder lets requests gather before it answers them (`responder.
    /// coalesce`, `PROBE_RESPONDER_COALESCE`; see `probe serve --coalesce`).
    #[serde(with = "humantime_serde_str")]
    pub responder_coalesce: Duration,
    /// The control plane's port.
    pub control_port: u16,
    /// Mesh settings.
    pub mesh: MeshConfig,
    /// Spool settings.
    pub spool: SpoolConfig,
    /// Export settings.
    pub export: ExportConfig,
    /// Proxies for the agent's HTTP requests (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`).
    #[serde(skip)]
    pub proxy: probe_core::http::ProxyConfig,
    /// The scheduled tests.
    pub tests: Vec<TestConfig>,
}

#[allow(clippy::ref_option)] // serde's `serialize_with` hands a reference to the field.
fn redact<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("<redacted>"),
        None => s.serialize_none(),
    }
}

mod humantime_serde_str {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

const TOP_KEYS: &[&str] = &[
    "name",
    "tags",
    "token_file",
    "state_dir",
    "log_dir",
    "log_max_file_bytes",
    "log_keep_files",
    "dns",
    "inet",
    "fingerprint",
    "debug",
    "http",
    "responder",
    "mesh",
    "spool",
    "export",
    "tests",
];
pub(crate) const TEST_KEYS: &[&str] = &[
    "name",
    "kind",
    "target",
    "interval",
    "count",
    "packet_interval",
    "deadline",
    "jitter",
    "class",
    "port",
    "max_ttl",
    "targets",
    "protocol",
    "proto",
    "timeout",
    "record_type",
    "servers",
    "tcp",
];

impl Config {
    /// Reads the file (`file`, else `PROBE_CONFIG`, else none) and the environment, and
    /// validates the whole.
    pub fn load(file: Option<&Path>, env: &Env) -> Result<Config, Problems> {
        let mut problems = Problems::default();
        let path = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("PROBE_CONFIG").map(PathBuf::from));
        let text = match &path {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(t) => Some(t),
                Err(e) => {
                    let at = if file.is_some() {
                        Where::File {
                            file: p.display().to_string(),
                            line: 0,
                            key: String::new(),
                        }
                    } else {
                        Where::Env("PROBE_CONFIG".into())
                    };
                    problems.push(
                        at,
                        format!("cannot read {}: {e}", p.display()),
                        "check the path and its permissions",
                    );
                    None
                }
            },
            None => None,
        };
        let mut cfg = Config::defaults(env);
        cfg.file.clone_from(&path);
        if let (Some(text), Some(p)) = (&text, &path) {
            let name = p.display().to_string();
            match toml::de::DeTable::parse(text) {
                Ok(root) => cfg.read_file(&Table::root(text, &name, root.get_ref()), &mut problems),
                Err(e) => {
                    let line = e
                        .span()
                        .map_or(1, |s| crate::config_toml::line_of(text, s.start));
                    problems.push(
                        Where::File {
                            file: name,
                            line,
                            key: String::new(),
                        },
                        format!("not valid TOML: {}", e.message().trim()),
                        "fix the syntax at that line",
                    );
                }
            }
        }
        cfg.read_env(env, &mut problems);
        crate::config_env::merge_env_tests(&mut cfg.tests, env, &mut problems);
        cfg.check(&mut problems);
        if problems.0.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }

    fn defaults(env: &Env) -> Config {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| env.get("HOSTNAME").cloned())
            .unwrap_or_else(|| "probe".into());
        Config {
            file: None,
            name: host,
            tags: Vec::new(),
            token: None,
            state_dir: probe_core::control::default_state_dir()
                .unwrap_or_else(|| PathBuf::from("/var/lib/probe")),
            log_dir: None,
            log_max_file_bytes: 16 << 20,
            log_keep_files: 4,
            dns: Vec::new(),
            inet: Inet::Any,
            http_listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            fingerprint: None,
            debug: false,
            log_filter: None,
            stamp_port: probe_core::a2a::DEFAULT_PORT,
            responder_coalesce: DEFAULT_RESPONDER_COALESCE,
            control_port: probe_core::control::CONTROL_PORT,
            mesh: MeshConfig {
                max_peers: None,
                resolve_interval: Duration::from_secs(60),
                behind_nat: false,
            },
            spool: SpoolConfig {
                max_file_bytes: 16 << 20,
                keep_files: 8,
            },
            export: ExportConfig::default(),
            proxy: probe_core::http::ProxyConfig::default(),
            tests: Vec::new(),
        }
    }

    fn read_file(&mut self, t: &Table<'_, '_>, problems: &mut Problems) {
        t.check_keys(TOP_KEYS, problems);
        if let Some((v, _)) = t.string("name", problems) {
            self.name = v;
        }
        if let Some(v) = t.strings("tags", problems) {
            self.tags = v;
        }
        if let Some((v, at)) = t.string("token_file", problems) {
            self.token = read_token(Path::new(&v), at, problems);
        }
        if let Some((v, _)) = t.string("state_dir", problems) {
            self.state_dir = v.into();
        }
        if let Some((v, _)) = t.string("log_dir", problems) {
            self.log_dir = Some(v.into());
        }
        if let Some(n) = t.uint("log_max_file_bytes", 1 << 40, problems) {
            self.log_max_file_bytes = n;
        }
        if let Some(n) = t.uint("log_keep_files", 10_000, problems) {
            self.log_keep_files = n as usize;
        }
        if let Some(v) = t.strings("dns", problems) {
            self.dns = v;
        }
        if let Some((v, at)) = t.string("inet", problems) {
            self.inet = parse_inet(&v, at, problems).unwrap_or(self.inet);
        }
        if let Some((v, _)) = t.string("fingerprint", problems) {
            self.fingerprint = Some(v);
        }
        if let Some(v) = t.boolean("debug", problems) {
            self.debug = v;
        }
        if let Some(http) = t.table("http", problems) {
            http.check_keys(&["listen"], problems);
            if let Some((v, at)) = http.string("listen", problems) {
                self.http_listen = parse_listen(&v, at, problems).unwrap_or(self.http_listen);
            }
        }
        if let Some(r) = t.table("responder", problems) {
            r.check_keys(&["port", "control_port", "coalesce"], problems);
            if let Some((v, at)) = r.string("coalesce", problems) {
                self.responder_coalesce =
                    parse_coalesce(&v, at, problems).unwrap_or(self.responder_coalesce);
            }
            if let Some(p) = r.uint("port", 65_535, problems) {
                self.stamp_port = p as u16;
            }
            if let Some(p) = r.uint("control_port", 65_535, problems) {
                self.control_port = p as u16;
            }
        }
        if let Some(m) = t.table("mesh", problems) {
            m.check_keys(&["max_peers", "resolve_interval", "behind_nat"], problems);
            if let Some(b) = m.boolean("behind_nat", problems) {
                self.mesh.behind_nat = b;
            }
            if let Some(n) = m.uint("max_peers", 1 << 20, problems) {
                self.mesh.max_peers = Some(n as usize);
            }
            if let Some(d) = m.duration("resolve_interval", problems) {
                self.mesh.resolve_interval = d;
            }
        }
        if let Some(s) = t.table("spool", problems) {
            s.check_keys(&["max_file_bytes", "keep_files"], problems);
            if let Some(n) = s.uint("max_file_bytes", 1 << 40, problems) {
                self.spool.max_file_bytes = n;
            }
            if let Some(n) = s.uint("keep_files", 10_000, problems) {
                self.spool.keep_files = n as usize;
            }
        }
        if let Some(e) = t.table("export", problems) {
            e.check_keys(&["remote_write", "upload", "ca_file"], problems);
            if let Some((v, at)) = e.string("ca_file", problems) {
                self.export.ca_file = check_ca_file(&v, at, problems);
            }
            for (key, slot) in [
                ("remote_write", &mut self.export.remote_write_url),
                ("upload", &mut self.export.upload_url),
            ] {
                if let Some(sub) = e.table(key, problems) {
                    sub.check_keys(&["url"], problems);
                    if let Some((u, at)) = sub.string("url", problems) {
                        *slot = check_url(&u, at, problems);
                    }
                }
            }
        }
        for test in t.tables("tests", problems) {
            if let Some(tc) = read_test(&test, problems) {
                self.tests.push(tc);
            }
        }
    }

    /// The checks across keys.
    fn check(&self, problems: &mut Problems) {
        let at = |key: &str| match &self.file {
            Some(f) => Where::File {
                file: f.display().to_string(),
                line: 0,
                key: key.into(),
            },
            None => Where::Env("PROBE_NAME".into()),
        };
        // A zero can only come from the file: the variables take 1 and more.
        for (key, zero) in [
            ("log_max_file_bytes", self.log_max_file_bytes == 0),
            ("log_keep_files", self.log_keep_files == 0),
        ] {
            if zero {
                problems.push(at(key), "must be at least 1", "give a number from 1 up");
            }
        }
        if self.name.trim().is_empty() {
            problems.push(
                at("name"),
                "the agent name is empty",
                "set name or PROBE_NAME",
            );
        }
        for s in &self.dns {
            if let Err(e) = probe_core::dns::parse_server(s) {
                problems.push(
                    Where::Env("PROBE_DNS".into()),
                    format!("`{s}`: {e}"),
                    "give IP[:PORT] servers separated by commas",
                );
            }
        }
        if let Some(fp) = &self.fingerprint
            && crate::identity::normalize_fingerprint(fp).is_none()
        {
            problems.push(
                Where::Env("PROBE_FINGERPRINT".into()),
                "not a fingerprint (sha256: and 64 hex digits)",
                "copy it from `curl http://agent:8000` or the agent's log",
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in self.tests.iter().enumerate() {
            if !seen.insert(t.name.as_str()) {
                problems.push(
                    at(&format!("tests[{i}].name")),
                    format!("test name `{}` is used twice", t.name),
                    "give every test its own name",
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
