//! The configuration's single values: one `[[tests]]` entry, and the values that are
//! checked the same way whether they come from the file or the environment.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::config::{Class, Inet, Kind, Problems, TEST_KEYS, TestConfig, Where};
use crate::config_toml::Table;

pub(crate) fn read_test(t: &Table<'_, '_>, problems: &mut Problems) -> Option<TestConfig> {
    t.check_keys(TEST_KEYS, problems);
    let before = problems.0.len();
    let missing = |problems: &mut Problems, key: &str, hint: &str| {
        problems.push(t.here(t.first_span()), format!("`{key}` is missing"), hint);
    };
    let name = t.string("name", problems).map(|v| v.0);
    let kind = t.string("kind", problems);
    let target = t.string("target", problems);
    let interval = t.duration("interval", problems);
    if !t.has("name") {
        missing(problems, "name", "every test needs a unique name");
    }
    if !t.has("target") && !t.has("targets") {
        missing(
            problems,
            "target",
            "give an address, HOST:PORT or a DNS name",
        );
    }
    if !t.has("interval") {
        missing(problems, "interval", r#"e.g. interval = "10s""#);
    }
    let kind = match kind {
        Some((k, at)) => match k.as_str() {
            "a2a" => Some(Kind::A2a),
            "trace" => Some(Kind::Trace),
            "http" => Some(Kind::Http),
            "ping" => Some(Kind::Ping),
            "dns" => Some(Kind::Dns),
            other => {
                problems.push(
                    at,
                    format!("the agent cannot run kind `{other}`"),
                    KINDS_HINT,
                );
                None
            }
        },
        None => {
            if !t.has("kind") {
                missing(problems, "kind", KINDS_HINT);
            }
            None
        }
    };
    let specific = crate::config_kinds::read_kind_keys(t, kind, problems);
    let default_count = if kind == Some(Kind::Dns) { 1 } else { 100 };
    let count = t
        .uint("count", 1_000_000, problems)
        .map_or(default_count, |n| n as u32);
    let packet_interval = t
        .duration("packet_interval", problems)
        .unwrap_or(Duration::from_millis(20));
    let class = match t.string("class", problems) {
        Some((c, at)) => match c.as_str() {
            "latency" => Class::Latency,
            "throughput" => Class::Throughput,
            _ => {
                problems.push(at, format!("unknown class `{c}`"), "latency or throughput");
                Class::Latency
            }
        },
        None => Class::Latency,
    };
    let port = t
        .uint("port", 65_535, problems)
        .map_or(specific.default_port, |p| p as u16);
    let max_ttl = t.uint("max_ttl", 255, problems).map_or(30, |n| n as u8);
    let interval = interval.unwrap_or(Duration::from_secs(60));
    let deadline = t.duration("deadline", problems).unwrap_or(interval);
    let jitter = t.duration("jitter", problems).unwrap_or(interval / 10);
    if interval.is_zero() || count == 0 || deadline.is_zero() || packet_interval.is_zero() {
        problems.push(
            t.here(t.first_span()),
            "interval, count, deadline and packet_interval must be above zero",
            "give positive values",
        );
    }
    let (target, targets) = crate::config_kinds::check_targets(t, kind, target, port, problems);
    if problems.0.len() > before {
        return None;
    }
    Some(TestConfig {
        name: name?,
        kind: kind?,
        target: target?,
        interval,
        count,
        packet_interval,
        deadline,
        jitter,
        class,
        port,
        max_ttl,
        targets,
        protocol: specific.protocol,
        proto: specific.proto,
        timeout: specific.timeout,
        record_type: specific.record_type,
        servers: specific.servers,
        tcp: specific.tcp,
    })
}

const KINDS_HINT: &str = "use a2a, trace, ping, dns or http";

pub(crate) fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn read_token(path: &Path, at: Where, problems: &mut Problems) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
        Ok(_) => {
            problems.push(
                at,
                format!("{} is empty", path.display()),
                "put the token in it",
            );
            None
        }
        Err(e) => {
            problems.push(
                at,
                format!("cannot read {}: {e}", path.display()),
                "check the path and its permissions",
            );
            None
        }
    }
}

pub(crate) fn parse_inet(v: &str, at: Where, problems: &mut Problems) -> Option<Inet> {
    match v.trim() {
        "4" => Some(Inet::V4),
        "6" => Some(Inet::V6),
        "any" => Some(Inet::Any),
        _ => {
            problems.push(at, format!("`{v}` is not a family"), "use 4, 6 or any");
            None
        }
    }
}

/// A whole number from 1 to `max` in an environment variable.
pub(crate) fn parse_count(v: &str, max: u64, at: Where, problems: &mut Problems) -> Option<u64> {
    match v.trim().parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Some(n),
        _ => {
            problems.push(
                at,
                format!("`{v}` is not a whole number from 1 to {max}"),
                format!("give a number from 1 to {max}"),
            );
            None
        }
    }
}

pub(crate) fn parse_listen(v: &str, at: Where, problems: &mut Problems) -> Option<SocketAddr> {
    match v.trim().parse() {
        Ok(a) => Some(a),
        Err(_) => {
            problems.push(
                at,
                format!("`{v}` is not ADDRESS:PORT"),
                "e.g. 0.0.0.0:8000 or [::]:8000",
            );
            None
        }
    }
}

/// The longest `responder.coalesce`: a hold beyond it would make replies look lost to
/// senders with short timeouts.
pub(crate) const MAX_RESPONDER_COALESCE: Duration = Duration::from_millis(10);

/// `responder.coalesce`: a duration from 0 to [`MAX_RESPONDER_COALESCE`].
pub(crate) fn parse_coalesce(v: &str, at: Where, problems: &mut Problems) -> Option<Duration> {
    match humantime::parse_duration(v.trim()) {
        Ok(d) if d <= MAX_RESPONDER_COALESCE => Some(d),
        Ok(_) => {
            problems.push(
                at,
                format!("`{v}` is longer than the 10ms the responder may hold requests"),
                r#"write e.g. "1ms", or "0s" to answer each request at once"#,
            );
            None
        }
        Err(e) => {
            problems.push(
                at,
                format!("`{v}` is not a duration: {e}"),
                r#"write e.g. "1ms", or "0s" to answer each request at once"#,
            );
            None
        }
    }
}

/// A readable CA file, or a problem.
pub(crate) fn check_ca_file(
    v: &str,
    at: Where,
    problems: &mut Problems,
) -> Option<std::path::PathBuf> {
    match std::fs::read_to_string(v) {
        Ok(pem) if pem.contains("BEGIN CERTIFICATE") => Some(v.into()),
        Ok(_) => {
            problems.push(
                at,
                format!("{v} holds no certificate"),
                "give a PEM file with the CA's `BEGIN CERTIFICATE` block",
            );
            None
        }
        Err(e) => {
            problems.push(
                at,
                format!("cannot read {v}: {e}"),
                "check the path and its permissions",
            );
            None
        }
    }
}

pub(crate) fn check_url(u: &str, at: Where, problems: &mut Problems) -> Option<String> {
    if u.starts_with("http://") || u.starts_with("https://") {
        Some(u.to_owned())
    } else {
        problems.push(
            at,
            format!("`{u}` is not an http(s) URL"),
            "e.g. http://prometheus:9090/api/v1/write",
        );
        None
    }
}
