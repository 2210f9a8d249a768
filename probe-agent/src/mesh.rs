//! Mesh membership without lists: a target name resolving to many addresses (a Kubernetes
//! headless Service over a `DaemonSet`) makes every address but the agent's own a peer.
//!
//! Sans-IO: [`PeerSet::update`] takes each resolution's addresses and the agent's own
//! addresses and says which peers joined and which are gone (the caller forgets those, so no
//! stale series remain). With `mesh.max_peers = N` each agent tests a stable subset of N peers
//! chosen by rendezvous (highest-random-weight) hashing on its id and the peer's address: a
//! peer joining or leaving changes at most the one slot it takes or frees, not the others.
//!
//! Peers behind NAT, reachable only over the control connection they open toward us, join the
//! same set through another source than resolution; [`PeerSet::update`] is where both meet.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// A stable 64-bit weight of (`agent_id`, `peer`): FNV-1a over both, then a 64-bit finaliser
/// (so that close addresses get unrelated weights). Stable across runs, builds and hosts.
pub fn weight(agent_id: &str, peer: IpAddr) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    agent_id.bytes().for_each(&mut eat);
    eat(0);
    match peer {
        IpAddr::V4(a) => a.octets().into_iter().for_each(&mut eat),
        IpAddr::V6(a) => a.octets().into_iter().for_each(&mut eat),
    }
    // splitmix64's finaliser.
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The peers to test among `resolved`: all but `own`, or the `max_peers` with the highest
/// rendezvous weight for `agent_id`. Sorted by address.
pub fn select(
    resolved: &[IpAddr],
    own: &BTreeSet<IpAddr>,
    max_peers: Option<usize>,
    agent_id: &str,
) -> BTreeSet<IpAddr> {
    let mut peers: Vec<IpAddr> = resolved
        .iter()
        .copied()
        .filter(|a| !own.contains(a))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if let Some(n) = max_peers
        && peers.len() > n
    {
        peers.sort_by_key(|&p| std::cmp::Reverse((weight(agent_id, p), p)));
        peers.truncate(n);
    }
    peers.into_iter().collect()
}

/// What changed in a [`PeerSet`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// New peers.
    pub joined: Vec<IpAddr>,
    /// Peers gone (to forget).
    pub left: Vec<IpAddr>,
}

/// The current peers of one mesh target.
#[derive(Clone, Debug, Default)]
pub struct PeerSet {
    peers: BTreeSet<IpAddr>,
}

impl PeerSet {
    /// The current peers, sorted.
    pub fn peers(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.peers.iter().copied()
    }

    /// Takes a new resolution and returns what changed.
    pub fn update(
        &mut self,
        resolved: &[IpAddr],
        own: &BTreeSet<IpAddr>,
        max_peers: Option<usize>,
        agent_id: &str,
    ) -> Change {
        let next = select(resolved, own, max_peers, agent_id);
        let change = Change {
            joined: next.difference(&self.peers).copied().collect(),
            left: self.peers.difference(&next).copied().collect(),
        };
        self.peers = next;
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(range: std::ops::Range<u8>) -> Vec<IpAddr> {
        range.map(|i| IpAddr::from([10, 0, 0, i])).collect()
    }

    #[test]
    fn every_address_but_our_own_and_changes_reported() {
        let own: BTreeSet<IpAddr> = [IpAddr::from([10, 0, 0, 2])].into();
        let mut set = PeerSet::default();
        let c = set.update(&addrs(1..4), &own, None, "me");
        assert_eq!(c.joined, [addrs(1..2)[0], addrs(3..4)[0]]);
        assert!(c.left.is_empty());
        let c = set.update(&addrs(3..6), &own, None, "me");
        assert_eq!(c.joined, addrs(4..6));
        assert_eq!(c.left, addrs(1..2));
        assert_eq!(set.peers().collect::<Vec<_>>(), addrs(3..6));
    }

    #[test]
    fn max_peers_is_a_stable_subset_when_peers_join_and_leave() {
        let own = BTreeSet::new();
        let all = addrs(1..101);
        let chosen = select(&all, &own, Some(10), "agent-a");
        assert_eq!(chosen.len(), 10);
        // The same agent chooses the same peers whatever the resolver's order.
        let mut rev = all.clone();
        rev.reverse();
        assert_eq!(select(&rev, &own, Some(10), "agent-a"), chosen);
        // Another agent chooses differently (so the fleet spreads its probes).
        assert_ne!(select(&all, &own, Some(10), "agent-b"), chosen);
        // A peer not chosen leaving changes nothing.
        let unchosen = *all.iter().find(|a| !chosen.contains(a)).expect("one");
        let fewer: Vec<IpAddr> = all.iter().copied().filter(|a| *a != unchosen).collect();
        assert_eq!(select(&fewer, &own, Some(10), "agent-a"), chosen);
        // A chosen peer leaving is replaced by exactly one new peer; the nine others stay.
        let gone = *chosen.iter().next().expect("one");
        let fewer: Vec<IpAddr> = all.iter().copied().filter(|a| *a != gone).collect();
        let after = select(&fewer, &own, Some(10), "agent-a");
        assert_eq!(after.intersection(&chosen).count(), 9);
        // Peers joining displace at most as many as joined.
        let more: Vec<IpAddr> = all.iter().copied().chain(addrs(101..111)).collect();
        let after = select(&more, &own, Some(10), "agent-a");
        let displaced = chosen.difference(&after).count();
        assert!(displaced <= 10 && after.difference(&chosen).all(|a| !all.contains(a)));
        // Over many agents, each peer is chosen about max_peers/n of the time.
        let mut hits = std::collections::BTreeMap::<IpAddr, u32>::new();
        for i in 0..1000 {
            for p in select(&all, &own, Some(10), &format!("agent-{i}")) {
                *hits.entry(p).or_default() += 1;
            }
        }
        assert!(hits.values().all(|&h| (40..=180).contains(&h)), "{hits:?}");
    }
}
