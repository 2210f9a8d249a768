//! The responder's persistent identity: a key pair and a self-signed certificate kept in its
//! state directory, and the fingerprint clients pin.
//!
//! The identity is one PEM file, [`IDENTITY_FILE`], holding a PKCS#8 `PRIVATE KEY` (ECDSA
//! P-256) and its `CERTIFICATE`. It is created on first start, written atomically (a
//! temporary file renamed into place) with mode 0600, and never replaced afterwards: a file
//! that cannot be read or parsed is an error naming it, so a client's pin is never broken
//! silently.
//!
//! The [`Fingerprint`] is the SHA-256 of the certificate's `SubjectPublicKeyInfo` (the public
//! key), written `sha256:` followed by 64 lowercase hex digits. It names the key, so it stays
//! the same if the certificate around the key is ever reissued.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Name of the identity file inside the state directory.
pub const IDENTITY_FILE: &str = "control-identity.pem";

/// The fingerprint prefix naming the hash.
const PREFIX: &str = "sha256:";

/// SHA-256 of a certificate's public key (`SubjectPublicKeyInfo` DER).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a public key given as `SubjectPublicKeyInfo` DER.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
        let mut out = [0; 32];
        out.copy_from_slice(digest.as_ref());
        Fingerprint(out)
    }

    /// The fingerprint of a DER certificate's public key.
    pub fn of_certificate(cert: &CertificateDer<'_>) -> Result<Self, rustls::Error> {
        let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
        Ok(Self::of_spki(parsed.subject_public_key_info().as_ref()))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A fingerprint's text is not `sha256:` and 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid fingerprint {text:?}: expected `sha256:` followed by 64 hex digits, as printed by \
     `probe serve` at start"
)]
pub struct FingerprintParseError {
    /// The text given (shortened).
    pub text: String,
}

impl FromStr for Fingerprint {
    type Err = FingerprintParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || FingerprintParseError {
            text: s.chars().take(80).collect(),
        };
        let t = s.trim();
        let hex = t
            .get(..PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(PREFIX))
            .and_then(|_| t.get(PREFIX.len()..))
            .ok_or_else(err)?;
        if hex.len() != 64 {
            return Err(err());
        }
        let mut out = [0; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or_else(err)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| err())?;
        }
        Ok(Fingerprint(out))
    }
}

/// The identity file cannot be created, read or used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The state directory or the file cannot be created or written.
    #[error(
        "cannot create the control identity {path}: {source}; give a writable directory with \
         --state-dir or PROBE_STATE_DIR"
    )]
    Create {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file exists but cannot be read.
    #[error(
        "cannot read the control identity {path}: {source}; fix its permissions (the server \
         must be able to read it), or point --state-dir elsewhere"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file's content is not a usable key and certificate.
    #[error(
        "the control identity {path} is corrupted ({reason}); restore it from a backup, or \
         delete it to create a new identity (clients that pinned the old fingerprint will then \
         refuse this server until their known-peers entry is removed)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A new key or certificate could not be generated.
    #[error("cannot generate the control identity: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A key pair and its self-signed certificate.
#[derive(Debug)]
pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    fingerprint: Fingerprint,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
            fingerprint: self.fingerprint,
        }
    }
}

impl Identity {
    /// Generates a new ECDSA P-256 key pair and a self-signed certificate for it.
    pub fn generate() -> Result<Self, IdentityError> {
        let pem = generate_pem()?;
        Self::from_pem(pem.as_bytes()).map_err(|reason| IdentityError::Corrupt {
            path: PathBuf::from("(generated)"),
            reason,
        })
    }

    /// Loads the identity from `dir`, creating it (and `dir`, mode 0700) on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        let path = dir.join(IDENTITY_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                warn_if_readable_by_others(&path);
                Self::from_pem(&bytes).map_err(|reason| IdentityError::Corrupt { path, reason })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pem = generate_pem()?;
                create_dir_private(dir)?;
                let created = create_exclusive(&path, pem.as_bytes()).map_err(|source| {
                    IdentityError::Create {
                        path: path.clone(),
                        source,
                    }
                })?;
                if !created {
                    // Another process created it meanwhile: use that one.
                    return Self::load_or_create(dir);
                }
                tracing::info!("created the control identity {}", path.display());
                Self::from_pem(pem.as_bytes())
                    .map_err(|reason| IdentityError::Corrupt { path, reason })
            }
            Err(source) => Err(IdentityError::Read { path, source }),
        }
    }

    /// Parses the PEM text of an identity file; the error says what is wrong.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let cert = CertificateDer::pem_slice_iter(pem)
            .next()
            .ok_or("no CERTIFICATE block")?
            .map_err(|e| format!("bad CERTIFICATE block: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|e| format!("no usable PRIVATE KEY block: {e}"))?;
        let fingerprint =
            Fingerprint::of_certificate(&cert).map_err(|e| format!("bad certificate: {e}"))?;
        let text = std::str::from_utf8(pem).map_err(|_| "not UTF-8 text")?;
        let pair = rcgen::KeyPair::from_pem(text).map_err(|e| format!("bad private key: {e}"))?;
        if Fingerprint::of_spki(&rcgen::PublicKeyData::subject_public_key_info(&pair))
            != fingerprint
        {
            return Err("the private key does not match the certificate".into());
        }
        Ok(Identity {
            cert,
            key,
            fingerprint,
        })
    }

    /// The certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The private key (PKCS#8 DER).
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// The fingerprint clients pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

/// A fresh key and certificate as the PEM text of an identity file.
fn generate_pem() -> Result<String, rcgen::Error> {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec!["probe".to_string()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "probe control plane");
    let cert = params.self_signed(&pair)?;
    Ok(format!("{}{}", pair.serialize_pem(), cert.pem()))
}

/// Creates `dir` (and parents) with mode 0700 where it does not exist yet.
pub(crate) fn create_dir_private(dir: &Path) -> Result<(), IdentityError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| IdentityError::Create {
            path: dir.to_path_buf(),
            source,
        })
}

/// Writes `bytes` to `path` atomically: a temporary file (mode 0600) in the same directory,
/// synced, then renamed over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` with `bytes` (mode 0600) atomically and only if it does not exist: a
/// complete temporary file is hard-linked into place, so readers never see a partial file
/// and two processes starting together keep one identity. `false` when `path` existed.
fn create_exclusive(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    let tmp = path.with_extension(format!("{:016x}.new", rand::random::<u64>()));
    write_atomic(&tmp, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the control identity {} is accessible to other users (mode {:o}); \
             run `chmod 600` on it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "probe-identity-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn fingerprint_text_round_trips() {
        let fp = Fingerprint([0xab; 32]);
        let text = fp.to_string();
        assert_eq!(text.len(), 7 + 64);
        assert!(text.starts_with("sha256:abab"));
        assert_eq!(text.parse::<Fingerprint>(), Ok(fp));
        assert_eq!(text.to_uppercase().parse::<Fingerprint>(), Ok(fp));
        for bad in [
            "",
            "sha256:",
            "abab",
            "sha1:abab",
            &text[..70],
            &format!("{text}00"),
        ] {
            let e = bad.parse::<Fingerprint>().expect_err(bad);
            assert!(e.to_string().contains("64 hex digits"), "{e}");
        }
        let not_hex = format!("sha256:{}", "zz".repeat(32));
        assert!(not_hex.parse::<Fingerprint>().is_err());
    }

    #[test]
    fn created_once_then_kept_with_private_mode() {
        let dir = temp_dir("keep");
        let first = Identity::load_or_create(&dir).expect("create");
        let path = dir.join(IDENTITY_FILE);
        let mode = fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let second = Identity::load_or_create(&dir).expect("load");
        assert_eq!(first.fingerprint(), second.fingerprint());
        assert_eq!(first.certificate(), second.certificate());
        // A fresh identity has another key.
        assert_ne!(
            Identity::generate().expect("gen").fingerprint(),
            first.fingerprint()
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn concurrent_first_starts_keep_one_identity() {
        let dir = temp_dir("race");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let d = dir.clone();
                std::thread::spawn(move || Identity::load_or_create(&d).map(|i| i.fingerprint()))
            })
            .collect();
        let fps: Vec<Fingerprint> = handles
            .into_iter()
            .map(|h| h.join().expect("thread").expect("identity"))
            .collect();
        assert!(fps.iter().all(|f| *f == fps[0]), "{fps:?}");
        assert_eq!(
            Identity::load_or_create(&dir).expect("load").fingerprint(),
            fps[0]
        );
        let leftovers = fs::read_dir(&dir).expect("dir").count();
        assert_eq!(leftovers, 1, "only the identity file remains");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn corrupted_file_is_an_error_naming_it_and_is_not_replaced() {
        let dir = temp_dir("corrupt");
        Identity::load_or_create(&dir).expect("create");
        let path = dir.join(IDENTITY_FILE);
        fs::write(&path, b"-----BEGIN PRIVATE KEY-----\ngarbage\n").expect("write");
        let e = Identity::load_or_create(&dir).expect_err("corrupt");
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("delete it to create a new identity"), "{msg}");
        assert_eq!(
            fs::read(&path).expect("still there"),
            b"-----BEGIN PRIVATE KEY-----\ngarbage\n"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn key_of_another_identity_is_refused() {
        let a = generate_pem().expect("a");
        let b = generate_pem().expect("b");
        let key_a = &a[..a.find("-----BEGIN CERTIFICATE").expect("cert")];
        let cert_b = &b[b.find("-----BEGIN CERTIFICATE").expect("cert")..];
        let e = Identity::from_pem(format!("{key_a}{cert_b}").as_bytes()).expect_err("mismatch");
        assert!(e.contains("does not match"), "{e}");
    }
}
