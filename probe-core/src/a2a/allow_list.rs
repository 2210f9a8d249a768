//! The reflector's allow list: the source prefixes it answers at all (`probe serve --allow`).
//!
//! An empty list is open mode (RFC 8762: any well-formed STAMP packet is answered) and costs
//! one branch per datagram. Otherwise each prefix is kept as a network and a mask precomputed
//! per family, so a check is a few AND-and-compare operations over a short array, with no
//! allocation: the list is a fixed-size value (at most [`MAX_ALLOW_PREFIXES`] per family),
//! which keeps [`ReflectorConfig`](super::ReflectorConfig) `Copy`. IPv4-mapped IPv6 sources
//! and prefixes (`::ffff:a.b.c.d`) are treated as the IPv4 they stand for.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Most prefixes of each family an allow list holds.
pub const MAX_ALLOW_PREFIXES: usize = 32;

/// An allow list holds more prefixes of one family than [`MAX_ALLOW_PREFIXES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given} IPv{family} prefixes in the allow list, at most {MAX_ALLOW_PREFIXES}: \
     aggregate them into shorter prefixes, or filter with a firewall"
)]
pub struct AllowListError {
    /// 4 or 6.
    pub family: u8,
    /// How many prefixes of that family were given.
    pub given: usize,
}

/// Source prefixes answered; empty = everyone (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllowList {
    /// (network, mask) of the IPv4 prefixes; the first `n4` are in use.
    v4: [(u32, u32); MAX_ALLOW_PREFIXES],
    /// (network, mask) of the IPv6 prefixes; the first `n6` are in use.
    v6: [(u128, u128); MAX_ALLOW_PREFIXES],
    n4: u8,
    n6: u8,
}

impl Default for AllowList {
    fn default() -> Self {
        Self::OPEN
    }
}

impl AllowList {
    /// The empty list: every source is answered.
    pub const OPEN: AllowList = AllowList {
        v4: [(0, 0); MAX_ALLOW_PREFIXES],
        v6: [(0, 0); MAX_ALLOW_PREFIXES],
        n4: 0,
        n6: 0,
    };

    /// A list answering sources within any of `prefixes` (host bits of a prefix are ignored).
    pub fn new(prefixes: &[IpNet]) -> Result<Self, AllowListError> {
        let mut list = Self::OPEN;
        for net in prefixes {
            match canonical(*net) {
                IpNet::V4(n) => {
                    let i = usize::from(list.n4);
                    let slot = list.v4.get_mut(i).ok_or_else(|| too_many(4, prefixes))?;
                    let mask = u32::from(n.netmask());
                    *slot = (u32::from(n.addr()) & mask, mask);
                    list.n4 += 1;
                }
                IpNet::V6(n) => {
                    let i = usize::from(list.n6);
                    let slot = list.v6.get_mut(i).ok_or_else(|| too_many(6, prefixes))?;
                    let mask = u128::from(n.netmask());
                    *slot = (u128::from(n.addr()) & mask, mask);
                    list.n6 += 1;
                }
            }
        }
        Ok(list)
    }

    /// Whether the list is empty (open mode: everyone is answered).
    pub fn is_open(&self) -> bool {
        self.n4 == 0 && self.n6 == 0
    }

    /// Whether `ip` is answered.
    #[inline]
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.is_open() {
            return true;
        }
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4[..usize::from(self.n4)]
                    .iter()
                    .any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6[..usize::from(self.n6)]
                    .iter()
                    .any(|&(net, mask)| a & mask == net)
            }
        }
    }

    /// The prefixes, IPv4 first (networks with host bits cleared).
    pub fn prefixes(&self) -> Vec<IpNet> {
        let v4 = self.v4[..usize::from(self.n4)]
            .iter()
            .map(|&(net, mask)| Ipv4Net::with_netmask(net.into(), mask.into()).map(IpNet::V4));
        let v6 = self.v6[..usize::from(self.n6)]
            .iter()
            .map(|&(net, mask)| Ipv6Net::with_netmask(net.into(), mask.into()).map(IpNet::V6));
        v4.chain(v6).filter_map(Result::ok).collect()
    }
}

fn too_many(family: u8, prefixes: &[IpNet]) -> AllowListError {
    let given = prefixes
        .iter()
        .filter(|n| matches!(canonical(**n), IpNet::V4(_)) == (family == 4))
        .count();
    AllowListError { family, given }
}

/// An IPv4-mapped IPv6 prefix of length 96 or more as the IPv4 prefix it stands for.
fn canonical(net: IpNet) -> IpNet {
    if let IpNet::V6(n) = net
        && n.prefix_len() >= 96
        && let Some(v4) = n.addr().to_ipv4_mapped()
        && let Ok(v4net) = Ipv4Net::new(v4, n.prefix_len() - 96)
    {
        return IpNet::V4(v4net);
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &[&str]) -> AllowList {
        let nets: Vec<IpNet> = s.iter().map(|p| p.parse().expect("prefix")).collect();
        AllowList::new(&nets).expect("list")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn empty_list_is_open() {
        let l = AllowList::default();
        assert!(l.is_open());
        assert!(l.allows(ip("192.0.2.1")));
        assert!(l.allows(ip("2001:db8::1")));
    }

    #[test]
    fn ipv4_prefixes() {
        let l = list(&["192.0.2.0/24", "198.51.100.7/32", "10.1.2.3/8"]);
        assert!(!l.is_open());
        for (a, want) in [
            ("192.0.2.0", true),
            ("192.0.2.255", true),
            ("192.0.3.0", false),
            ("198.51.100.7", true),
            ("198.51.100.8", false),
            ("10.255.0.1", true), // host bits of 10.1.2.3/8 ignored
            ("11.0.0.1", false),
            ("::ffff:192.0.2.9", true), // IPv4-mapped source
            ("2001:db8::1", false),     // no IPv6 prefix: no IPv6 source
        ] {
            assert_eq!(l.allows(ip(a)), want, "{a}");
        }
    }

    #[test]
    fn ipv6_prefixes_and_mapped_ones() {
        let l = list(&["2001:db8:1::/48", "fd00::1/128", "::ffff:203.0.113.0/120"]);
        for (a, want) in [
            ("2001:db8:1:ffff::1", true),
            ("2001:db8:2::1", false),
            ("fd00::1", true),
            ("fd00::2", false),
            ("203.0.113.77", true), // the mapped prefix is the IPv4 /24
            ("203.0.114.1", false),
            ("192.0.2.1", false),
        ] {
            assert_eq!(l.allows(ip(a)), want, "{a}");
        }
        assert_eq!(
            l.prefixes(),
            ["203.0.113.0/24", "2001:db8:1::/48", "fd00::1/128"]
                .map(|p| p.parse::<IpNet>().expect("prefix"))
        );
    }

    #[test]
    fn zero_length_prefix_allows_the_whole_family() {
        let l = list(&["0.0.0.0/0"]);
        assert!(l.allows(ip("203.0.113.1")));
        assert!(!l.allows(ip("2001:db8::1")));
    }

    #[test]
    fn too_many_prefixes_is_an_error_naming_the_limit() {
        let nets: Vec<IpNet> = (0..=MAX_ALLOW_PREFIXES)
            .map(|i| format!("10.0.{i}.0/24").parse().expect("prefix"))
            .collect();
        let e = AllowList::new(&nets).expect_err("too many");
        assert_eq!(
            e,
            AllowListError {
                family: 4,
                given: MAX_ALLOW_PREFIXES + 1
            }
        );
        assert!(e.to_string().contains("at most 32"), "{e}");
        assert!(AllowList::new(&nets[..MAX_ALLOW_PREFIXES]).is_ok());
    }
}
