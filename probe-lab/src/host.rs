//! [`Host`]: one network namespace of a topology, with its addresses and ways to run code and
//! programs inside it.

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::thread::JoinHandle;

use crate::background::Background;
use crate::error::{Error, Result};
use crate::netns::{self, Namespace};

/// Sysctls every testbed namespace gets: IPv6 addresses usable at once (no DAD), no ICMP rate
/// limiting (traceroute-style probes get every answer), ICMP errors sourced from the inbound
/// interface (hop lists are exact), and unprivileged ICMP echo sockets allowed.
const BASE_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv6.conf.all.accept_dad", "0"),
    ("net.ipv6.conf.default.accept_dad", "0"),
    ("net.ipv6.conf.all.dad_transmits", "0"),
    ("net.ipv6.conf.default.dad_transmits", "0"),
    ("net.ipv4.icmp_ratelimit", "0"),
    ("net.ipv4.icmp_msgs_per_sec", "1000000"),
    ("net.ipv4.icmp_msgs_burst", "1000000"),
    ("net.ipv6.icmp.ratelimit", "0"),
    ("net.ipv4.icmp_errors_use_inbound_ifaddr", "1"),
    ("net.ipv4.ping_group_range", "0 2147483647"),
];

/// Sysctls of a router: forwarding on, reverse-path filtering off.
const ROUTER_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv6.conf.all.forwarding", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
];

/// Packet and byte totals of a named nftables counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub struct NftCounter {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

/// One network namespace of a topology: its name, its primary addresses and helpers to run
/// commands, background processes and in-process code inside it.
///
/// Dropping a `Host` kills every process still inside the namespace and deletes it.
#[derive(Debug)]
pub struct Host {
    ns: Namespace,
    role: String,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
}

impl Host {
    /// Creates a namespace for `role` (loopback up, base sysctls set) whose primary addresses
    /// will be `ipv4` and `ipv6`. The caller (a topology) configures interfaces and addresses.
    pub(crate) fn create(role: &str, ipv4: Ipv4Addr, ipv6: Ipv6Addr) -> Result<Self> {
        let host = Self {
            ns: Namespace::create(role)?,
            role: role.to_owned(),
            ipv4,
            ipv6,
        };
        host.sysctls(BASE_SYSCTLS)?;
        host.ip(["link", "set", "lo", "up"])?;
        Ok(host)
    }

    /// The namespace name, as used by `ip netns` (`pl<pid>-<n>-<role>`).
    pub fn name(&self) -> &str {
        self.ns.name()
    }

    /// The role of this host in its topology (`agent`, `peer`, `r1`, ...).
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The host's primary IPv4 address (each topology documents which interface it is on).
    pub fn ipv4(&self) -> Ipv4Addr {
        self.ipv4
    }

    /// The host's primary IPv6 address (ULA, `fd00:…/64`).
    pub fn ipv6(&self) -> Ipv6Addr {
        self.ipv6
    }

    /// The primary address of the given family: `ipv6 == false` gives [`Self::ipv4`].
    pub fn addr(&self, ipv6: bool) -> IpAddr {
        if ipv6 {
            self.ipv6.into()
        } else {
            self.ipv4.into()
        }
    }

    /// A command that runs `program` inside this namespace (`ip netns exec NAME program`).
    /// Add arguments and run it as usual; `ip netns exec` execs the program, so the child's pid
    /// is the program's.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.name()]).arg(program);
        cmd
    }

    /// Starts `cmd` (usually made by [`Self::command`]) in the background. The returned guard
    /// kills the process when dropped; dropping the host also kills anything left inside the
    /// namespace.
    pub fn spawn(&self, cmd: &mut Command) -> Result<Background> {
        Background::spawn(cmd)
    }

    /// Runs `f` on a fresh thread that has entered this namespace and returns its result.
    /// Sockets created by `f` live in the namespace and may be returned and used from any
    /// thread. A panic in `f` is propagated.
    ///
    /// # Panics
    /// If the namespace cannot be entered (it exists as long as `self` does, so this means
    /// the system refused `setns`), or if `f` panics.
    pub fn run_in<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        match self.try_run_in(f) {
            Ok(r) => r,
            Err(e) => panic!("run_in {}: {e}", self.name()),
        }
    }

    /// Like [`Self::run_in`], but reports a failure to enter the namespace as an error.
    pub fn try_run_in<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let handle = netns::open_handle(self.name())?;
        let name = self.name();
        std::thread::scope(|scope| {
            let joined = scope
                .spawn(move || {
                    netns::enter(&handle, name)?;
                    Ok(f())
                })
                .join();
            match joined {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Starts `f` on a new named thread inside this namespace and returns its handle (for
    /// servers that run while the caller does other things). The thread panics if it cannot
    /// enter the namespace, which shows up as an `Err` from `join`.
    pub fn spawn_thread<F, R>(&self, f: F) -> Result<JoinHandle<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let handle = netns::open_handle(self.name())?;
        let name = self.name().to_owned();
        std::thread::Builder::new()
            .name(format!("in-{}", self.role))
            .spawn(move || {
                if let Err(e) = netns::enter(&handle, &name) {
                    panic!("cannot enter {name}: {e}");
                }
                f()
            })
            .map_err(|e| Error::io("spawning a namespace thread", e))
    }

    /// Runs `ip -n NAME ARGS…` and returns its output.
    pub fn ip<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", self.name()]).args(args);
        netns::run(&mut cmd, None)
    }

    /// Runs several `ip` commands (one per line, without the leading `ip`) in this namespace
    /// with `ip -batch -`. Lines starting with `-6 ` (IPv6 routes and rules, whose family
    /// cannot be told from their words) run afterwards in a second `ip -6 -batch -`.
    pub fn ip_batch(&self, lines: &[String]) -> Result<()> {
        let (v6, rest): (Vec<&String>, Vec<&String>) =
            lines.iter().partition(|line| line.starts_with("-6 "));
        let v6: Vec<&str> = v6.iter().map(|line| &line[3..]).collect();
        let rest: Vec<&str> = rest.iter().map(|line| line.as_str()).collect();
        for (family, batch) in [(None, rest), (Some("-6"), v6)] {
            if batch.is_empty() {
                continue;
            }
            let mut cmd = Command::new("ip");
            cmd.args(family).args(["-n", self.name(), "-batch", "-"]);
            netns::run(&mut cmd, Some(&(batch.join("\n") + "\n")))?;
        }
        Ok(())
    }

    /// Loads an nftables ruleset (`nft -f -`) in this namespace.
    pub fn nft(&self, ruleset: &str) -> Result<()> {
        netns::run(self.command("nft").args(["-f", "-"]), Some(ruleset)).map(|_| ())
    }

    /// Reads the named counter `name` of table `table` in `family` (`inet`, `ip`, `ip6`).
    pub fn nft_counter(&self, family: &str, table: &str, name: &str) -> Result<NftCounter> {
        let mut cmd = self.command("nft");
        cmd.args(["-j", "list", "counter", family, table, name]);
        let out = netns::run(&mut cmd, None)?;
        parse_nft_counter(&out).map_err(|detail| Error::Parse {
            command: format!("nft -j list counter {family} {table} {name}"),
            detail,
        })
    }

    /// Sets one sysctl inside this namespace (`net.ipv4.ip_forward` style key).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.sysctls(&[(key, value)])
    }

    /// Reads one sysctl inside this namespace (trimmed).
    pub fn read_sysctl(&self, key: &str) -> Result<String> {
        let path = sysctl_path(key);
        self.try_run_in(|| std::fs::read_to_string(&path))?
            .map(|s| s.trim().to_owned())
            .map_err(|e| Error::io(format!("reading {path} in {}", self.name()), e))
    }

    /// Sets several sysctls by writing `/proc/sys` from a thread inside the namespace (the
    /// `net.*` tree there belongs to the writer's namespace).
    pub fn sysctls(&self, pairs: &[(&str, &str)]) -> Result<()> {
        self.try_run_in(|| {
            for (key, value) in pairs {
                let path = sysctl_path(key);
                std::fs::write(&path, value)
                    .map_err(|e| Error::io(format!("writing {path}={value}"), e))?;
            }
            Ok(())
        })?
    }

    /// Turns the host into a router: IPv4/IPv6 forwarding on, `rp_filter` off.
    pub(crate) fn make_router(&self) -> Result<()> {
        self.sysctls(ROUTER_SYSCTLS)
    }

    /// The MTU of interface `ifname` in this namespace.
    pub fn mtu(&self, ifname: &str) -> Result<u32> {
        let out = self.ip(["-j", "link", "show", "dev", ifname])?;
        let parsed: serde_json::Value = serde_json::from_str(&out).map_err(|e| Error::Parse {
            command: format!("ip -j link show dev {ifname}"),
            detail: e.to_string(),
        })?;
        parsed
            .get(0)
            .and_then(|link| link.get("mtu"))
            .and_then(serde_json::Value::as_u64)
            .map(|mtu| mtu as u32)
            .ok_or_else(|| Error::Parse {
                command: format!("ip -j link show dev {ifname}"),
                detail: "no mtu field".into(),
            })
    }
}

/// `/proc/sys/...` path of a dotted sysctl key.
fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Extracts the counter from `nft -j list counter` output.
fn parse_nft_counter(json: &str) -> Result<NftCounter, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let items = value
        .get("nftables")
        .and_then(serde_json::Value::as_array)
        .ok_or("no nftables array")?;
    let counter = items
        .iter()
        .find_map(|item| item.get("counter"))
        .ok_or("no counter object")?;
    serde_json::from_value(counter.clone()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_keys_map_to_proc_paths() {
        assert_eq!(
            sysctl_path("net.ipv6.conf.all.accept_dad"),
            "/proc/sys/net/ipv6/conf/all/accept_dad"
        );
    }

    #[test]
    fn nft_counter_json_is_parsed() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"counter": {"family": "inet", "name": "fwd", "table": "lab", "handle": 2,
            "packets": 17, "bytes": 1234}}]}"#;
        assert_eq!(
            parse_nft_counter(json),
            Ok(NftCounter {
                packets: 17,
                bytes: 1234
            })
        );
        assert!(parse_nft_counter(r#"{"nftables": []}"#).is_err());
    }
}
