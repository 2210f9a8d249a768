//! What this process may open: raw sockets (`CAP_NET_RAW`) or ICMP datagram sockets
//! (`net.ipv4.ping_group_range`).
//!
//! The facts come from `/proc/self/status` (effective capabilities, effective and
//! supplementary groups) and `/proc/sys/net/ipv4/ping_group_range` (which also governs `ICMPv6`
//! datagram sockets). [`detect_icmp_mode`] then confirms the choice by opening a socket —
//! which sends nothing — since a seccomp filter or LSM can still refuse what the capability
//! bits allow.

use std::fmt::Write as _;

use crate::io::error::IoError;
use crate::io::raw::icmp_socket;
use crate::io::socket::SocketOptions;

const STATUS_PATH: &str = "/proc/self/status";
const PING_RANGE_PATH: &str = "/proc/sys/net/ipv4/ping_group_range";
/// Bit of `CAP_NET_ADMIN` in the capability sets (needed for `SO_RCVBUFFORCE`).
const CAP_NET_ADMIN: u32 = 12;
/// Bit of `CAP_NET_RAW` in the capability sets.
const CAP_NET_RAW: u32 = 13;

/// How probe sends ICMP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrivilegeMode {
    /// Raw sockets (`CAP_NET_RAW`): any ICMP, crafted packets, every reply visible.
    Raw,
    /// ICMP datagram ("ping") sockets: echo requests only, no capability needed.
    Datagram,
}

/// The privilege-related facts of this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Privileges {
    /// Effective user id.
    pub euid: u32,
    /// Effective group id followed by the supplementary groups.
    pub groups: Vec<u32>,
    /// `CAP_NET_RAW` is in the effective set.
    pub cap_net_raw: bool,
    /// `CAP_NET_ADMIN` is in the effective set (lets `SO_RCVBUFFORCE` pass `rmem_max`).
    pub cap_net_admin: bool,
    /// `net.ipv4.ping_group_range` as (low, high); `None` if it could not be read.
    pub ping_group_range: Option<(u32, u32)>,
}

/// The value after `key:` on a line of `/proc/self/status`.
fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then_some(v.trim())
    })
}

fn numbers(field: &str) -> Option<Vec<u32>> {
    field.split_whitespace().map(|n| n.parse().ok()).collect()
}

fn bad(path: &'static str, content: &str) -> IoError {
    IoError::ParseSystemFile {
        path,
        content: content.chars().take(200).collect(),
    }
}

/// Parses `ping_group_range`: two group ids separated by white space.
fn parse_ping_range(text: &str) -> Option<(u32, u32)> {
    match numbers(text)?.as_slice() {
        [low, high] => Some((*low, *high)),
        _ => None,
    }
}

impl Privileges {
    /// Reads the facts for this process.
    pub fn detect() -> Result<Self, IoError> {
        let status =
            std::fs::read_to_string(STATUS_PATH).map_err(|source| IoError::ReadSystemFile {
                path: STATUS_PATH,
                source,
            })?;
        let range = std::fs::read_to_string(PING_RANGE_PATH).ok();
        Self::parse(&status, range.as_deref())
    }

    /// Builds the facts from the text of `/proc/self/status` and of `ping_group_range`.
    fn parse(status: &str, ping_range: Option<&str>) -> Result<Self, IoError> {
        let field = |key| status_field(status, key).ok_or_else(|| bad(STATUS_PATH, status));
        let uids = numbers(field("Uid")?).ok_or_else(|| bad(STATUS_PATH, status))?;
        let gids = numbers(field("Gid")?).ok_or_else(|| bad(STATUS_PATH, status))?;
        let supplementary = numbers(field("Groups")?).ok_or_else(|| bad(STATUS_PATH, status))?;
        let cap_eff =
            u64::from_str_radix(field("CapEff")?, 16).map_err(|_| bad(STATUS_PATH, status))?;
        // Uid/Gid lines are: real, effective, saved, filesystem.
        let (Some(&euid), Some(&egid)) = (uids.get(1), gids.get(1)) else {
            return Err(bad(STATUS_PATH, status));
        };
        let mut groups = vec![egid];
        groups.extend(supplementary.into_iter().filter(|g| *g != egid));
        Ok(Privileges {
            euid,
            groups,
            cap_net_raw: cap_eff & (1 << CAP_NET_RAW) != 0,
            cap_net_admin: cap_eff & (1 << CAP_NET_ADMIN) != 0,
            ping_group_range: ping_range.and_then(parse_ping_range),
        })
    }

    /// Whether `ping_group_range` covers one of our groups, as the kernel checks when an
    /// ICMP datagram socket is opened. The default range "1 0" covers nobody.
    pub fn ping_allowed(&self) -> bool {
        self.ping_group_range
            .is_some_and(|(low, high)| self.groups.iter().any(|g| (low..=high).contains(g)))
    }

    /// The ICMP mode these facts allow: raw with `CAP_NET_RAW`, else datagram when the
    /// ping range allows, else an error naming both fixes.
    pub fn icmp_mode(&self) -> Result<PrivilegeMode, IoError> {
        if self.cap_net_raw {
            Ok(PrivilegeMode::Raw)
        } else if self.ping_allowed() {
            Ok(PrivilegeMode::Datagram)
        } else {
            Err(IoError::NoIcmpPrivilege {
                groups: self.groups_text(),
                range: self.range_text(),
            })
        }
    }

    /// The error for a refused ICMP datagram socket.
    pub(crate) fn ping_group_error(&self) -> IoError {
        IoError::PingGroupRange {
            groups: self.groups_text(),
            range: self.range_text(),
        }
    }

    fn groups_text(&self) -> String {
        let mut s = String::new();
        for (i, g) in self.groups.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(s, "{sep}{g}");
        }
        s
    }

    fn range_text(&self) -> String {
        match self.ping_group_range {
            Some((low, high)) => format!("{low} {high}"),
            None => "unreadable".to_owned(),
        }
    }
}

/// Picks how to send ICMP (IPv6 if `v6`) and confirms it by opening a socket of that kind:
/// raw if possible, else a datagram socket, else an error naming the missing capability,
/// the sysctl, and their fixes.
pub fn detect_icmp_mode(v6: bool) -> Result<PrivilegeMode, IoError> {
    let privileges = Privileges::detect()?;
    let opts = SocketOptions::default();
    for mode in [PrivilegeMode::Raw, PrivilegeMode::Datagram] {
        match icmp_socket(v6, mode, &opts, None) {
            Ok(_) => return Ok(mode),
            Err(e) => tracing::debug!("ICMP {mode:?} socket unavailable: {e}"),
        }
    }
    Err(IoError::NoIcmpPrivilege {
        groups: privileges.groups_text(),
        range: privileges.range_text(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tprobe\nUmask:\t0022\nState:\tR (running)\n\
        Uid:\t1000\t1001\t1000\t1000\nGid:\t100\t200\t100\t100\nGroups:\t27 200 999 \n\
        CapInh:\t0000000000000000\nCapPrm:\t0000000000002000\nCapEff:\t0000000000002000\n";

    #[test]
    fn parses_ids_groups_and_capabilities() {
        let p = Privileges::parse(STATUS, Some("1\t0\n")).expect("valid status");
        assert_eq!(p.euid, 1001);
        assert_eq!(p.groups, vec![200, 27, 999]);
        assert!(p.cap_net_raw);
        assert!(!p.cap_net_admin);
        assert_eq!(p.ping_group_range, Some((1, 0)));
        assert!(!p.ping_allowed());
        assert_eq!(p.icmp_mode().expect("raw"), PrivilegeMode::Raw);
    }

    #[test]
    fn ping_range_decides_without_capability() {
        let no_caps = STATUS.replace("0000000000002000", "0000000000000000");
        let p = Privileges::parse(&no_caps, Some("0 2147483647")).expect("valid status");
        assert!(!p.cap_net_raw);
        assert_eq!(p.icmp_mode().expect("datagram"), PrivilegeMode::Datagram);
        // Only a supplementary group falls in the range.
        let p = Privileges::parse(&no_caps, Some("999 999")).expect("valid status");
        assert!(p.ping_allowed());

        let p = Privileges::parse(&no_caps, Some("1 0")).expect("valid status");
        let err = p.icmp_mode().expect_err("nothing allowed");
        let text = err.to_string();
        assert!(text.contains("setcap cap_net_raw+ep"), "{text}");
        assert!(text.contains("--cap-add NET_RAW"), "{text}");
        assert!(text.contains("ping_group_range=\"0 2147483647\""), "{text}");
        assert!(text.contains("\"1 0\""), "{text}");
        assert!(text.contains("200,27,999"), "{text}");

        let p = Privileges::parse(&no_caps, None).expect("valid status");
        assert!(
            p.icmp_mode()
                .expect_err("unreadable")
                .to_string()
                .contains("unreadable")
        );
    }

    #[test]
    fn malformed_status_is_an_error() {
        assert!(Privileges::parse("Uid:\tx\n", None).is_err());
        assert!(Privileges::parse("Name:\tprobe\n", None).is_err());
        assert_eq!(parse_ping_range("5"), None);
        assert_eq!(parse_ping_range("0 10"), Some((0, 10)));
    }

    #[test]
    fn this_process_matches_what_the_kernel_allows() {
        let p = Privileges::detect().expect("read /proc");
        let mode = detect_icmp_mode(false);
        match (p.cap_net_raw, p.ping_allowed()) {
            (true, _) => assert_eq!(mode.expect("raw"), PrivilegeMode::Raw),
            (false, true) => assert_eq!(mode.expect("datagram"), PrivilegeMode::Datagram),
            (false, false) => assert!(mode.is_err()),
        }
    }
}
