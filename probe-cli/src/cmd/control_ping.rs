//! `probe control-ping HOST[:PORT]` (hidden): one control connection and hello, printing the
//! responder's identity, protocol version and clock. Exit codes: 0 welcomed, 3 unauthorized,
//! 4 identity mismatch (pin), 5 protocol version mismatch, 2 any other error.

use std::process::ExitCode;

use probe_core::a2a::runtime::{Family, PeerSpec};
use probe_core::control::handshake::HelloError;
use probe_core::control::{CONTROL_PORT, ControlError, PinError, connect};
use serde_json::json;

use super::control::client_config;
use crate::cli::ControlPingArgs;

/// Exit code: the token was refused.
const EXIT_UNAUTHORIZED: u8 = 3;
/// Exit code: the responder's identity is not the pinned one.
const EXIT_PIN_MISMATCH: u8 = 4;
/// Exit code: the responder speaks another protocol version.
const EXIT_VERSION: u8 = 5;

pub async fn run(args: &ControlPingArgs) -> anyhow::Result<ExitCode> {
    let spec = PeerSpec::parse(&args.peer, CONTROL_PORT)?;
    let server = spec.resolve(Family::Any).await?;
    let key = spec.to_string();
    let mut config = client_config(
        &args.control,
        args.peer_fingerprint.as_deref(),
        server,
        &key,
    )?;
    config.timeout = args.timeout;
    if let Some(v) = args.protocol_version {
        config.version = v;
    }
    let result = async {
        let client = connect(config).await?;
        let hello = client.hello().await;
        let first_use = client.first_use();
        client.close().await;
        hello.map(|h| (h, first_use))
    }
    .await;
    let (peer, first_use) = match result {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("probe: error: {key}: {e}");
            return Ok(ExitCode::from(exit_code(&e)));
        }
    };
    if args.json {
        let out = json!({
            "peer": key,
            "address": server.to_string(),
            "fingerprint": peer.fingerprint,
            "first_use": first_use,
            "version": peer.version,
            "software": peer.software,
            "clock": {
                "boot_id": peer.clock.boot_id.to_string(),
                "synced": peer.clock.synchronized,
                "max_error_ns": peer.clock.max_error.map(|d| d.as_nanos()),
            },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{key} ({server}): {} ({}), protocol {}, {}",
            peer.fingerprint,
            if first_use {
                "trusted on first use, recorded"
            } else {
                "pinned"
            },
            peer.version,
            peer.software
        );
        println!(
            "  clock: boot id {}, {}, max error {}",
            peer.clock.boot_id,
            if peer.clock.synchronized {
                "synchronized"
            } else {
                "not synchronized"
            },
            peer.clock
                .max_error
                .map_or_else(|| "unknown".into(), |d| format!("{d:?}"))
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn exit_code(e: &ControlError) -> u8 {
    match e {
        ControlError::Hello(HelloError::Unauthorized { .. }) => EXIT_UNAUTHORIZED,
        ControlError::Hello(HelloError::Version { .. }) => EXIT_VERSION,
        ControlError::Pin(PinError::Mismatch { .. }) => EXIT_PIN_MISMATCH,
        _ => 2,
    }
}
