//! Mesh members behind NAT: an agent that cannot be reached keeps an outbound control
//! connection to each peer and joins the peer's mesh over it ([`MeshJoin`]); the peer then
//! runs its tests toward the member through that connection ([`MeshInvite`]): the member
//! opens a reflector, punches the peer's sender port from it (the NAT mapping), and the peer
//! sends its STAMP test to the address the punch came from.
//!
//! Sans-IO: the messages, and the [`MemberTable`] of members joined over live connections
//! (each entry expires unless its member joins again in time, and ends with its connection).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Member → peer, over the member's own control connection (after the hello): join the
/// peer's mesh, or refresh the membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshJoin {
    /// The member's agent id (stable across restarts with the same state directory).
    pub id: String,
    /// The member's agent name: the peer label its peers' results carry.
    pub name: String,
    /// The member's tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The targets of the member's a2a tests that name this peer (the mesh names): the peer
    /// runs its tests of the same targets toward the member.
    #[serde(default)]
    pub targets: Vec<String>,
    /// The member's own addresses (behind its NAT): a mesh name resolving to one of them
    /// still names this member, which its peers measure over the connection instead.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

/// Peer → member: the membership holds this long unless the member joins again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshJoined {
    /// Time left, ms.
    pub expires_in_ms: u64,
}

/// Peer → member, on a stream the peer opens on the member's connection: run the reflector
/// of one test and punch `sender_port` from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshInvite {
    /// The test's id, carried by the punch ([`super::negotiation::punch`]).
    pub session: u64,
    /// The peer's Session-Sender port (on the address the member's connection reaches).
    pub sender_port: u16,
    /// How long the member keeps its reflector, ms (the test, its final wait and slack).
    pub keep_ms: u64,
}

/// Member → peer: the reflector runs and the punch was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshReady {
    /// The test's id.
    pub session: u64,
}

/// Longest reflector lifetime a member grants an invite, whatever it asks.
pub const MAX_KEEP: Duration = Duration::from_secs(600);

/// A member as its peers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// What the member said about itself.
    pub join: MeshJoin,
    /// Where its connection comes from (its NAT's public address and port).
    pub remote: SocketAddr,
}

impl Member {
    /// Whether the member measures one of `targets` (so tests of those targets measure it).
    pub fn shares_target<'a>(&self, mut targets: impl Iterator<Item = &'a str>) -> bool {
        targets.any(|t| self.join.targets.iter().any(|m| m == t))
    }
}

struct Entry<H> {
    member: Member,
    handle: H,
    owner: u64,
    expires: Instant,
}

/// The members joined over live connections, by agent id. `H` is what reaches the member
/// (the connection, in the runtime).
pub struct MemberTable<H> {
    ttl: Duration,
    entries: BTreeMap<String, Entry<H>>,
}

impl<H: Clone> MemberTable<H> {
    /// An empty table whose memberships last `ttl` after each join.
    pub fn new(ttl: Duration) -> Self {
        MemberTable {
            ttl,
            entries: BTreeMap::new(),
        }
    }

    /// How long a membership lasts after a join.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Adds or refreshes the member that joined over connection `owner`; a member that
    /// reconnected replaces its entry of the old connection. Returns whether it is new.
    pub fn join(&mut self, owner: u64, member: Member, handle: H, now: Instant) -> bool {
        let id = member.join.id.clone();
        let entry = Entry {
            member,
            handle,
            owner,
            expires: now + self.ttl,
        };
        self.entries.insert(id, entry).is_none()
    }

    /// Removes the members of connection `owner` (it closed); returns their names.
    pub fn release_owner(&mut self, owner: u64) -> Vec<String> {
        let mut gone = Vec::new();
        self.entries.retain(|_, e| {
            let keep = e.owner != owner;
            if !keep {
                gone.push(e.member.join.name.clone());
            }
            keep
        });
        gone
    }

    /// Removes the members that did not join again in time; returns their names.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut gone = Vec::new();
        self.entries.retain(|_, e| {
            let keep = e.expires > now;
            if !keep {
                gone.push(e.member.join.name.clone());
            }
            keep
        });
        gone
    }

    /// The members now, by agent id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.entries.values().map(|e| &e.member)
    }

    /// The member with agent id `id` and what reaches it.
    pub fn get(&self, id: &str) -> Option<(&Member, H)> {
        self.entries.get(id).map(|e| (&e.member, e.handle.clone()))
    }

    /// Members held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no member is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, targets: &[&str]) -> Member {
        Member {
            join: MeshJoin {
                id: id.into(),
                name: format!("name-{id}"),
                tags: vec!["edge".into()],
                targets: targets.iter().map(|t| (*t).to_owned()).collect(),
                addresses: vec![IpAddr::from([172, 17, 0, 2])],
            },
            remote: "192.0.2.1:40000".parse().expect("addr"),
        }
    }

    #[test]
    fn joins_refresh_and_expire() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(30);
        let mut table = MemberTable::new(ttl);
        assert!(table.join(1, member("a", &["mesh"]), 'a', t0));
        assert!(table.join(2, member("b", &["mesh"]), 'b', t0));
        // A join again refreshes the membership; it is not new.
        assert!(!table.join(1, member("a", &["mesh"]), 'a', t0 + Duration::from_secs(20)));
        assert!(table.expire(t0 + Duration::from_millis(29_999)).is_empty());
        let gone = table.expire(t0 + ttl);
        assert_eq!(gone, ["name-b"]);
        assert_eq!(table.len(), 1);
        assert_eq!(table.get("a").map(|(_, h)| h), Some('a'));
        assert!(table.get("b").is_none());
        assert_eq!(table.expire(t0 + Duration::from_secs(50)), ["name-a"]);
        assert!(table.is_empty());
    }

    #[test]
    fn a_closed_connection_takes_its_members_but_not_a_reconnected_one() {
        let t0 = Instant::now();
        let mut table = MemberTable::new(Duration::from_secs(30));
        table.join(1, member("a", &["mesh"]), 1, t0);
        table.join(1, member("b", &["mesh"]), 1, t0);
        // `a` reconnected (connection 2) before connection 1 was seen closing.
        assert!(!table.join(2, member("a", &["mesh"]), 2, t0));
        let mut gone = table.release_owner(1);
        gone.sort();
        assert_eq!(gone, ["name-b"]);
        assert_eq!(table.get("a").map(|(_, h)| h), Some(2));
        assert_eq!(table.release_owner(2), ["name-a"]);
        assert!(table.is_empty());
    }

    #[test]
    fn members_are_measured_by_the_tests_of_their_targets() {
        let m = member("a", &["mesh.example", "10.0.0.9"]);
        assert!(m.shares_target(["other", "mesh.example"].into_iter()));
        assert!(!m.shares_target(["mesh.example.net"].into_iter()));
        let json = r#"{"id":"a","name":"edge-1"}"#;
        let j: MeshJoin = serde_json::from_str(json).expect("defaults");
        assert!(j.tags.is_empty() && j.targets.is_empty() && j.addresses.is_empty());
    }
}
