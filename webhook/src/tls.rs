//! TLS: the rustls server configuration and the serving certificate, reloaded from disk on change.
//!
//! cert-manager rotates the serving certificate by updating a Secret; the kubelet swaps the mounted
//! files with an atomic `..data` symlink switch. [`CertReloader`] is rustls' certificate resolver:
//! on every handshake (and on a background poll) it compares the identity of the two files
//! (inode, size, mtime, resolved through symlinks) with the pair in use, and when they changed it
//! loads the new pair. A pair that does not parse, or whose key does not match its certificate
//! (the key file written after the cert), is not used: the old pair keeps serving, so a
//! handshake never fails during rotation. The next change of the files is tried again.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::metrics::Metrics;

/// Why a certificate pair could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no usable PEM private key: {detail}")]
    BadKey { path: PathBuf, detail: String },
    #[error("certificate {cert} and key {key} do not form a usable pair: {detail}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The one crypto provider of this process: ring (no aws-lc; REFERENCE §2.1 "two crypto providers").
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process-wide default provider, once. Later calls are no-ops.
pub fn install_default_provider() {
    // Err means a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Lowest TLS version offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MinTlsVersion {
    #[default]
    #[value(name = "1.2")]
    Tls12,
    #[value(name = "1.3")]
    Tls13,
}

/// The server configuration: our resolver, ALPN `h2` then `http/1.1` (served by the auto builder,
/// which speaks both).
pub fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    min_version: MinTlsVersion,
) -> Result<rustls::ServerConfig, TlsError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match min_version {
        MinTlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinTlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Identity of one file as seen through symlinks: a `..data` swap changes the inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn file_id(path: &Path) -> Option<FileId> {
    let m = fs::metadata(path).ok()?;
    Some(FileId {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

type PairId = (Option<FileId>, Option<FileId>);

struct ReloadState {
    /// The files the pair in use was loaded from.
    loaded: PairId,
    /// Files that failed to load; not retried until they change again.
    failed: Option<PairId>,
}

/// A [`ResolvesServerCert`] that serves the pair on disk, reloading it when the files change.
pub struct CertReloader {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    state: Mutex<ReloadState>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for CertReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertReloader")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl CertReloader {
    /// Loads the initial pair; fails if it is unusable (there is nothing to serve with yet).
    pub fn new(
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, TlsError> {
        let cert_path = cert_path.into();
        let key_path = key_path.into();
        let provider = provider();
        let ids = (file_id(&cert_path), file_id(&key_path));
        let (key, not_after) = load_pair(&cert_path, &key_path, &provider)?;
        metrics.set_cert_not_after(not_after.unwrap_or(0));
        Ok(Self {
            cert_path,
            key_path,
            provider,
            current: RwLock::new(Arc::new(key)),
            state: Mutex::new(ReloadState {
                loaded: ids,
                failed: None,
            }),
            metrics,
        })
    }

    /// The pair in use.
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reloads the pair if the files changed since it was loaded. Returns true when a new pair
    /// was installed. Cheap when nothing changed: two `stat` calls.
    pub fn refresh(&self) -> bool {
        let ids = (file_id(&self.cert_path), file_id(&self.key_path));
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if ids == state.loaded || state.failed == Some(ids) {
            return false;
        }
        match load_pair(&self.cert_path, &self.key_path, &self.provider) {
            Ok((key, not_after)) => {
                match self.current.write() {
                    Ok(mut cur) => *cur = Arc::new(key),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(key),
                }
                state.loaded = ids;
                state.failed = None;
                self.metrics.set_cert_not_after(not_after.unwrap_or(0));
                self.metrics.cert_reloaded(true);
                tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded");
                true
            }
            Err(e) => {
                state.failed = Some(ids);
                self.metrics.cert_reloaded(false);
                tracing::warn!(error = %e, "new certificate files not usable; still serving the previous pair");
                false
            }
        }
    }

    /// Polls the files every `every` until the returned task is aborted, so a rotation is picked
    /// up (and the expiry metric updated) even when no new connection arrives.
    pub fn spawn_poller(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let this = Arc::clone(&this);
                // File reads are blocking; keep them off the reactor threads.
                let _ = tokio::task::spawn_blocking(move || this.refresh()).await;
            }
        })
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        Some(self.current())
    }
}

/// Reads and checks a pair: the chain, the key, and that they belong together.
/// Also returns the leaf's notAfter (unix seconds) when it can be read.
pub fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, Option<i64>), TlsError> {
    let cert_pem = fs::read(cert_path).map_err(|source| TlsError::Read {
        path: cert_path.to_owned(),
        source,
    })?;
    let key_pem = fs::read(key_path).map_err(|source| TlsError::Read {
        path: key_path.to_owned(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate {
            path: cert_path.to_owned(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadKey {
        path: key_path.to_owned(),
        detail: e.to_string(),
    })?;
    let not_after = chain.first().and_then(|c| not_after_unix(c.as_ref()));
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Pair {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        detail: e.to_string(),
    })?;
    Ok((certified, not_after))
}

// === notAfter from DER ===
// Enough of X.509 to reach TBSCertificate.validity.notAfter, so the expiry metric needs no
// X.509 parser dependency. Returns None on anything unexpected.

/// Reads one DER TLV at the start of `der`: (tag, contents, rest).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 < 0x80 {
        (usize::from(len0), rest)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The leaf certificate's notAfter as unix seconds.
pub fn not_after_unix(der: &[u8]) -> Option<i64> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // version [0] EXPLICIT is optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    rest = tlv(rest)?.2; // serialNumber
    rest = tlv(rest)?.2; // signature AlgorithmIdentifier
    rest = tlv(rest)?.2; // issuer
    let (0x30, validity, _) = tlv(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, time, _) = tlv(after_not_before)?;
    parse_time(tag, time)
}

fn parse_time(tag: u8, s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        // UTCTime YYMMDDHHMMSS: 50..99 are 19xx (RFC 5280 4.1.2.5.1).
        0x17 => {
            let yy: i64 = s.get(0..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        // GeneralizedTime YYYYMMDDHHMMSS.
        0x18 => (s.get(0..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let at = |r: std::ops::Range<usize>| rest.get(r).unwrap_or_default();
    orkestra::time::parse_time(&format!(
        "{year:04}-{}-{}T{}:{}:{}Z",
        at(0..2),
        at(2..4),
        at(4..6),
        at(6..8),
        at(8..10)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_after_of_rcgen_certs() {
        for (y, m, d) in [(2030, 6, 15), (2049, 12, 31), (2051, 1, 2)] {
            let key = rcgen::KeyPair::generate().expect("keygen");
            let mut params =
                rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
            params.not_after = rcgen::date_time_ymd(y, m, d);
            let cert = params.self_signed(&key).expect("sign");
            let want = orkestra::time::parse_time(&format!("{y:04}-{m:02}-{d:02}T00:00:00Z"));
            assert_eq!(not_after_unix(cert.der()), want, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn garbage_has_no_not_after() {
        assert_eq!(not_after_unix(b""), None);
        assert_eq!(not_after_unix(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after_unix(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
    }
}
