//! The agent's identity: the control plane's key pair in the state directory, created on
//! first start, and the agent id derived from its fingerprint. `PROBE_FINGERPRINT` adopts an
//! existing identity: the agent refuses to start with any other one.

use std::path::{Path, PathBuf};

use probe_core::control::identity::IDENTITY_FILE;
use probe_core::control::{Identity, IdentityError};

/// Why the identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AgentIdentityError {
    /// Loading or creating it failed.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// `PROBE_FINGERPRINT` names an identity the state directory does not hold.
    #[error(
        "PROBE_FINGERPRINT is {wanted} but {path} holds {found}: mount the state volume of that agent, or unset PROBE_FINGERPRINT to keep this identity"
    )]
    Mismatch {
        /// The fingerprint asked for.
        wanted: String,
        /// The fingerprint found.
        found: String,
        /// The identity file.
        path: PathBuf,
    },
    /// `PROBE_FINGERPRINT` is set but there is no identity to adopt.
    #[error(
        "PROBE_FINGERPRINT is {wanted} but {path} does not exist: restore that file from the old agent's state volume (a new identity cannot take an old fingerprint), or unset PROBE_FINGERPRINT to start as a new agent"
    )]
    Missing {
        /// The fingerprint asked for.
        wanted: String,
        /// The identity file.
        path: PathBuf,
    },
}

/// `sha256:<64 hex>` in lower case, from that or the bare hex; `None` if it is neither.
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    let hex = t.strip_prefix("sha256:").unwrap_or(&t);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256:{hex}"))
}

/// The agent id of a fingerprint: its first 16 hex digits (stable as long as the key is).
pub fn agent_id(fingerprint: &str) -> String {
    let hex = fingerprint.strip_prefix("sha256:").unwrap_or(fingerprint);
    hex.chars().take(16).collect()
}

/// Loads the identity of `state_dir` (creating it on first start unless `adopt` is set) and
/// checks it is the one `adopt` names.
pub fn load(state_dir: &Path, adopt: Option<&str>) -> Result<Identity, AgentIdentityError> {
    let path = state_dir.join(IDENTITY_FILE);
    let Some(wanted) = adopt else {
        return Ok(Identity::load_or_create(state_dir)?);
    };
    let wanted = normalize_fingerprint(wanted).unwrap_or_else(|| wanted.to_owned());
    if !path.exists() {
        return Err(AgentIdentityError::Missing { wanted, path });
    }
    let identity = Identity::load_or_create(state_dir)?;
    let found = identity.fingerprint().to_string();
    if found != wanted {
        return Err(AgentIdentityError::Mismatch {
            wanted,
            found,
            path,
        });
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adopting_checks_the_fingerprint_and_never_creates() {
        let dir = std::env::temp_dir().join(format!("probe-agent-id-{}", std::process::id()));
        let fp = "sha256:".to_owned() + &"ab".repeat(32);
        let e = load(&dir, Some(&fp)).expect_err("nothing to adopt");
        assert!(matches!(e, AgentIdentityError::Missing { .. }), "{e}");
        assert!(!dir.join(IDENTITY_FILE).exists());
        let created = load(&dir, None).expect("create");
        let mine = created.fingerprint().to_string();
        let again = load(&dir, Some(&mine.to_uppercase().replace("SHA256:", ""))).expect("adopt");
        assert_eq!(again.fingerprint().to_string(), mine);
        let e = load(&dir, Some(&fp)).expect_err("another identity");
        assert!(e.to_string().contains(&mine), "{e}");
        assert_eq!(agent_id(&mine).len(), 16);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
