//! rustls and quinn configurations of the control plane (TLS 1.3 only, ring provider).

use std::sync::Arc;
use std::time::Duration;

use super::error::ControlError;
use crate::control::ALPN;
use crate::control::identity::{Fingerprint, Identity};
use crate::control::verifier::PinVerifier;

/// A connection idle this long is closed (so a peer that vanished frees its sessions).
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Both ends send a keep-alive this often, so a quiet but live connection never idles out.
const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// The crypto provider (ring).
pub(super) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok())
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_concurrent_bidi_streams(8_u32.into())
        .max_concurrent_uni_streams(0_u32.into());
    Arc::new(t)
}

fn tls_err(e: impl std::fmt::Display) -> ControlError {
    ControlError::Tls(e.to_string())
}

/// The server side: the identity's certificate, TLS 1.3, the control ALPN.
pub(super) fn server_config(identity: &Identity) -> Result<quinn::ServerConfig, ControlError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(vec![identity.certificate().clone()], identity.private_key())
        .map_err(tls_err)?;
    // Control connections, and the QUIC test's connections (crate::quic_test) on the same
    // endpoint under an ALPN of their own.
    tls.alpn_protocols = vec![ALPN.to_vec(), crate::quic_test::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(tls_err)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport());
    Ok(config)
}

/// The client side: the pinning verifier, TLS 1.3, the control ALPN.
pub(super) fn client_config(
    verifier: Arc<PinVerifier>,
) -> Result<quinn::ClientConfig, ControlError> {
    client_config_for(verifier, ALPN, transport())
}

/// The client side of a QUIC test connection: the identity pinned by the control connection,
/// the test ALPN, and stream windows sized for bulk transfers.
pub(crate) fn quic_test_client_config(
    fingerprint: Fingerprint,
) -> Result<quinn::ClientConfig, ControlError> {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok())
        .keep_alive_interval(Some(KEEP_ALIVE))
        .stream_receive_window((16_u32 << 20).into())
        .receive_window((32_u32 << 20).into())
        .send_window(32 << 20);
    let verifier = PinVerifier::new(Some(fingerprint), &provider());
    client_config_for(verifier, crate::quic_test::ALPN, Arc::new(t))
}

fn client_config_for(
    verifier: Arc<PinVerifier>,
    alpn: &[u8],
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ClientConfig, ControlError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(tls_err)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport);
    Ok(config)
}
