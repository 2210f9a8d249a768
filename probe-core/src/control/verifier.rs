//! The client's rustls certificate verifier: the server is trusted by its key's fingerprint
//! (no certificate authority, no name check), and the TLS 1.3 handshake signature is still
//! verified with the crypto provider's algorithms, so only the holder of the pinned key can
//! complete the handshake.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};

use super::identity::Fingerprint;
use super::pin::{PinCheck, check};

/// Verifies the server by fingerprint; remembers what was presented, so the caller can name
/// it in errors and record it on first use.
#[derive(Debug)]
pub struct PinVerifier {
    pinned: Option<Fingerprint>,
    presented: Mutex<Option<(Fingerprint, PinCheck)>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinVerifier {
    /// A verifier accepting `pinned`, or (when `None`) any key, recorded as first use.
    pub fn new(pinned: Option<Fingerprint>, provider: &CryptoProvider) -> Arc<Self> {
        Arc::new(PinVerifier {
            pinned,
            presented: Mutex::new(None),
            algorithms: provider.signature_verification_algorithms,
        })
    }

    /// The fingerprint the server presented and the decision on it, once the handshake got
    /// that far.
    pub fn presented(&self) -> Option<(Fingerprint, PinCheck)> {
        *self
            .presented
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let fp = Fingerprint::of_certificate(end_entity)?;
        let decision = check(self.pinned, fp);
        *self
            .presented
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((fp, decision));
        match decision {
            PinCheck::Trusted | PinCheck::FirstUse => Ok(ServerCertVerified::assertion()),
            PinCheck::Mismatch { .. } => Err(Error::General(format!(
                "server identity {fp} is not the pinned one"
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::identity::Identity;

    fn verify(v: &PinVerifier, id: &Identity) -> Result<ServerCertVerified, Error> {
        let name = ServerName::try_from("probe").expect("name");
        v.verify_server_cert(id.certificate(), &[], &name, &[], UnixTime::now())
    }

    #[test]
    fn pinned_key_first_use_and_mismatch() {
        let provider = rustls::crypto::ring::default_provider();
        let id = Identity::generate().expect("identity");
        let other = Identity::generate().expect("other");

        let pinned = PinVerifier::new(Some(id.fingerprint()), &provider);
        assert!(pinned.presented().is_none());
        assert!(verify(&pinned, &id).is_ok());
        assert_eq!(
            pinned.presented(),
            Some((id.fingerprint(), PinCheck::Trusted))
        );
        assert!(verify(&pinned, &other).is_err());
        assert_eq!(
            pinned.presented(),
            Some((
                other.fingerprint(),
                PinCheck::Mismatch {
                    expected: id.fingerprint()
                }
            ))
        );

        let tofu = PinVerifier::new(None, &provider);
        assert!(verify(&tofu, &other).is_ok());
        assert_eq!(
            tofu.presented(),
            Some((other.fingerprint(), PinCheck::FirstUse))
        );
        assert!(
            tofu.supported_verify_schemes()
                .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
        );
        assert!(
            tofu.verify_server_cert(
                &CertificateDer::from(vec![0x30, 0x00]),
                &[],
                &ServerName::try_from("probe").expect("name"),
                &[],
                UnixTime::now()
            )
            .is_err(),
            "junk certificate"
        );
    }
}
