//! Control-plane settings shared by `probe serve` and the control clients.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use probe_core::control::pin::KNOWN_PEERS_FILE;
use probe_core::control::{ClientConfig, Fingerprint, PinPolicy, Token, default_state_dir};

use crate::cli::ControlAccessArgs;

/// The state directory: `--state-dir`, else the default.
pub fn state_dir(args: &ControlAccessArgs) -> anyhow::Result<PathBuf> {
    args.state_dir.clone().or_else(default_state_dir).context(
        "no state directory for the control plane: pass --state-dir DIR or set PROBE_STATE_DIR",
    )
}

/// The shared token: `--token`, `--token-file` or `PROBE_TOKEN`.
pub fn token(args: &ControlAccessArgs) -> anyhow::Result<Option<Token>> {
    let env = std::env::var("PROBE_TOKEN").ok();
    Ok(Token::resolve(
        args.token.as_deref(),
        args.token_file.as_deref(),
        env.as_deref(),
    )?)
}

/// The settings of a control connection to `server`, known as `key` (`HOST:PORT`): pinned to
/// `--peer-fingerprint` when given, else trusted on first use in the known-peers file of the
/// state directory, with the shared token.
pub fn client_config(
    args: &ControlAccessArgs,
    peer_fingerprint: Option<&str>,
    server: SocketAddr,
    key: &str,
) -> anyhow::Result<ClientConfig> {
    let pin = match peer_fingerprint {
        Some(fp) => {
            PinPolicy::Fingerprint(fp.parse::<Fingerprint>().context("--peer-fingerprint")?)
        }
        None => PinPolicy::KnownPeers {
            file: state_dir(args)?.join(KNOWN_PEERS_FILE),
            key: key.to_owned(),
        },
    };
    let mut config = ClientConfig::new(server, key.to_owned(), pin);
    config.token = token(args)?;
    Ok(config)
}
