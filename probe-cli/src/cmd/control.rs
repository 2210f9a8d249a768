//! Control-plane settings shared by `probe serve` and the control clients.

use std::path::PathBuf;

use anyhow::Context;
use probe_core::control::{Token, default_state_dir};

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
