//! Pinning a responder's identity: an explicit fingerprint, or trust on first use recorded
//! in the client's known-peers file.
//!
//! The known-peers file ([`KNOWN_PEERS_FILE`] in the client's state directory) has one line
//! per peer, `HOST:PORT sha256:HEX`, as the peer was named on the command line; `#` starts a
//! comment. An operator edits it by hand to accept a peer's new identity (delete the line).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use super::identity::{Fingerprint, create_dir_private, write_atomic};

/// Name of the known-peers file inside the state directory.
pub const KNOWN_PEERS_FILE: &str = "known-peers";

/// How a client decides to trust a responder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinPolicy {
    /// Only this fingerprint (`--peer-fingerprint`).
    Fingerprint(Fingerprint),
    /// The fingerprint recorded for `key` in the known-peers file `file`; on first contact
    /// the presented one is recorded (trust on first use).
    KnownPeers {
        /// The known-peers file.
        file: PathBuf,
        /// The peer as named, `HOST:PORT`.
        key: String,
    },
}

/// A pinning failure.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The peer presented another identity than the pinned one.
    #[error(
        "the control identity of {peer} is not the pinned one: expected {expected}, presented \
         {presented}. \
         If the peer was reinstalled without its state directory this is expected: {fix}. \
         Otherwise someone may be intercepting the connection"
    )]
    Mismatch {
        /// The peer.
        peer: String,
        /// The pinned fingerprint.
        expected: Fingerprint,
        /// The fingerprint presented.
        presented: Fingerprint,
        /// How to accept the new identity.
        fix: String,
    },
    /// The known-peers file cannot be read or written, or has a bad line.
    #[error("known-peers file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong, and the fix.
        reason: String,
    },
}

impl PinError {
    /// The mismatch error for `policy`, naming the fix that applies to it.
    pub fn mismatch(
        policy: &PinPolicy,
        peer: &str,
        expected: Fingerprint,
        presented: Fingerprint,
    ) -> Self {
        let fix = match policy {
            PinPolicy::Fingerprint(_) => {
                format!("pass --peer-fingerprint {presented} once you trust it")
            }
            PinPolicy::KnownPeers { file, key } => format!(
                "remove the line for {key} from {} (or pass --peer-fingerprint {presented}) once \
                 you trust it",
                file.display()
            ),
        };
        PinError::Mismatch {
            peer: peer.into(),
            expected,
            presented,
            fix,
        }
    }
}

/// The known-peers file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownPeers {
    entries: BTreeMap<String, Fingerprint>,
}

impl KnownPeers {
    /// Parses the file's text; a bad line is an error naming its number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(key), Some(fp), None) = (words.next(), words.next(), words.next()) else {
                return Err(format!(
                    "line {}: expected `HOST:PORT sha256:HEX`, got {line:?}; fix or delete the line",
                    i + 1
                ));
            };
            let fp = fp
                .parse::<Fingerprint>()
                .map_err(|e| format!("line {}: {e}; fix or delete the line", i + 1))?;
            entries.insert(key.to_string(), fp);
        }
        Ok(KnownPeers { entries })
    }

    /// Reads `path`; a missing file is an empty list.
    pub fn load(path: &Path) -> Result<Self, PinError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|reason| PinError::File {
                path: path.into(),
                reason,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(PinError::File {
                path: path.into(),
                reason: format!("cannot read it: {e}"),
            }),
        }
    }

    /// The fingerprint recorded for `key`.
    pub fn get(&self, key: &str) -> Option<Fingerprint> {
        self.entries.get(key).copied()
    }

    /// Records `fp` for `key` (replacing any previous one).
    pub fn insert(&mut self, key: &str, fp: Fingerprint) {
        self.entries.insert(key.to_string(), fp);
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = String::from(
            "# probe known peers: HOST:PORT sha256:FINGERPRINT (trust on first use).\n\
             # Delete a line to accept that peer's new identity on next contact.\n",
        );
        for (k, fp) in &self.entries {
            let _ = writeln!(out, "{k} {fp}");
        }
        out
    }

    /// Records `fp` for `key` in the file at `path`, atomically (re-reading it first, so
    /// entries written meanwhile are kept).
    pub fn record(path: &Path, key: &str, fp: Fingerprint) -> Result<(), PinError> {
        let mut peers = Self::load(path)?;
        peers.insert(key, fp);
        if let Some(dir) = path.parent() {
            create_dir_private(dir).map_err(|e| PinError::File {
                path: path.into(),
                reason: e.to_string(),
            })?;
        }
        write_atomic(path, peers.to_text().as_bytes()).map_err(|e| PinError::File {
            path: path.into(),
            reason: format!("cannot write it: {e}"),
        })
    }
}

/// The decision on a presented fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinCheck {
    /// It matches the pin.
    Trusted,
    /// No pin yet: trusted on first use, to be recorded once the connection is up.
    FirstUse,
    /// It differs from the pin.
    Mismatch {
        /// The pinned fingerprint.
        expected: Fingerprint,
    },
}

/// Checks `presented` against `pinned` (`None`: nothing pinned yet).
pub fn check(pinned: Option<Fingerprint>, presented: Fingerprint) -> PinCheck {
    match pinned {
        None => PinCheck::FirstUse,
        Some(p) if p == presented => PinCheck::Trusted,
        Some(expected) => PinCheck::Mismatch { expected },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_write_round_trip() {
        let text = "# c\n\nhost:49152 sha256:".to_string()
            + &"ab".repeat(32)
            + "  # trailing\n[2001:db8::1]:49152 sha256:"
            + &"01".repeat(32)
            + "\n";
        let peers = KnownPeers::parse(&text).expect("parse");
        assert_eq!(peers.get("host:49152"), Some(Fingerprint([0xab; 32])));
        assert_eq!(peers.get("[2001:db8::1]:49152"), Some(Fingerprint([1; 32])));
        assert_eq!(peers.get("other:1"), None);
        assert_eq!(KnownPeers::parse(&peers.to_text()), Ok(peers));
        let e = KnownPeers::parse("a b c\n").expect_err("bad");
        assert!(e.contains("line 1"), "{e}");
        let e = KnownPeers::parse("\nhost:1 md5:00\n").expect_err("bad fp");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn check_decisions() {
        let a = Fingerprint([1; 32]);
        let b = Fingerprint([2; 32]);
        assert_eq!(check(None, a), PinCheck::FirstUse);
        assert_eq!(check(Some(a), a), PinCheck::Trusted);
        assert_eq!(check(Some(a), b), PinCheck::Mismatch { expected: a });
    }

    #[test]
    fn mismatch_names_both_fingerprints_and_the_file() {
        let policy = PinPolicy::KnownPeers {
            file: PathBuf::from("/state/known-peers"),
            key: "h:49152".into(),
        };
        let e = PinError::mismatch(
            &policy,
            "h:49152",
            Fingerprint([1; 32]),
            Fingerprint([2; 32]),
        )
        .to_string();
        assert!(e.contains(&Fingerprint([1; 32]).to_string()), "{e}");
        assert!(e.contains(&Fingerprint([2; 32]).to_string()), "{e}");
        assert!(e.contains("/state/known-peers"), "{e}");
    }

    #[test]
    fn record_keeps_other_entries() {
        let dir = std::env::temp_dir().join(format!("probe-pin-{}", rand::random::<u64>()));
        let path = dir.join(KNOWN_PEERS_FILE);
        KnownPeers::record(&path, "a:1", Fingerprint([1; 32])).expect("record a");
        KnownPeers::record(&path, "b:2", Fingerprint([2; 32])).expect("record b");
        let peers = KnownPeers::load(&path).expect("load");
        assert_eq!(peers.get("a:1"), Some(Fingerprint([1; 32])));
        assert_eq!(peers.get("b:2"), Some(Fingerprint([2; 32])));
        let _ = fs::remove_dir_all(&dir);
    }
}
