//! The environment's part of the configuration: the variables over the file's settings
//! (`PROBE_NAME`, `PROBE_DNS`, ...), and tests defined by variables, for deployments configured
//! by environment alone (`docker run -e`, a Kubernetes manifest):
//! `PROBE_TEST_<NAME>_<KEY>=VALUE`, one variable per key of a `[[tests]]` entry of the file.
//!
//! `<NAME>` names the test (lower-cased, `_` read as `-`: `PROBE_TEST_TO_CORE_KIND=a2a` is the
//! test `to-core`, unless `PROBE_TEST_TO_CORE_NAME` names it otherwise); `<KEY>` is the file's
//! key upper-cased (`KIND`, `TARGET`, `INTERVAL`, `PACKET_INTERVAL`, ...). Lists (`TARGETS`,
//! `SERVERS`) are comma-separated; numbers and `TCP` (`true`/`false`, `yes`/`no`) are plain.
//! A test defined this way replaces the file's test of the same name.
//!
//! The values are checked by the very code that checks the file (each variable becomes one
//! line of a `[[tests]]` entry), so the rules and hints are the same; every problem names the
//! variable it came from (`PROBE_TEST_<NAME>_*` for one about the test as a whole, such as a
//! missing `KIND`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::config::{Config, Env, Problems, TEST_KEYS, TestConfig, Where};
use crate::config_toml::{Table, did_you_mean};
use crate::config_values::{
    check_ca_file, parse_coalesce, parse_count, parse_inet, parse_listen, read_test, read_token,
    split_list,
};

impl Config {
    /// The variables over the file's settings (`PROBE_NAME`, `PROBE_TAGS`, ...).
    pub(crate) fn read_env(&mut self, env: &Env, problems: &mut Problems) {
        let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty()).cloned();
        let at = |k: &str| Where::Env(k.into());
        if let Some(v) = get("PROBE_NAME") {
            v.trim().clone_into(&mut self.name);
        }
        if let Some(v) = get("PROBE_TAGS") {
            self.tags = split_list(&v);
        }
        match (get("PROBE_TOKEN"), get("PROBE_TOKEN_FILE")) {
            (Some(_), Some(_)) => problems.push(
                at("PROBE_TOKEN_FILE"),
                "both PROBE_TOKEN and PROBE_TOKEN_FILE are set",
                "set only one of them",
            ),
            (Some(t), None) => self.token = Some(t.trim().to_owned()),
            (None, Some(f)) => {
                self.token = read_token(Path::new(&f), at("PROBE_TOKEN_FILE"), problems);
            }
            (None, None) => {}
        }
        if let Some(v) = get("PROBE_STATE_DIR") {
            self.state_dir = v.into();
        }
        if let Some(v) = get("PROBE_LOG_DIR") {
            self.log_dir = Some(v.into());
        }
        if let Some(v) = get("PROBE_LOG_MAX_FILE_BYTES") {
            let at = at("PROBE_LOG_MAX_FILE_BYTES");
            self.log_max_file_bytes =
                parse_count(&v, 1 << 40, at, problems).unwrap_or(self.log_max_file_bytes);
        }
        if let Some(v) = get("PROBE_LOG_KEEP_FILES") {
            let at = at("PROBE_LOG_KEEP_FILES");
            self.log_keep_files =
                parse_count(&v, 10_000, at, problems).map_or(self.log_keep_files, |n| n as usize);
        }
        if let Some(v) = get("PROBE_DNS") {
            self.dns = split_list(&v);
        }
        if let Some(v) = get("PROBE_INET") {
            self.inet = parse_inet(&v, at("PROBE_INET"), problems).unwrap_or(self.inet);
        }
        if let Some(v) = get("PROBE_HTTP") {
            self.http_listen =
                parse_listen(&v, at("PROBE_HTTP"), problems).unwrap_or(self.http_listen);
        }
        if let Some(v) = get("PROBE_RESPONDER_COALESCE") {
            self.responder_coalesce = parse_coalesce(&v, at("PROBE_RESPONDER_COALESCE"), problems)
                .unwrap_or(self.responder_coalesce);
        }
        if let Some(v) = get("PROBE_FINGERPRINT") {
            self.fingerprint = Some(v.trim().to_owned());
        }
        for (key, slot) in [
            ("PROBE_DEBUG", &mut self.debug),
            ("PROBE_BEHIND_NAT", &mut self.mesh.behind_nat),
        ] {
            if let Some(v) = get(key) {
                match v.trim().to_ascii_lowercase().as_str() {
                    "yes" | "true" | "1" => *slot = true,
                    "no" | "false" | "0" => *slot = false,
                    _ => problems.push(
                        at(key),
                        format!("`{v}` is not yes or no"),
                        "set yes, no, true or false",
                    ),
                }
            }
        }
        if let Some(v) = get("PROBE_EXPORT_CA_FILE") {
            self.export.ca_file = check_ca_file(&v, at("PROBE_EXPORT_CA_FILE"), problems);
        }
        self.log_filter = get("RUST_LOG");
        match probe_core::http::ProxyConfig::from_env(|k| env.get(k).cloned()) {
            Ok(p) => self.proxy = p,
            Err(e) => problems.push(
                at("HTTP_PROXY/HTTPS_PROXY"),
                e.to_string(),
                "give a proxy URL such as http://proxy.example:3128",
            ),
        }
    }
}

/// The prefix of every test variable.
pub(crate) const PREFIX: &str = "PROBE_TEST_";

/// The file name problems of the synthesised entries carry before they are given their
/// variable (never shown).
const SOURCE: &str = "<environment>";

/// Keys whose value is a comma-separated list.
const LIST_KEYS: &[&str] = &["targets", "servers"];
/// Keys whose value is a whole number.
const NUMBER_KEYS: &[&str] = &["count", "port", "max_ttl"];
/// Keys whose value is true or false.
const BOOL_KEYS: &[&str] = &["tcp"];

/// One test's variables: (key, variable, value), in the variables' order.
type Group = Vec<(&'static str, String, String)>;

/// Adds the tests the environment defines to `tests` (the file's), replacing a test of the
/// same name.
pub(crate) fn merge_env_tests(tests: &mut Vec<TestConfig>, env: &Env, problems: &mut Problems) {
    for test in read_env_tests(env, problems) {
        match tests.iter_mut().find(|t| t.name == test.name) {
            Some(same) => *same = test,
            None => tests.push(test),
        }
    }
}

/// The tests the environment defines, in the order of their names; their problems go to
/// `problems`.
pub(crate) fn read_env_tests(env: &Env, problems: &mut Problems) -> Vec<TestConfig> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(PREFIX) else {
            continue;
        };
        match split_name_and_key(rest) {
            Some((name, key)) => {
                groups
                    .entry(name.to_owned())
                    .or_default()
                    .push((key, var.clone(), value.clone()));
            }
            None => {
                let last = rest.rsplit('_').next().unwrap_or(rest).to_ascii_lowercase();
                let hint = match did_you_mean(&last, TEST_KEYS) {
                    Some(k) => format!("did you mean `{PREFIX}<NAME>_{}`?", k.to_ascii_uppercase()),
                    None => format!(
                        "name test variables {PREFIX}<NAME>_<KEY>, KEY one of {}",
                        TEST_KEYS.join(", ").to_ascii_uppercase()
                    ),
                };
                problems.push(Where::Env(var.clone()), "unknown test key", hint);
            }
        }
    }
    groups
        .iter()
        .filter_map(|(name, vars)| read_group(name, vars, problems))
        .collect()
}

/// Splits `TO_CORE_PACKET_INTERVAL` into the test part (`TO_CORE`) and the key
/// (`packet_interval`), the longest key that leaves a test part.
fn split_name_and_key(rest: &str) -> Option<(&str, &'static str)> {
    let mut keys: Vec<&'static str> = TEST_KEYS.to_vec();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    keys.into_iter().find_map(|key| {
        let upper = key.to_ascii_uppercase();
        let name = rest.strip_suffix(upper.as_str())?.strip_suffix('_')?;
        (!name.is_empty()).then_some((name, key))
    })
}

/// The test of one `<NAME>`, checked as a `[[tests]]` entry.
fn read_group(
    name: &str,
    vars: &[(&'static str, String, String)],
    problems: &mut Problems,
) -> Option<TestConfig> {
    let whole = format!("{PREFIX}{name}_*");
    // Line 1 is the table header; each later line is one variable.
    let mut text = String::from("[[tests]]\n");
    let mut line_vars = vec![whole.clone(), whole.clone()];
    if !vars.iter().any(|(k, _, _)| *k == "name") {
        let default = name.to_ascii_lowercase().replace('_', "-");
        let _ = writeln!(text, "name = {}", quote(&default));
        line_vars.push(whole.clone());
    }
    for (key, var, value) in vars {
        let _ = writeln!(text, "{key} = {}", toml_value(key, value));
        line_vars.push(var.clone());
    }
    let root = match toml::de::DeTable::parse(&text) {
        Ok(r) => r,
        Err(e) => {
            // Every value is quoted or checked before it is written, so this means a bug.
            problems.push(
                Where::Env(whole),
                format!("cannot read these variables: {}", e.message().trim()),
                "check their values",
            );
            return None;
        }
    };
    let mut local = Problems::default();
    let table = Table::root(&text, SOURCE, root.get_ref());
    let test = table
        .tables("tests", &mut local)
        .into_iter()
        .next()
        .and_then(|t| read_test(&t, &mut local));
    for mut p in local.0 {
        if let Where::File { line, key, .. } = &p.at {
            let var = if key.contains('.') {
                line_vars.get(*line).unwrap_or(&whole)
            } else {
                &whole
            };
            p.at = Where::Env(var.clone());
        }
        problems.0.push(p);
    }
    test
}

/// `value` of `key` as a TOML value: lists as arrays of strings, numbers and booleans bare
/// when they are one (else quoted, for the check to name the problem), everything else a
/// string.
fn toml_value(key: &str, value: &str) -> String {
    let v = value.trim();
    if LIST_KEYS.contains(&key) {
        let items: Vec<String> = crate::config_values::split_list(v)
            .iter()
            .map(|s| quote(s))
            .collect();
        return format!("[{}]", items.join(", "));
    }
    if NUMBER_KEYS.contains(&key)
        && let Ok(n) = v.parse::<u64>()
    {
        return n.to_string();
    }
    if BOOL_KEYS.contains(&key) {
        match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => return "true".into(),
            "false" | "no" | "0" => return "false".into(),
            _ => {}
        }
    }
    quote(v)
}

/// A TOML basic string (JSON's escapes are TOML's).
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Kind;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn names_and_keys_split_at_the_longest_key() {
        assert_eq!(
            split_name_and_key("TO_CORE_PACKET_INTERVAL"),
            Some(("TO_CORE", "packet_interval"))
        );
        assert_eq!(split_name_and_key("X_TARGETS"), Some(("X", "targets")));
        // A test called PACKET with its interval.
        assert_eq!(
            split_name_and_key("PACKET_INTERVAL"),
            Some(("PACKET", "interval"))
        );
        assert_eq!(split_name_and_key("X_COLOUR"), None);
        assert_eq!(split_name_and_key("KIND"), None);
    }

    #[test]
    fn variables_make_tests_like_the_file_does() {
        let mut problems = Problems::default();
        let tests = read_env_tests(
            &env(&[
                ("PROBE_TEST_TO_CORE_KIND", "a2a"),
                ("PROBE_TEST_TO_CORE_TARGET", "core.example.net"),
                ("PROBE_TEST_TO_CORE_INTERVAL", "10s"),
                ("PROBE_TEST_TO_CORE_COUNT", "050"),
                ("PROBE_TEST_GW_KIND", "ping"),
                ("PROBE_TEST_GW_NAME", "gateways"),
                ("PROBE_TEST_GW_TARGETS", "192.0.2.1, gw.example.net"),
                ("PROBE_TEST_GW_INTERVAL", "1m"),
                ("PROBE_TEST_DNS_KIND", "dns"),
                ("PROBE_TEST_DNS_TARGET", "www.example.net"),
                ("PROBE_TEST_DNS_INTERVAL", "30s"),
                ("PROBE_TEST_DNS_TCP", "yes"),
                ("PROBE_NAME", "not-a-test"),
            ]),
            &mut problems,
        );
        assert!(problems.0.is_empty(), "{problems}");
        let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["dns", "gateways", "to-core"]);
        let core = &tests[2];
        assert_eq!(core.kind, Kind::A2a);
        assert_eq!(core.target, "core.example.net");
        assert_eq!(core.interval, std::time::Duration::from_secs(10));
        assert_eq!(core.count, 50);
        assert_eq!(tests[1].all_targets(), ["192.0.2.1", "gw.example.net"]);
        assert!(tests[0].tcp);
    }

    #[test]
    fn every_problem_names_its_variable() {
        let mut problems = Problems::default();
        let tests = read_env_tests(
            &env(&[
                ("PROBE_TEST_BAD_KIND", "a2a"),
                ("PROBE_TEST_BAD_INTERVAL", "soon"),
                ("PROBE_TEST_BAD_COUNT", "many"),
                ("PROBE_TEST_BAD_TARGET", "core.example.net"),
                ("PROBE_TEST_BAD_CUONT", "3"),
                ("PROBE_TEST_NOKIND_TARGET", "192.0.2.7"),
                ("PROBE_TEST_NOKIND_INTERVAL", "10s"),
            ]),
            &mut problems,
        );
        assert!(tests.is_empty());
        let text = problems.to_string();
        for want in [
            "PROBE_TEST_BAD_CUONT (environment): unknown test key (hint: did you mean `PROBE_TEST_<NAME>_COUNT`?)",
            "PROBE_TEST_BAD_INTERVAL (environment): `soon` is not a duration",
            "PROBE_TEST_BAD_COUNT (environment): expected a whole number",
            "PROBE_TEST_NOKIND_* (environment): `kind` is missing",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert_eq!(problems.0.len(), 4, "{text}");
    }
}
