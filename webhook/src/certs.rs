//! Minting a CA and a serving certificate with rcgen, for installs without cert-manager and for
//! tests. ECDSA P-256 throughout: cheaper handshakes than RSA (REFERENCE §5.2), and SANs always
//! present (Go refuses CN-only certificates since 1.15).

use std::net::IpAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A CA and a serving certificate signed by it, all PEM.
#[derive(Debug, Clone)]
pub struct Minted {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// What to put in the serving certificate.
#[derive(Debug, Clone)]
pub struct Request {
    /// Subject common name (informational; clients check the SANs).
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// Lifetime of the serving certificate, in days from today.
    pub days: u32,
    /// Lifetime of the CA, in days from today.
    pub ca_days: u32,
}

impl Request {
    /// The names a Service `svc` in namespace `ns` is reached by from the apiserver.
    pub fn for_service(svc: &str, ns: &str) -> Self {
        Self {
            common_name: format!("{svc}.{ns}.svc"),
            dns_names: vec![
                svc.to_owned(),
                format!("{svc}.{ns}"),
                format!("{svc}.{ns}.svc"),
                format!("{svc}.{ns}.svc.cluster.local"),
            ],
            ip_addresses: vec![],
            days: 365,
            ca_days: 3650,
        }
    }
}

/// Why minting failed.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("cannot generate certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("the certificate needs at least one DNS name or IP address")]
    NoNames,
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The date `offset_days` from today (UTC), for `rcgen::date_time_ymd`.
fn day(offset_days: i64) -> (i32, u8, u8) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    orkestra::time::utc_date(now.saturating_add(offset_days.saturating_mul(86_400)))
}

/// `rcgen::date_time_ymd` of [`day`] (a macro because rcgen does not re-export `time`'s type).
macro_rules! at {
    ($offset:expr) => {{
        let (y, m, d) = day($offset);
        rcgen::date_time_ymd(y, m, d)
    }};
}

/// Mints a fresh CA and a serving certificate for `req`.
pub fn mint(req: &Request) -> Result<Minted, CertsError> {
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err(CertsError::NoNames);
    }
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "orkestra-webhook-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Backdated a day: clocks in a cluster are not all equal.
    ca.not_before = at!(-1);
    ca.not_after = at!(i64::from(req.ca_days));
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, req.common_name.as_str());
    leaf.subject_alt_names = req
        .dns_names
        .iter()
        .map(|n| n.clone().try_into().map(SanType::DnsName))
        .chain(
            req.ip_addresses
                .iter()
                .map(|ip| Ok(SanType::IpAddress(*ip))),
        )
        .collect::<Result<_, _>>()?;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = at!(-1);
    leaf.not_after = at!(i64::from(req.days));
    let cert = leaf.signed_by(&key, &issuer)?;

    Ok(Minted {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

impl Minted {
    /// Writes `ca.crt`, `ca.key`, `tls.crt`, `tls.key` (the Secret key names) into `dir`;
    /// private keys are written owner-readable only.
    pub fn write_to(&self, dir: &Path) -> Result<(), CertsError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CertsError::Write { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for (name, body, private) in [
            ("ca.crt", &self.ca_cert_pem, false),
            ("ca.key", &self.ca_key_pem, true),
            ("tls.crt", &self.cert_pem, false),
            ("tls.key", &self.key_pem, true),
        ] {
            let path = dir.join(name);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(if private { 0o600 } else { 0o644 })
                .open(&path)
                .map_err(io(&path))?;
            std::io::Write::write_all(&mut f, body.as_bytes()).map_err(io(&path))?;
        }
        Ok(())
    }
}
