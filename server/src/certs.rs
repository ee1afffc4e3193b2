//! Certificates and rustls configurations.
//!
//! - Serving certificate: `--tls-cert-file`/`--tls-private-key-file` when given, else
//!   `<cert-dir>/apiserver.crt` and `apiserver.key` when both are readable, else a
//!   freshly generated self-signed pair written there (or kept in memory when
//!   `--cert-dir` is empty), exactly upstream's rule ([`serving_cert`]).
//! - [`ServingCertResolver`]: a rustls `ResolvesServerCert` that re-reads the files when
//!   they change on disk, checked on a handshake at most once per interval; a bad or
//!   half-written pair keeps the previous certificate.
//! - [`server_config`]: TLS 1.2+ (or 1.3 only), ALPN `http/1.1`, client certificates
//!   requested but optional through a [`ClientCaVerifier`] whose CA set can change at run
//!   time (request-header CA and client CA, from files or the
//!   `extension-apiserver-authentication` ConfigMap). After the handshake the peer chain
//!   is `ServerConnection::peer_certificates()`; the app decides the identity from it.
//! - [`client_config`]: for the apiserver and the kubelets; a CA bundle, or no chain
//!   verification at all with insecure settings ([`InsecureServerVerifier`], which still
//!   checks that the certificate parses and that the handshake signature is made by its
//!   key), and an optional client certificate.
//!
//! Deviation from upstream: generated keys are ECDSA P-256, not RSA 2048 (the ring
//! provider cannot generate RSA keys), and the key file is PKCS#8 PEM, not PKCS#1.
//! Clients never verify this certificate (the APIService uses `insecureSkipTLSVerify`).

use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::flags::{ServingOptions, TlsMinVersion};
use crate::kubeconfig::{
    ConfigError, KubeletClientConfig, MAX_FILE_BYTES, TlsSettings, read_bounded,
};

/// File name stem upstream uses in `--cert-dir` (`apiserver.crt`, `apiserver.key`).
pub const PAIR_NAME: &str = "apiserver";

/// How often the serving certificate files are checked for changes.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// ALPN protocol both sides offer (the core's HTTP codec is HTTP/1.1).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why certificate material could not be loaded, generated or used.
#[derive(Debug)]
#[non_exhaustive]
pub enum CertError {
    /// Reading a file failed.
    Read(ConfigError),
    /// Writing a generated file failed.
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// PEM could not be decoded.
    Pem {
        /// What was being read.
        what: String,
        /// The decoder's message.
        message: String,
    },
    /// rustls refused the material (e.g. key does not match certificate).
    Tls {
        /// What was being built.
        what: String,
        /// rustls' error.
        source: rustls::Error,
    },
    /// Certificate generation failed.
    Generate(rcgen::Error),
    /// Anything else (the message says what).
    Other(String),
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::Read(e) => e.fmt(f),
            CertError::Write { path, source } => {
                write!(f, "unable to write {}: {source}", path.display())
            }
            CertError::Pem { what, message } => write!(f, "{what}: {message}"),
            CertError::Tls { what, source } => write!(f, "{what}: {source}"),
            CertError::Generate(e) => write!(f, "unable to generate self signed cert: {e}"),
            CertError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CertError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CertError::Read(e) => Some(e),
            CertError::Write { source, .. } => Some(source),
            CertError::Tls { source, .. } => Some(source),
            CertError::Generate(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for CertError {
    fn from(e: ConfigError) -> Self {
        CertError::Read(e)
    }
}

fn tls_err(what: impl Into<String>) -> impl FnOnce(rustls::Error) -> CertError {
    let what = what.into();
    move |source| CertError::Tls { what, source }
}

// ---------------------------------------------------------------------------------------
// PEM
// ---------------------------------------------------------------------------------------

/// The crypto provider used everywhere (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every `CERTIFICATE` block of a PEM bundle; at least one is required.
pub fn parse_certs_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Pem {
            what: what.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CertError::Pem {
            what: what.to_owned(),
            message: "no certificate found".to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key (PKCS#1, SEC1 or PKCS#8) of a PEM file.
pub fn parse_key_pem(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, CertError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| CertError::Pem {
        what: what.to_owned(),
        message: match e {
            rustls_pki_types::pem::Error::NoItemsFound => "no private key found".to_owned(),
            other => other.to_string(),
        },
    })
}

/// Reads a PEM certificate bundle file (bounded).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let pem = read_bounded(path, MAX_FILE_BYTES)?;
    parse_certs_pem(&pem, &path.display().to_string())
}

/// Reads a PEM private key file (bounded).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let pem = read_bounded(path, MAX_FILE_BYTES)?;
    parse_key_pem(&pem, &path.display().to_string())
}

/// A certificate chain and its key, checked to belong together.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, CertError> {
    let chain = parse_certs_pem(cert_pem, "serving certificate")?;
    let key = parse_key_pem(key_pem, "serving key")?;
    CertifiedKey::from_der(chain, key, &provider())
        .map(Arc::new)
        .map_err(tls_err("serving certificate and key"))
}

// ---------------------------------------------------------------------------------------
// Self-signed generation
// ---------------------------------------------------------------------------------------

/// A generated serving pair, PEM encoded.
#[derive(Clone)]
pub struct GeneratedCert {
    /// Leaf certificate followed by the CA certificate that signed it.
    pub cert_pem: String,
    /// The leaf's private key (PKCS#8).
    pub key_pem: String,
}

impl fmt::Debug for GeneratedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedCert")
            .field("cert_pem", &format_args!("<{} bytes>", self.cert_pem.len()))
            .field("key_pem", &format_args!("<redacted>"))
            .finish()
    }
}

/// Generates upstream's self-signed pair (client-go's
/// `GenerateSelfSignedCertKeyWithFixtures`): a throw-away CA `"<host>-ca@<unix>"` signs
/// a leaf `"<host>@<unix>"` for server auth whose SANs are `host` (DNS, or IP when it
/// is one), then `alternate_ips`, then `alternate_dns`; valid from one hour before `now`
/// for one year.
pub fn generate_self_signed(
    host: &str,
    alternate_ips: &[IpAddr],
    alternate_dns: &[String],
    now: SystemTime,
) -> Result<GeneratedCert, CertError> {
    let unix = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let not_before = now
        .checked_sub(Duration::from_secs(3600))
        .unwrap_or(UNIX_EPOCH);
    let not_after = now + Duration::from_secs(365 * 24 * 3600);

    let ca_key = KeyPair::generate().map_err(CertError::Generate)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, format!("{host}-ca@{unix}"));
    ca.not_before = not_before.into();
    ca.not_after = not_after.into();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(CertError::Generate)?;

    let leaf_key = KeyPair::generate().map_err(CertError::Generate)?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, format!("{host}@{unix}"));
    leaf.not_before = not_before.into();
    leaf.not_after = not_after.into();
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let dns = |name: &str| -> Result<SanType, CertError> {
        name.try_into()
            .map(SanType::DnsName)
            .map_err(CertError::Generate)
    };
    match host.parse::<IpAddr>() {
        Ok(ip) => leaf.subject_alt_names.push(SanType::IpAddress(ip)),
        Err(_) => leaf.subject_alt_names.push(dns(host)?),
    }
    for ip in alternate_ips {
        leaf.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for name in alternate_dns {
        leaf.subject_alt_names.push(dns(name)?);
    }
    let issuer = Issuer::new(ca, ca_key);
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(CertError::Generate)?;

    Ok(GeneratedCert {
        cert_pem: format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
        key_pem: leaf_key.serialize_pem(),
    })
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum ServingCert {
    /// Files on disk (watched for changes).
    Files {
        /// Certificate chain file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// True when this call generated and wrote them (upstream logs
        /// `Generated self-signed cert (<crt>, <key>)`).
        generated: bool,
    },
    /// Generated and kept in memory (`--cert-dir=""`).
    InMemory(GeneratedCert),
}

/// Upstream's `MaybeDefaultWithSelfSignedCerts("localhost", nil, [127.0.0.1])`: the
/// given files, else the pair in `--cert-dir` if both are readable, else a generated
/// pair (written to `--cert-dir` when it is set). SANs: DNS `localhost`, IP
/// `127.0.0.1`, then `localhost` again when `--bind-address` is unspecified, else the
/// bind address.
pub fn serving_cert(opts: &ServingOptions, now: SystemTime) -> Result<ServingCert, CertError> {
    if let (Some(cert), Some(key)) = (&opts.tls_cert_file, &opts.tls_private_key_file) {
        return Ok(ServingCert::Files {
            cert: cert.clone(),
            key: key.clone(),
            generated: false,
        });
    }
    if opts.tls_cert_file.is_some() || opts.tls_private_key_file.is_some() {
        return Err(CertError::Other(
            "need both --tls-cert-file and --tls-private-key-file".to_owned(),
        ));
    }
    let mut alternate_ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    let mut alternate_dns = Vec::new();
    if opts.bind_address.is_unspecified() {
        alternate_dns.push("localhost".to_owned());
    } else {
        alternate_ips.push(opts.bind_address);
    }
    if opts.cert_dir.as_os_str().is_empty() {
        let generated = generate_self_signed("localhost", &alternate_ips, &alternate_dns, now)?;
        return Ok(ServingCert::InMemory(generated));
    }
    let cert = opts.cert_dir.join(format!("{PAIR_NAME}.crt"));
    let key = opts.cert_dir.join(format!("{PAIR_NAME}.key"));
    let cert_ok = readable(&cert);
    let key_ok = readable(&key);
    match (cert_ok, key_ok) {
        (true, true) => {
            return Ok(ServingCert::Files {
                cert,
                key,
                generated: false,
            });
        }
        (false, true) | (true, false) => {
            let missing = if cert_ok { &key } else { &cert };
            return Err(CertError::Other(format!(
                "error reading {}, certificate and key must be supplied as a pair",
                missing.display()
            )));
        }
        (false, false) => {}
    }
    let generated = generate_self_signed("localhost", &alternate_ips, &alternate_dns, now)?;
    std::fs::create_dir_all(&opts.cert_dir).map_err(|source| CertError::Write {
        path: opts.cert_dir.clone(),
        source,
    })?;
    write_atomically(&cert, generated.cert_pem.as_bytes(), 0o644)?;
    write_atomically(&key, generated.key_pem.as_bytes(), 0o600)?;
    tracing::info!(
        "Generated self-signed cert ({}, {})",
        cert.display(),
        key.display()
    );
    Ok(ServingCert::Files {
        cert,
        key,
        generated: true,
    })
}

fn readable(path: &Path) -> bool {
    std::fs::File::open(path).is_ok()
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`, so a
/// reader never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let io = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)
}

// ---------------------------------------------------------------------------------------
// Reloading serving certificate
// ---------------------------------------------------------------------------------------

/// The serving certificate for rustls, reloaded from its files when they change.
#[derive(Debug)]
pub struct ServingCertResolver {
    files: Option<(PathBuf, PathBuf)>,
    interval: Duration,
    state: Mutex<ResolverState>,
}

#[derive(Debug)]
struct ResolverState {
    key: Arc<CertifiedKey>,
    cert_bytes: Vec<u8>,
    key_bytes: Vec<u8>,
    checked_at: Instant,
}

impl ServingCertResolver {
    /// Loads the pair now (an error here is a start-up error) and re-checks the files
    /// at most once per `interval`, on handshakes.
    pub fn from_files(
        cert: PathBuf,
        key: PathBuf,
        interval: Duration,
    ) -> Result<ServingCertResolver, CertError> {
        let cert_bytes = read_bounded(&cert, MAX_FILE_BYTES)?;
        let key_bytes = read_bounded(&key, MAX_FILE_BYTES)?;
        let certified = certified_key(&cert_bytes, &key_bytes)?;
        Ok(ServingCertResolver {
            files: Some((cert, key)),
            interval,
            state: Mutex::new(ResolverState {
                key: certified,
                cert_bytes,
                key_bytes,
                checked_at: Instant::now(),
            }),
        })
    }

    /// A pair that never changes (generated in memory).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServingCertResolver, CertError> {
        Ok(ServingCertResolver {
            files: None,
            interval: Duration::MAX,
            state: Mutex::new(ResolverState {
                key: certified_key(cert_pem, key_pem)?,
                cert_bytes: Vec::new(),
                key_bytes: Vec::new(),
                checked_at: Instant::now(),
            }),
        })
    }

    /// The resolver for a [`ServingCert`].
    pub fn for_serving_cert(
        source: &ServingCert,
        interval: Duration,
    ) -> Result<ServingCertResolver, CertError> {
        match source {
            ServingCert::Files { cert, key, .. } => {
                Self::from_files(cert.clone(), key.clone(), interval)
            }
            ServingCert::InMemory(g) => Self::from_pem(g.cert_pem.as_bytes(), g.key_pem.as_bytes()),
        }
    }

    /// The certificate to serve now (re-checking the files if the interval passed).
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current_at(Instant::now())
    }

    /// [`ServingCertResolver::current`] with the clock passed in.
    pub fn current_at(&self, now: Instant) -> Arc<CertifiedKey> {
        let mut state = lock(&self.state);
        if now.saturating_duration_since(state.checked_at) >= self.interval {
            state.checked_at = now;
            if let Err(e) = self.reload_locked(&mut state) {
                tracing::warn!(error = %e, "Failed to reload the serving certificate; keeping the previous one");
            }
        }
        state.key.clone()
    }

    /// Checks the files now. `Ok(true)` when a new pair was loaded.
    pub fn reload(&self) -> Result<bool, CertError> {
        let mut state = lock(&self.state);
        state.checked_at = Instant::now();
        self.reload_locked(&mut state)
    }

    fn reload_locked(&self, state: &mut ResolverState) -> Result<bool, CertError> {
        let Some((cert, key)) = &self.files else {
            return Ok(false);
        };
        let cert_bytes = read_bounded(cert, MAX_FILE_BYTES)?;
        let key_bytes = read_bounded(key, MAX_FILE_BYTES)?;
        if cert_bytes == state.cert_bytes && key_bytes == state.key_bytes {
            return Ok(false);
        }
        let certified = certified_key(&cert_bytes, &key_bytes)?;
        state.key = certified;
        state.cert_bytes = cert_bytes;
        state.key_bytes = key_bytes;
        tracing::info!(cert = %cert.display(), "Loaded a new serving certificate");
        Ok(true)
    }
}

impl ResolvesServerCert for ServingCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

// ---------------------------------------------------------------------------------------
// Client certificate verification (server side)
// ---------------------------------------------------------------------------------------

/// What to do with a client certificate that does not chain to the configured CAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertMode {
    /// Fail the handshake (the certificate is verified against the union of the
    /// request-header and client CAs). A connection without a certificate is accepted.
    VerifyIfGiven,
    /// Accept any certificate whose handshake signature is valid and leave the chain
    /// check to the application (Go's `tls.RequestClientCert`, what upstream does: an
    /// unverifiable certificate is then simply not an identity).
    RequestOnly,
}

/// A client certificate verifier whose CA set can be replaced at run time. In
/// verify-if-given mode with no CA configured, no certificate is requested at all;
/// request-only mode always asks. Root hints are never sent (an
/// empty list lets every client present its certificate, which also survives a CA
/// rotation the client has not seen yet).
#[derive(Debug)]
pub struct ClientCaVerifier {
    mode: ClientCertMode,
    provider: Arc<CryptoProvider>,
    inner: RwLock<ClientCaState>,
}

#[derive(Debug, Default)]
struct ClientCaState {
    bundle: Vec<u8>,
    roots: usize,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl ClientCaVerifier {
    /// A verifier with no CA (no certificate requested until [`Self::set_ca_bundles`]).
    pub fn new(mode: ClientCertMode) -> ClientCaVerifier {
        ClientCaVerifier {
            mode,
            provider: provider(),
            inner: RwLock::new(ClientCaState::default()),
        }
    }

    /// Replaces the CA set with the union of the PEM bundles (e.g. the request-header
    /// CA and the client CA). Unchanged input is a no-op returning `Ok(false)`. On error
    /// the previous set stays.
    pub fn set_ca_bundles(&self, bundles: &[&[u8]]) -> Result<bool, CertError> {
        let joined: Vec<u8> = bundles.iter().flat_map(|b| b.iter().copied()).collect();
        {
            let state = match self.inner.read() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            if state.bundle == joined && (state.verifier.is_some() || joined.is_empty()) {
                return Ok(false);
            }
        }
        let mut roots = RootCertStore::empty();
        for bundle in bundles.iter().filter(|b| !b.is_empty()) {
            for cert in parse_certs_pem(bundle, "client CA bundle")? {
                roots.add(cert).map_err(tls_err("client CA bundle"))?;
            }
        }
        let count = roots.len();
        let verifier = if count == 0 {
            None
        } else {
            let built =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .allow_unauthenticated()
                    .clear_root_hint_subjects()
                    .build()
                    .map_err(|e| CertError::Other(format!("client CA bundle: {e}")))?;
            Some(built)
        };
        let mut state = match self.inner.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        *state = ClientCaState {
            bundle: joined,
            roots: count,
            verifier,
        };
        Ok(true)
    }

    /// Number of CA certificates configured.
    pub fn ca_count(&self) -> usize {
        match self.inner.read() {
            Ok(s) => s.roots,
            Err(p) => p.into_inner().roots,
        }
    }

    fn current(&self) -> Option<Arc<dyn ClientCertVerifier>> {
        match self.inner.read() {
            Ok(s) => s.verifier.clone(),
            Err(p) => p.into_inner().verifier.clone(),
        }
    }
}

impl ClientCertVerifier for ClientCaVerifier {
    /// Request-only asks every client (the CAs may arrive later, from the ConfigMap, and
    /// the application checks chains itself); verify-if-given asks once a CA is set.
    fn offer_client_auth(&self) -> bool {
        self.mode == ClientCertMode::RequestOnly || self.ca_count() > 0
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.mode {
            ClientCertMode::RequestOnly => {
                ParsedCertificate::try_from(end_entity)?;
                Ok(ClientCertVerified::assertion())
            }
            ClientCertMode::VerifyIfGiven => match self.current() {
                Some(v) => v.verify_client_cert(end_entity, intermediates, now),
                None => Err(rustls::Error::General(
                    "no client CA is configured".to_owned(),
                )),
            },
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------
// Server config
// ---------------------------------------------------------------------------------------

/// rustls suites for `--tls-cipher-suites` (Go names). TLS 1.3 suites are always on (Go
/// ignores the flag for TLS 1.3); TLS 1.2 suites are limited to the named ones rustls
/// implements. Returns the suites and the names that were dropped (CBC, RC4, 3DES and
/// RSA key exchange are not implemented by rustls). An empty list means the defaults.
pub fn cipher_suites(names: &[String]) -> (Vec<SupportedCipherSuite>, Vec<String>) {
    let all = rustls::crypto::ring::default_provider().cipher_suites;
    if names.is_empty() {
        return (all, Vec::new());
    }
    let mut chosen: Vec<SupportedCipherSuite> = all
        .iter()
        .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
        .copied()
        .collect();
    let mut dropped = Vec::new();
    for name in names {
        let rustls_name = match name.as_str() {
            "TLS_AES_128_GCM_SHA256"
            | "TLS_AES_256_GCM_SHA384"
            | "TLS_CHACHA20_POLY1305_SHA256" => {
                continue;
            }
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            }
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            other => other,
        };
        let found = all.iter().find(|s| {
            matches!(s, SupportedCipherSuite::Tls12(_)) && s.suite().as_str() == Some(rustls_name)
        });
        match found {
            Some(s) if !chosen.contains(s) => chosen.push(*s),
            Some(_) => {}
            None => dropped.push(name.clone()),
        }
    }
    (chosen, dropped)
}

fn versions(min: TlsMinVersion) -> &'static [&'static SupportedProtocolVersion] {
    static BOTH: [&SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static ONLY13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match min {
        TlsMinVersion::Tls12 => &BOTH,
        TlsMinVersion::Tls13 => &ONLY13,
    }
}

/// The serving `ServerConfig`: the given certificate resolver and client verifier,
/// TLS 1.2+ (or 1.3 only), the named cipher suites (see [`cipher_suites`]; dropped names
/// are logged), ALPN `http/1.1`.
pub fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    client_verifier: Arc<dyn ClientCertVerifier>,
    min_version: TlsMinVersion,
    cipher_suite_names: &[String],
) -> Result<Arc<ServerConfig>, CertError> {
    let (suites, dropped) = cipher_suites(cipher_suite_names);
    for name in &dropped {
        tracing::warn!(suite = %name, "--tls-cipher-suites: suite not implemented, ignored");
    }
    let provider = CryptoProvider {
        cipher_suites: suites,
        ..rustls::crypto::ring::default_provider()
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions(min_version))
        .map_err(tls_err("server TLS configuration"))?
        .with_client_cert_verifier(client_verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// Everything the serving side needs from the flags: the certificate (generated if
/// needed), a client verifier loaded from `--client-ca-file` and
/// `--requestheader-client-ca-file` (the ConfigMap's CAs can be added later with
/// [`ClientCaVerifier::set_ca_bundles`]), and the `ServerConfig`.
#[derive(Debug)]
pub struct ServingTls {
    /// Where the certificate came from.
    pub source: ServingCert,
    /// The reloading resolver inside `config`.
    pub resolver: Arc<ServingCertResolver>,
    /// The client verifier inside `config`.
    pub client_verifier: Arc<ClientCaVerifier>,
    /// The rustls configuration.
    pub config: Arc<ServerConfig>,
}

/// Builds [`ServingTls`] from the serving options and the CA files.
pub fn serving_tls(
    opts: &ServingOptions,
    ca_files: &[&Path],
    mode: ClientCertMode,
    now: SystemTime,
) -> Result<ServingTls, CertError> {
    let source = serving_cert(opts, now)?;
    let resolver = Arc::new(ServingCertResolver::for_serving_cert(
        &source,
        DEFAULT_RELOAD_INTERVAL,
    )?);
    let client_verifier = Arc::new(ClientCaVerifier::new(mode));
    let bundles = ca_files
        .iter()
        .map(|p| read_bounded(p, MAX_FILE_BYTES))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&[u8]> = bundles.iter().map(Vec::as_slice).collect();
    client_verifier.set_ca_bundles(&refs)?;
    let config = server_config(
        resolver.clone(),
        client_verifier.clone(),
        opts.tls_min_version,
        &opts.tls_cipher_suites,
    )?;
    Ok(ServingTls {
        source,
        resolver,
        client_verifier,
        config,
    })
}

// ---------------------------------------------------------------------------------------
// Client configs
// ---------------------------------------------------------------------------------------

/// Accepts any server certificate that parses, without checking chain, validity dates
/// or names (`--kubelet-insecure-tls`, `insecure-skip-tls-verify`). The handshake
/// signature is still verified against the presented certificate's key, so the peer
/// must hold that key.
#[derive(Debug)]
pub struct InsecureServerVerifier {
    provider: Arc<CryptoProvider>,
}

impl InsecureServerVerifier {
    /// With the ring provider's signature algorithms.
    pub fn new() -> InsecureServerVerifier {
        InsecureServerVerifier {
            provider: provider(),
        }
    }
}

impl Default for InsecureServerVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerCertVerifier for InsecureServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        ParsedCertificate::try_from(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client `ClientConfig` from resolved TLS settings: the CA bundle (required unless
/// insecure; there are no system roots in a container image), no verification when
/// insecure, and the client certificate when given. ALPN `http/1.1`. The caller picks
/// the `ServerName` per connection: `settings.server_name` when set, else the host.
pub fn client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, CertError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(TlsMinVersion::Tls12))
        .map_err(tls_err("client TLS configuration"))?;
    let builder = if settings.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(InsecureServerVerifier::new()))
    } else {
        let Some(ca) = &settings.ca else {
            return Err(CertError::Other(
                "no certificate authority configured (set a CA or skip verification)".to_owned(),
            ));
        };
        let pem = ca.load()?;
        let mut roots = RootCertStore::empty();
        for cert in parse_certs_pem(&pem, "certificate authority")? {
            roots.add(cert).map_err(tls_err("certificate authority"))?;
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match (&settings.client_cert, &settings.client_key) {
        (Some(cert), Some(key)) => {
            let chain = parse_certs_pem(&cert.load()?, "client certificate")?;
            let key = parse_key_pem(&key.load()?, "client key")?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(tls_err("client certificate"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(CertError::Other(
                "client certificate and key must be given together".to_owned(),
            ));
        }
    };
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// The kubelet `ClientConfig`, or `None` for plain HTTP
/// (`--deprecated-kubelet-completely-insecure`).
pub fn kubelet_client_config(
    kubelet: &KubeletClientConfig,
) -> Result<Option<Arc<ClientConfig>>, CertError> {
    kubelet.tls.as_ref().map(client_config).transpose()
}

/// The `ServerName` to present and verify for a connection to `host`: the configured
/// `tls-server-name` when set, else the host itself (an IP address or a DNS name).
pub fn server_name_for(
    settings: &TlsSettings,
    host: &str,
) -> Result<ServerName<'static>, CertError> {
    let name = settings.server_name.as_deref().unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_owned())
        .map_err(|e| CertError::Other(format!("invalid TLS server name {name:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::Options;
    use crate::kubeconfig::PemSource;
    use crate::test_support::TempDir;
    use rustls::client::WebPkiServerVerifier;
    use rustls::{ClientConnection, ServerConnection};

    fn now() -> SystemTime {
        SystemTime::now()
    }

    /// Runs a handshake between two in-memory connections.
    fn handshake(
        client: &mut ClientConnection,
        server: &mut ServerConnection,
    ) -> Result<(), rustls::Error> {
        let mut buf = Vec::new();
        for _ in 0..32 {
            let mut moved = false;
            while client.wants_write() {
                buf.clear();
                client
                    .write_tls(&mut buf)
                    .map_err(|e| rustls::Error::General(e.to_string()))?;
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    server
                        .read_tls(&mut rd)
                        .map_err(|e| rustls::Error::General(e.to_string()))?;
                    server.process_new_packets()?;
                }
                moved = true;
            }
            while server.wants_write() {
                buf.clear();
                server
                    .write_tls(&mut buf)
                    .map_err(|e| rustls::Error::General(e.to_string()))?;
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    client
                        .read_tls(&mut rd)
                        .map_err(|e| rustls::Error::General(e.to_string()))?;
                    client.process_new_packets()?;
                }
                moved = true;
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
            if !moved {
                break;
            }
        }
        Err(rustls::Error::General("handshake did not complete".into()))
    }

    fn connect(
        server_config: &Arc<ServerConfig>,
        client_config: &Arc<ClientConfig>,
        name: &str,
    ) -> Result<(ClientConnection, ServerConnection), rustls::Error> {
        let name = ServerName::try_from(name.to_owned()).expect("valid name");
        let mut client = ClientConnection::new(client_config.clone(), name)?;
        let mut server = ServerConnection::new(server_config.clone())?;
        handshake(&mut client, &mut server)?;
        Ok((client, server))
    }

    fn insecure_client() -> Arc<ClientConfig> {
        client_config(&TlsSettings {
            insecure: true,
            ..TlsSettings::default()
        })
        .expect("client config")
    }

    fn leaf(pem: &str) -> CertificateDer<'static> {
        parse_certs_pem(pem.as_bytes(), "test")
            .expect("certs")
            .remove(0)
    }

    /// A CA and a client certificate it signed (client auth), PEM.
    fn client_pki(cn: &str) -> (String, String, String) {
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, format!("{cn}-ca"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &Issuer::new(ca, ca_key)).expect("leaf");
        (ca_cert.pem(), cert.pem(), key.serialize_pem())
    }

    fn serving_options(dir: &Path) -> ServingOptions {
        let mut s = Options::defaults().serving;
        s.cert_dir = dir.to_path_buf();
        s
    }

    #[test]
    fn self_signed_pair_verifies_for_localhost_and_loopback() {
        let g = generate_self_signed(
            "localhost",
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            &["localhost".to_owned()],
            now(),
        )
        .expect("generated");
        let chain = parse_certs_pem(g.cert_pem.as_bytes(), "generated").expect("pem");
        assert_eq!(chain.len(), 2, "leaf followed by its CA");
        certified_key(g.cert_pem.as_bytes(), g.key_pem.as_bytes()).expect("key matches");
        let mut roots = RootCertStore::empty();
        roots.add(chain[1].clone()).expect("ca");
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .expect("verifier");
        let t = UnixTime::now();
        for name in ["localhost", "127.0.0.1"] {
            let name = ServerName::try_from(name).expect("name");
            verifier
                .verify_server_cert(&chain[0], &[], &name, &[], t)
                .expect("leaf verifies");
        }
        let other = ServerName::try_from("example.com").expect("name");
        assert!(
            verifier
                .verify_server_cert(&chain[0], &[], &other, &[], t)
                .is_err()
        );
        // the key is not printed
        assert!(!format!("{g:?}").contains("PRIVATE"));
    }

    #[test]
    fn generated_into_cert_dir_with_upstream_names_then_reused() {
        let dir = TempDir::new("certdir");
        let sub = dir.path().join("nested/certs");
        let opts = serving_options(&sub);
        let first = serving_cert(&opts, now()).expect("generated");
        let ServingCert::Files {
            cert,
            key,
            generated,
        } = first
        else {
            panic!("files expected");
        };
        assert!(generated);
        assert_eq!(cert, sub.join("apiserver.crt"));
        assert_eq!(key, sub.join("apiserver.key"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).expect("key").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let pem = std::fs::read(&cert).expect("cert");
        let second = serving_cert(&opts, now()).expect("reused");
        assert!(matches!(
            second,
            ServingCert::Files {
                generated: false,
                ..
            }
        ));
        assert_eq!(std::fs::read(&cert).expect("cert"), pem, "not regenerated");
        // only one of the pair present
        std::fs::remove_file(&key).expect("rm");
        let e = serving_cert(&opts, now()).expect_err("pair required");
        assert!(e.to_string().contains("must be supplied as a pair"), "{e}");
        // an empty cert dir keeps the generated pair in memory
        let mut mem = opts.clone();
        mem.cert_dir = PathBuf::new();
        assert!(matches!(
            serving_cert(&mem, now()),
            Ok(ServingCert::InMemory(_))
        ));
        // explicit files win
        let mut explicit = opts;
        explicit.tls_cert_file = Some("/x.crt".into());
        explicit.tls_private_key_file = Some("/x.key".into());
        assert!(matches!(
            serving_cert(&explicit, now()),
            Ok(ServingCert::Files {
                generated: false,
                ..
            })
        ));
    }

    #[test]
    fn bind_address_is_added_to_the_sans() {
        let dir = TempDir::new("bind");
        let mut opts = serving_options(dir.path());
        opts.bind_address = "10.1.2.3".parse().expect("ip");
        let ServingCert::Files { cert, .. } = serving_cert(&opts, now()).expect("generated") else {
            panic!("files expected");
        };
        let chain = load_certs(&cert).expect("pem");
        let mut roots = RootCertStore::empty();
        roots.add(chain[1].clone()).expect("ca");
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .expect("verifier");
        for name in ["localhost", "127.0.0.1", "10.1.2.3"] {
            let name = ServerName::try_from(name).expect("name");
            verifier
                .verify_server_cert(&chain[0], &[], &name, &[], UnixTime::now())
                .expect("SAN present");
        }
    }

    #[test]
    fn resolver_serves_rotated_files() {
        let dir = TempDir::new("reload");
        let opts = serving_options(dir.path());
        let ServingCert::Files { cert, key, .. } = serving_cert(&opts, now()).expect("generated")
        else {
            panic!("files expected");
        };
        let resolver = Arc::new(
            ServingCertResolver::from_files(cert.clone(), key.clone(), Duration::ZERO)
                .expect("loads"),
        );
        let config = server_config(
            resolver.clone(),
            Arc::new(ClientCaVerifier::new(ClientCertMode::VerifyIfGiven)),
            TlsMinVersion::Tls12,
            &[],
        )
        .expect("server config");
        // A fresh client each time: a resumed session would not carry a certificate.
        let served = |cfg: &Arc<ServerConfig>| -> CertificateDer<'static> {
            let (c, _) = connect(cfg, &insecure_client(), "localhost").expect("handshake");
            c.peer_certificates().expect("server cert")[0]
                .clone()
                .into_owned()
        };
        let original = leaf(&String::from_utf8(std::fs::read(&cert).expect("cert")).expect("utf8"));
        assert_eq!(served(&config), original);

        // rotate: new files on disk, the next handshake serves them
        let g = generate_self_signed("localhost", &[], &[], now()).expect("generated");
        write_atomically(&cert, g.cert_pem.as_bytes(), 0o644).expect("write");
        write_atomically(&key, g.key_pem.as_bytes(), 0o600).expect("write");
        let rotated = leaf(&g.cert_pem);
        assert_ne!(rotated, original);
        assert_eq!(served(&config), rotated);

        // a half-rotated pair (new cert, old key) keeps serving the previous pair
        let g2 = generate_self_signed("localhost", &[], &[], now()).expect("generated");
        write_atomically(&cert, g2.cert_pem.as_bytes(), 0o644).expect("write");
        assert_eq!(served(&config), rotated);
        assert!(resolver.reload().is_err());
        // garbage keeps it too
        write_atomically(&key, b"not a key", 0o600).expect("write");
        assert_eq!(served(&config), rotated);
        // completing the rotation is picked up
        write_atomically(&key, g2.key_pem.as_bytes(), 0o600).expect("write");
        assert_eq!(served(&config), leaf(&g2.cert_pem));
        assert_eq!(resolver.reload().ok(), Some(false), "unchanged files");
    }

    #[test]
    fn reload_checks_are_rate_limited() {
        let dir = TempDir::new("ratelimit");
        let opts = serving_options(dir.path());
        let ServingCert::Files { cert, key, .. } = serving_cert(&opts, now()).expect("generated")
        else {
            panic!("files expected");
        };
        let interval = Duration::from_secs(5);
        let resolver =
            ServingCertResolver::from_files(cert.clone(), key.clone(), interval).expect("loads");
        let t0 = Instant::now();
        let before = resolver.current_at(t0).cert[0].clone();
        let g = generate_self_signed("localhost", &[], &[], now()).expect("generated");
        write_atomically(&cert, g.cert_pem.as_bytes(), 0o644).expect("write");
        write_atomically(&key, g.key_pem.as_bytes(), 0o600).expect("write");
        // within the interval of the last check: the old pair
        let checked = {
            let s = lock(&resolver.state);
            s.checked_at
        };
        assert_eq!(
            resolver.current_at(checked + Duration::from_secs(1)).cert[0],
            before
        );
        assert_eq!(
            resolver.current_at(checked + interval).cert[0],
            leaf(&g.cert_pem)
        );
    }

    #[test]
    fn client_certificates_are_optional_and_verified_against_the_union() {
        let (front_ca, front_cert, front_key) = client_pki("front-proxy-client");
        let (client_ca, user_cert, user_key) = client_pki("alice");
        let (_, stranger_cert, stranger_key) = client_pki("mallory");
        let g = generate_self_signed("localhost", &[], &[], now()).expect("generated");
        let resolver = Arc::new(
            ServingCertResolver::from_pem(g.cert_pem.as_bytes(), g.key_pem.as_bytes())
                .expect("pem"),
        );
        let client_with = |cert: &str, key: &str| {
            client_config(&TlsSettings {
                insecure: true,
                client_cert: Some(PemSource::Inline(cert.as_bytes().to_vec())),
                client_key: Some(PemSource::Inline(key.as_bytes().to_vec())),
                ..TlsSettings::default()
            })
            .expect("client config")
        };

        for mode in [ClientCertMode::VerifyIfGiven, ClientCertMode::RequestOnly] {
            let verifier = Arc::new(ClientCaVerifier::new(mode));
            let config = server_config(
                resolver.clone(),
                verifier.clone(),
                TlsMinVersion::Tls12,
                &[],
            )
            .expect("server config");

            // no CA configured: verify-if-given requests no certificate, so none
            // arrives; request-only asks anyway (the CAs may come from the ConfigMap)
            let (_, s) = connect(&config, &client_with(&user_cert, &user_key), "localhost")
                .expect("handshake");
            assert_eq!(
                s.peer_certificates().is_some(),
                mode == ClientCertMode::RequestOnly
            );

            assert_eq!(
                verifier
                    .set_ca_bundles(&[front_ca.as_bytes(), client_ca.as_bytes()])
                    .ok(),
                Some(true)
            );
            assert_eq!(verifier.ca_count(), 2);
            assert_eq!(
                verifier
                    .set_ca_bundles(&[front_ca.as_bytes(), client_ca.as_bytes()])
                    .ok(),
                Some(false),
                "unchanged"
            );

            // certificates from either CA are accepted and visible to the app
            for (cert, key) in [(&front_cert, &front_key), (&user_cert, &user_key)] {
                let (_, s) =
                    connect(&config, &client_with(cert, key), "localhost").expect("handshake");
                let chain = s.peer_certificates().expect("client chain");
                assert_eq!(chain[0], leaf(cert));
            }
            // no certificate is fine (anonymous or token authentication)
            let (_, s) = connect(&config, &insecure_client(), "localhost").expect("handshake");
            assert!(s.peer_certificates().is_none());
            // a certificate from an unknown CA
            let stranger = connect(
                &config,
                &client_with(&stranger_cert, &stranger_key),
                "localhost",
            );
            match mode {
                ClientCertMode::VerifyIfGiven => assert!(stranger.is_err()),
                ClientCertMode::RequestOnly => {
                    let (_, s) = stranger.expect("accepted, left to the app");
                    assert!(s.peer_certificates().is_some());
                }
            }
            // a bad bundle keeps the previous set
            assert!(verifier.set_ca_bundles(&[b"junk"]).is_err());
            assert_eq!(verifier.ca_count(), 2);
            // removing every CA stops requesting certificates (verify-if-given)
            assert_eq!(verifier.set_ca_bundles(&[]).ok(), Some(true));
            let (_, s) = connect(&config, &client_with(&user_cert, &user_key), "localhost")
                .expect("handshake");
            assert_eq!(
                s.peer_certificates().is_some(),
                mode == ClientCertMode::RequestOnly
            );
        }
    }

    #[test]
    fn client_config_verifies_with_a_ca_or_skips_when_insecure() {
        let g = generate_self_signed("localhost", &[IpAddr::V4(Ipv4Addr::LOCALHOST)], &[], now())
            .expect("generated");
        let ca_pem = {
            let chain = parse_certs_pem(g.cert_pem.as_bytes(), "g").expect("pem");
            let ca = &chain[1];
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64_lines(ca.as_ref())
            )
        };
        let resolver = Arc::new(
            ServingCertResolver::from_pem(g.cert_pem.as_bytes(), g.key_pem.as_bytes())
                .expect("pem"),
        );
        let server = server_config(
            resolver,
            Arc::new(ClientCaVerifier::new(ClientCertMode::VerifyIfGiven)),
            TlsMinVersion::Tls12,
            &[],
        )
        .expect("server");
        let verified = client_config(&TlsSettings {
            ca: Some(PemSource::Inline(ca_pem.into_bytes())),
            ..TlsSettings::default()
        })
        .expect("client");
        let (c, _) = connect(&server, &verified, "localhost").expect("name in SANs");
        assert_eq!(c.alpn_protocol(), Some(ALPN_HTTP11));
        connect(&server, &verified, "127.0.0.1").expect("IP in SANs");
        assert!(connect(&server, &verified, "kubelet.example").is_err());
        // insecure: any name, any issuer
        connect(&server, &insecure_client(), "kubelet.example").expect("insecure");
        // without CA and not insecure there is nothing to verify with
        assert!(client_config(&TlsSettings::default()).is_err());
        // an unrelated CA fails
        let (other_ca, _, _) = client_pki("other");
        let wrong = client_config(&TlsSettings {
            ca: Some(PemSource::Inline(other_ca.into_bytes())),
            ..TlsSettings::default()
        })
        .expect("client");
        assert!(connect(&server, &wrong, "localhost").is_err());
    }

    fn base64_lines(der: &[u8]) -> String {
        use base64::prelude::{BASE64_STANDARD, Engine as _};
        BASE64_STANDARD.encode(der)
    }

    #[test]
    fn tls13_only_and_cipher_suites() {
        let (all, dropped) = cipher_suites(&[]);
        assert_eq!(all.len(), 9);
        assert!(dropped.is_empty());
        let names: Vec<String> = [
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
            "TLS_AES_128_GCM_SHA256",
            "TLS_RSA_WITH_AES_128_CBC_SHA",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let (suites, dropped) = cipher_suites(&names);
        assert_eq!(dropped, vec!["TLS_RSA_WITH_AES_128_CBC_SHA".to_owned()]);
        let tls12: Vec<_> = suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
            .filter_map(|s| s.suite().as_str())
            .collect();
        assert_eq!(
            tls12,
            vec![
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
        assert_eq!(suites.len(), 5, "all three TLS 1.3 suites stay");

        let g = generate_self_signed("localhost", &[], &[], now()).expect("generated");
        let resolver = Arc::new(
            ServingCertResolver::from_pem(g.cert_pem.as_bytes(), g.key_pem.as_bytes())
                .expect("pem"),
        );
        let only13 = server_config(
            resolver.clone(),
            Arc::new(ClientCaVerifier::new(ClientCertMode::VerifyIfGiven)),
            TlsMinVersion::Tls13,
            &[],
        )
        .expect("server");
        let tls12_client = Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS12])
                .expect("versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(InsecureServerVerifier::new()))
                .with_no_client_auth(),
        );
        assert!(connect(&only13, &tls12_client, "localhost").is_err());
        let both = server_config(
            resolver,
            Arc::new(ClientCaVerifier::new(ClientCertMode::VerifyIfGiven)),
            TlsMinVersion::Tls12,
            &names,
        )
        .expect("server");
        let (c, _) = connect(&both, &tls12_client, "localhost").expect("TLS 1.2 works");
        assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    }

    #[test]
    fn serving_tls_from_flags() {
        let dir = TempDir::new("serving-tls");
        let (ca, cert, key) = client_pki("front-proxy-client");
        let ca_file = dir.write("front-proxy-ca.crt", &ca);
        let opts = serving_options(&dir.path().join("certs"));
        let tls = serving_tls(&opts, &[&ca_file], ClientCertMode::VerifyIfGiven, now())
            .expect("serving TLS");
        assert!(matches!(
            tls.source,
            ServingCert::Files {
                generated: true,
                ..
            }
        ));
        assert_eq!(tls.client_verifier.ca_count(), 1);
        assert_eq!(tls.config.alpn_protocols, vec![ALPN_HTTP11.to_vec()]);
        let client = client_config(&TlsSettings {
            insecure: true,
            client_cert: Some(PemSource::Inline(cert.clone().into_bytes())),
            client_key: Some(PemSource::Inline(key.into_bytes())),
            ..TlsSettings::default()
        })
        .expect("client");
        let (_, s) = connect(&tls.config, &client, "localhost").expect("handshake");
        assert_eq!(
            s.peer_certificates().map(|c| c[0].clone()),
            Some(leaf(&cert))
        );
        assert!(
            serving_tls(
                &opts,
                &[&dir.path().join("absent.crt")],
                ClientCertMode::VerifyIfGiven,
                now()
            )
            .is_err()
        );
    }

    #[test]
    fn pem_errors_are_clear() {
        assert!(parse_certs_pem(b"", "x").is_err());
        assert!(parse_certs_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n", "x").is_err());
        let e = parse_key_pem(b"nothing here", "serving key").expect_err("no key");
        assert_eq!(e.to_string(), "serving key: no private key found");
        let dir = TempDir::new("pem");
        let p = dir.write("big.pem", vec![b'A'; (MAX_FILE_BYTES + 1) as usize]);
        assert!(load_certs(&p).is_err());
        assert!(load_key(&dir.path().join("absent")).is_err());
        let g = generate_self_signed("localhost", &[], &[], now()).expect("generated");
        let other = generate_self_signed("localhost", &[], &[], now()).expect("generated");
        assert!(certified_key(g.cert_pem.as_bytes(), other.key_pem.as_bytes()).is_err());
        assert!(server_name_for(&TlsSettings::default(), "10.0.0.1").is_ok());
        assert!(server_name_for(&TlsSettings::default(), "[fd00::1]").is_ok());
        let pinned = TlsSettings {
            server_name: Some("kubernetes".into()),
            ..TlsSettings::default()
        };
        assert_eq!(
            server_name_for(&pinned, "10.0.0.1").expect("name"),
            ServerName::try_from("kubernetes").expect("name")
        );
    }
}
