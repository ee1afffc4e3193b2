//! Client certificates: CA bundles, chain verification (`rustls-webpki`, no IO) and the
//! subject fields the authenticators read.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256};
use webpki::{EndEntityCert, KeyUsage};

use super::cache::TtlCache;
use crate::time::{Instant, Timestamp};

/// Largest CA bundle accepted, in bytes.
pub const MAX_BUNDLE_BYTES: usize = 4 * 1024 * 1024;
/// Most certificates in one CA bundle.
pub const MAX_BUNDLE_CERTS: usize = 1024;
/// Most certificates in a presented client chain (leaf included).
pub const MAX_CHAIN_CERTS: usize = 16;
/// Largest single presented certificate, in bytes.
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Most Organization values read from one subject.
const MAX_ORGANIZATIONS: usize = 1024;

/// A set of trusted CA certificates (`--client-ca-file`, `requestheader-client-ca-file`).
#[derive(Clone, Default)]
pub struct CaBundle {
    certs: Vec<Vec<u8>>,
    anchors: Vec<TrustAnchor<'static>>,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("certificates", &self.certs.len())
            .finish()
    }
}

impl PartialEq for CaBundle {
    fn eq(&self, other: &Self) -> bool {
        self.certs == other.certs
    }
}

impl Eq for CaBundle {}

/// Why a CA bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaBundleError {
    /// More than [`MAX_BUNDLE_BYTES`] or [`MAX_BUNDLE_CERTS`].
    TooLarge,
    /// Malformed PEM.
    Pem(String),
    /// No `CERTIFICATE` block (Go's `cert.ParseCertsPEM` message).
    NoCertificates,
    /// A certificate (0-based index) that cannot be a trust anchor.
    InvalidCertificate(usize, String),
}

impl fmt::Display for CaBundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaBundleError::TooLarge => f.write_str("CA bundle too large"),
            CaBundleError::Pem(e) => write!(f, "invalid PEM: {e}"),
            CaBundleError::NoCertificates => {
                f.write_str("data does not contain any valid RSA or ECDSA certificates")
            }
            CaBundleError::InvalidCertificate(i, e) => {
                write!(f, "certificate {i} of the bundle is invalid: {e}")
            }
        }
    }
}

impl std::error::Error for CaBundleError {}

/// Why a presented chain did not verify. `Display` gives Go's wording for the common
/// cases (it is logged, never sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// More than [`MAX_CHAIN_CERTS`] certificates, or one over [`MAX_CERT_BYTES`].
    TooLarge,
    /// The leaf is not a parseable certificate.
    Malformed(webpki::Error),
    /// Path building or validation failed.
    Invalid(webpki::Error),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::TooLarge => f.write_str("x509: certificate chain too large"),
            VerifyError::Malformed(e) => write!(f, "x509: malformed certificate: {e:?}"),
            VerifyError::Invalid(webpki::Error::UnknownIssuer) => {
                f.write_str("x509: certificate signed by unknown authority")
            }
            VerifyError::Invalid(
                webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. },
            ) => f.write_str("x509: certificate has expired or is not yet valid"),
            VerifyError::Invalid(webpki::Error::RequiredEkuNotFoundContext(_)) => {
                f.write_str("x509: certificate specifies an incompatible key usage")
            }
            VerifyError::Invalid(e) => write!(f, "x509: {e:?}"),
        }
    }
}

impl std::error::Error for VerifyError {}

impl CaBundle {
    /// Parses a PEM bundle (every `CERTIFICATE` block; other blocks and text between
    /// blocks are skipped), or a single DER certificate.
    pub fn parse(bytes: &[u8]) -> Result<CaBundle, CaBundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(CaBundleError::TooLarge);
        }
        if bytes.first() == Some(&0x30) {
            return CaBundle::from_der(vec![bytes.to_vec()]);
        }
        let mut certs = Vec::new();
        for item in CertificateDer::pem_slice_iter(bytes) {
            let der = item.map_err(|e| CaBundleError::Pem(e.to_string()))?;
            if certs.len() == MAX_BUNDLE_CERTS {
                return Err(CaBundleError::TooLarge);
            }
            certs.push(der.to_vec());
        }
        if certs.is_empty() {
            return Err(CaBundleError::NoCertificates);
        }
        CaBundle::from_der(certs)
    }

    /// A bundle of DER certificates.
    pub fn from_der(certs: Vec<Vec<u8>>) -> Result<CaBundle, CaBundleError> {
        if certs.len() > MAX_BUNDLE_CERTS {
            return Err(CaBundleError::TooLarge);
        }
        let mut anchors = Vec::with_capacity(certs.len());
        for (i, der) in certs.iter().enumerate() {
            let cert = CertificateDer::from(der.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&cert)
                .map_err(|e| CaBundleError::InvalidCertificate(i, format!("{e:?}")))?;
            anchors.push(anchor.to_owned());
        }
        Ok(CaBundle { certs, anchors })
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether the bundle trusts nothing (an authenticator with it does not apply).
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The DER certificates, in bundle order.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.certs
    }

    /// Verifies a presented chain (DER, leaf first, the rest intermediates) for client
    /// authentication at `wall` time, as Go's `x509.Certificate.Verify` with
    /// `ExtKeyUsageClientAuth`; returns the leaf's subject.
    pub fn verify(&self, chain: &[Vec<u8>], wall: Timestamp) -> Result<Subject, VerifyError> {
        let Some((leaf, rest)) = chain.split_first() else {
            return Err(VerifyError::Invalid(webpki::Error::UnknownIssuer));
        };
        if chain.len() > MAX_CHAIN_CERTS || chain.iter().any(|c| c.len() > MAX_CERT_BYTES) {
            return Err(VerifyError::TooLarge);
        }
        let leaf_der = CertificateDer::from(leaf.as_slice());
        let cert = EndEntityCert::try_from(&leaf_der).map_err(VerifyError::Malformed)?;
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let secs = u64::try_from(wall.unix_secs()).unwrap_or(0);
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            &intermediates,
            UnixTime::since_unix_epoch(Duration::from_secs(secs)),
            KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(VerifyError::Invalid)?;
        Ok(Subject::parse(cert.subject()))
    }
}

/// How long a verified chain is trusted without verifying it again.
pub const VERIFIED_CHAIN_TTL: Duration = Duration::from_secs(60);
/// Most verified chains remembered per CA bundle.
const VERIFIED_CHAINS: usize = 1024;

/// A CA bundle that remembers the chains it verified, so a front proxy presenting the
/// same certificate on every request costs one signature check a minute rather than one
/// per request (about 58 µs each for ECDSA P-256).
///
/// Only a lone certificate (no intermediates, the aggregator's case) is remembered, and
/// only if it also verifies at the end of the [`VERIFIED_CHAIN_TTL`]: with no
/// intermediates the only time-dependent check is the leaf's validity period (webpki
/// checks no validity on trust anchors), an interval, so it then verifies at every
/// moment in between and a hit answers exactly what verifying again would. (With
/// intermediates, different paths could be valid at the two ends and not in between.)
/// A clock stepping back before the first verification misses. Failures are not
/// remembered.
#[derive(Debug)]
pub(crate) struct VerifyingBundle {
    bundle: CaBundle,
    /// SHA-256 of the chain ─▶ (leaf subject, wall time of the first verification).
    verified: Mutex<TtlCache<[u8; 32], (Subject, Timestamp)>>,
}

impl VerifyingBundle {
    pub(crate) fn new(bundle: CaBundle) -> VerifyingBundle {
        VerifyingBundle {
            bundle,
            verified: Mutex::new(TtlCache::new(VERIFIED_CHAINS)),
        }
    }

    pub(crate) fn bundle(&self) -> &CaBundle {
        &self.bundle
    }

    /// [`CaBundle::verify`], from memory when this chain verified within the TTL;
    /// `now` (monotonic) expires what is remembered.
    pub(crate) fn verify(
        &self,
        chain: &[Vec<u8>],
        wall: Timestamp,
        now: Instant,
    ) -> Result<Subject, VerifyError> {
        if chain.len() > MAX_CHAIN_CERTS || chain.iter().any(|c| c.len() > MAX_CERT_BYTES) {
            return Err(VerifyError::TooLarge);
        }
        if chain.len() != 1 {
            return self.bundle.verify(chain, wall);
        }
        let key = chain_key(chain);
        {
            let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((subject, since)) = verified.get(&key, now)
                && wall >= *since
                && wall <= since.saturating_add(VERIFIED_CHAIN_TTL)
            {
                return Ok(subject.clone());
            }
        }
        let subject = self.bundle.verify(chain, wall)?;
        if self
            .bundle
            .verify(chain, wall.saturating_add(VERIFIED_CHAIN_TTL))
            .is_ok()
        {
            let expires = now.saturating_add(VERIFIED_CHAIN_TTL);
            self.verified
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key, (subject.clone(), wall), expires, now);
        }
        Ok(subject)
    }
}

/// SHA-256 over the length-prefixed certificates (so no two chains share a key).
fn chain_key(chain: &[Vec<u8>]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for cert in chain {
        hasher.update((cert.len() as u64).to_be_bytes());
        hasher.update(cert);
    }
    hasher.finalize().into()
}

/// The subject fields authentication reads, as Go's `pkix.Name` fills them: the LAST
/// CommonName, every Organization in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub common_name: String,
    pub organizations: Vec<String>,
}

const OID_COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];
const OID_ORGANIZATION: [u8; 3] = [0x55, 0x04, 0x0a];

impl Subject {
    /// Reads the contents of a DER `Name` (the RDN sequence without its outer SEQUENCE
    /// header). Anything malformed ends the walk; attributes that are not strings Go can
    /// read are skipped.
    pub fn parse(rdn_sequence: &[u8]) -> Subject {
        let mut subject = Subject::default();
        let mut rdns = rdn_sequence;
        while let Some((0x31, mut set, rest)) = tlv(rdns) {
            rdns = rest;
            while let Some((0x30, atv, rest)) = tlv(set) {
                set = rest;
                let Some((0x06, oid, value)) = tlv(atv) else {
                    continue;
                };
                let Some((tag, value, _)) = tlv(value) else {
                    continue;
                };
                let Some(text) = asn1_string(tag, value) else {
                    continue;
                };
                if oid == OID_COMMON_NAME {
                    subject.common_name = text;
                } else if oid == OID_ORGANIZATION && subject.organizations.len() < MAX_ORGANIZATIONS
                {
                    subject.organizations.push(text);
                }
            }
        }
        subject
    }
}

/// One DER tag-length-value: (tag, contents, rest). Single-byte tags, lengths up to four
/// bytes.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
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

/// The ASN.1 string types Go's certificate parser reads.
fn asn1_string(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        // UTF8String
        0x0c => std::str::from_utf8(value).ok().map(str::to_owned),
        // NumericString, PrintableString, IA5String
        0x12 | 0x13 | 0x16 => value
            .is_ascii()
            .then(|| String::from_utf8_lossy(value).into_owned()),
        // T61String: Go reads it as ISO-8859-1.
        0x14 => Some(value.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16 big-endian.
        0x1e => {
            if !value.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atv(oid: [u8; 3], tag: u8, value: &[u8]) -> Vec<u8> {
        let mut inner = vec![0x06, 3];
        inner.extend_from_slice(&oid);
        inner.push(tag);
        inner.push(u8::try_from(value.len()).expect("short"));
        inner.extend_from_slice(value);
        let mut seq = vec![0x30, u8::try_from(inner.len()).expect("short")];
        seq.extend(inner);
        let mut set = vec![0x31, u8::try_from(seq.len()).expect("short")];
        set.extend(seq);
        set
    }

    #[test]
    fn subject_last_cn_every_o() {
        let mut name = Vec::new();
        name.extend(atv(OID_ORGANIZATION, 0x0c, b"dev"));
        name.extend(atv(OID_COMMON_NAME, 0x13, b"first"));
        name.extend(atv(OID_ORGANIZATION, 0x13, b"qa"));
        name.extend(atv(OID_COMMON_NAME, 0x0c, "jané".as_bytes()));
        name.extend(atv(OID_ORGANIZATION, 0x1e, &[0, b'o', 0, b'p', 0, b's']));
        name.extend(atv(OID_ORGANIZATION, 0x04, b"octets are skipped"));
        let s = Subject::parse(&name);
        assert_eq!(s.common_name, "jané");
        assert_eq!(s.organizations, vec!["dev", "qa", "ops"]);
    }

    #[test]
    fn subject_hostile_input() {
        for junk in [
            &[][..],
            &[0x31],
            &[0x31, 0x85, 1, 2, 3, 4, 5],
            &[0x31, 0x03, 0x30, 0x01],
            &[0x1f, 0x01, 0x00],
            &[0x31, 0x84, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert_eq!(Subject::parse(junk), Subject::default());
        }
    }

    #[test]
    fn bundle_errors() {
        assert_eq!(
            CaBundle::parse(b"").expect_err("empty"),
            CaBundleError::NoCertificates
        );
        assert_eq!(
            CaBundle::parse(b"not a certificate").expect_err("text"),
            CaBundleError::NoCertificates
        );
        assert!(matches!(
            CaBundle::parse(&[0x30, 0x03, 1, 2, 3]),
            Err(CaBundleError::InvalidCertificate(0, _))
        ));
        assert!(matches!(
            CaBundle::parse(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
            Err(CaBundleError::Pem(_))
        ));
        let empty = CaBundle::default();
        assert!(empty.is_empty());
        assert!(empty.verify(&[], Timestamp::from_unix_secs(0)).is_err());
        assert!(matches!(
            empty.verify(&[vec![0x30, 0x00]], Timestamp::from_unix_secs(0)),
            Err(VerifyError::Malformed(_))
        ));
        assert_eq!(
            empty.verify(&vec![vec![0u8]; 17], Timestamp::from_unix_secs(0)),
            Err(VerifyError::TooLarge)
        );
    }
}
