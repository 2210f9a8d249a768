//! The keys a reflector authenticates STAMP senders with (RFC 8762 authenticated mode).
//!
//! A [`StampKeyring`] is shared: clones see the same keys, so the control plane can register
//! the key of a session it negotiated while the responder's socket threads are answering.
//! It holds
//!
//! - a **default key** (`probe serve --stamp-key-file`): every sender must then be
//!   authenticated with it, unless a session key of its own is registered;
//! - **session keys**, registered per sender address and SSID ([`StampKeyring::register`]);
//!   the port is not part of the key because a NAT between the ends may change it. A session
//!   key also covers the sender's hello SSID (`ssid ^ 0x8000`, see
//!   [`HELLO_SSID_FLIP`](super::HELLO_SSID_FLIP)), so one registration serves a probe test
//!   with its hellos;
//! - **require-auth**: when set, senders without any key are refused too.
//!
//! A sender with a key (its own or the default) is answered only in authenticated mode, and
//! only when its packet's HMAC is right. An empty keyring costs the reflector one atomic load
//! per datagram.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::HELLO_SSID_FLIP;
use crate::wire::stamp_hmac::StampKey;

#[derive(Debug, Default)]
struct Keys {
    default: Option<StampKey>,
    sessions: HashMap<(IpAddr, u16), StampKey>,
    require: bool,
}

#[derive(Debug, Default)]
struct Inner {
    /// Whether any key is held or auth is required (read without the lock).
    armed: AtomicBool,
    keys: RwLock<Keys>,
}

/// The shared keys of a reflector (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct StampKeyring {
    inner: Arc<Inner>,
}

impl StampKeyring {
    /// An empty keyring: every sender is answered unauthenticated, as without one.
    pub fn new() -> Self {
        Self::default()
    }

    /// A keyring whose default key is `key`: every sender must authenticate with it.
    pub fn with_default(key: StampKey) -> Self {
        let k = Self::new();
        k.set_default(Some(key));
        k
    }

    fn update(&self, f: impl FnOnce(&mut Keys)) {
        let mut keys = self
            .inner
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut keys);
        let armed = keys.default.is_some() || keys.require || !keys.sessions.is_empty();
        self.inner.armed.store(armed, Ordering::Release);
    }

    /// Sets or clears the default key.
    pub fn set_default(&self, key: Option<StampKey>) {
        self.update(|k| k.default = key);
    }

    /// Refuses (`true`) or answers (`false`, the default) senders that hold no key.
    pub fn set_require_auth(&self, require: bool) {
        self.update(|k| k.require = require);
    }

    /// Registers the key of a session: packets from `sender` (any port) with SSID `ssid` (or
    /// its hello SSID) must be authenticated with `key`. Replaces an earlier key.
    pub fn register(&self, sender: IpAddr, ssid: u16, key: StampKey) {
        self.update(|k| {
            k.sessions.insert((sender.to_canonical(), ssid), key);
        });
    }

    /// Forgets a session's key; `false` when none was registered.
    pub fn unregister(&self, sender: IpAddr, ssid: u16) -> bool {
        let mut found = false;
        self.update(|k| found = k.sessions.remove(&(sender.to_canonical(), ssid)).is_some());
        found
    }

    /// Session keys registered.
    pub fn sessions(&self) -> usize {
        self.read(|k| k.sessions.len())
    }

    fn read<R>(&self, f: impl FnOnce(&Keys) -> R) -> R {
        f(&self
            .inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether the keyring changes anything (a key is held or auth is required).
    pub fn is_armed(&self) -> bool {
        self.inner.armed.load(Ordering::Acquire)
    }

    /// The key packets from `sender` with SSID `ssid` must carry: the session's own (or that
    /// of the session whose hello SSID `ssid` is), else the default.
    pub fn key_for(&self, sender: IpAddr, ssid: u16) -> Option<StampKey> {
        let ip = sender.to_canonical();
        self.read(|k| {
            k.sessions
                .get(&(ip, ssid))
                .or_else(|| k.sessions.get(&(ip, ssid ^ HELLO_SSID_FLIP)))
                .or(k.default.as_ref())
                .cloned()
        })
    }

    /// Whether unauthenticated packets from `sender` with SSID `ssid` are refused.
    pub fn requires_auth(&self, sender: IpAddr, ssid: u16) -> bool {
        self.read(|k| k.require) || self.key_for(sender, ssid).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> StampKey {
        StampKey::new(&[b; 16]).expect("16 octets")
    }

    #[test]
    fn session_keys_default_and_require() {
        let ring = StampKeyring::new();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert!(!ring.is_armed());
        assert_eq!(ring.key_for(a, 7), None);
        assert!(!ring.requires_auth(a, 7));

        let shared = ring.clone();
        shared.register(mapped, 7, key(1));
        assert!(ring.is_armed());
        assert_eq!(ring.key_for(a, 7), Some(key(1)));
        assert_eq!(ring.key_for(a, 7 ^ HELLO_SSID_FLIP), Some(key(1)));
        assert_eq!(ring.key_for(a, 8), None);
        assert!(!ring.requires_auth(a, 8));

        ring.set_default(Some(key(2)));
        assert_eq!(ring.key_for(a, 8), Some(key(2)));
        assert_eq!(ring.key_for(a, 7), Some(key(1)));
        assert!(ring.unregister(a, 7));
        assert!(!ring.unregister(a, 7));
        assert_eq!(ring.key_for(a, 7), Some(key(2)));
        ring.set_default(None);
        assert!(!ring.is_armed());
        ring.set_require_auth(true);
        assert!(ring.is_armed());
        assert!(ring.requires_auth(a, 8));
        assert_eq!(ring.sessions(), 0);
    }
}
