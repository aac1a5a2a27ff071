//! TLS for the agent protocol: the management CA, enrollment tokens, the
//! pinned-CA verifier on the agent side, and secrets.
//!
//! At start the management server makes a self-signed CA (Ed25519) and a
//! server certificate signed by it for [`SERVER_NAME`]. An enrollment token is
//! `stratus1.<sha256 of the CA certificate, hex>.<secret, base64url>`: the agent
//! trusts exactly that CA (no system roots, no trust on first use), and the
//! secret authenticates the agent once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::digest::{SHA256, digest};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, Mutex};
use stratus_core::rng::DetRng;

/// The name in the management server's certificate; agents ask for it (SNI)
/// whatever address they dial, since trust comes from the pinned CA.
pub const SERVER_NAME: &str = "stratus-management";
const TOKEN_PREFIX: &str = "stratus1";
const SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate generation failed: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("invalid enrollment token: {0}")]
    Token(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// SHA-256 of a DER certificate.
pub fn fingerprint(cert_der: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, cert_der).as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a 64-digit hex SHA-256 fingerprint.
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let b = unhex(s)?;
    b.try_into().ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// SHA-256 of a secret, as stored (the server never keeps secrets in clear).
pub fn secret_hash(secret: &str) -> [u8; 32] {
    fingerprint(secret.as_bytes())
}

/// Where secrets come from: the OS, or a seeded stream for reproducible
/// simulations (never in production: `stratus agent` and a real server use `Os`).
#[derive(Debug)]
pub enum SecretSource {
    Os(ring::rand::SystemRandom),
    Seeded(Mutex<DetRng>),
}

impl SecretSource {
    pub fn os() -> SecretSource {
        SecretSource::Os(ring::rand::SystemRandom::new())
    }
    pub fn seeded(seed: u64) -> SecretSource {
        SecretSource::Seeded(Mutex::new(DetRng::child(seed, "agent-secrets")))
    }
    pub fn fill(&self, out: &mut [u8]) {
        match self {
            SecretSource::Os(r) => ring::rand::SecureRandom::fill(r, out).expect("the OS random source works"),
            SecretSource::Seeded(r) => {
                let mut r = r.lock().expect("rng lock");
                for chunk in out.chunks_mut(8) {
                    let v = r.next_u64().to_le_bytes();
                    chunk.copy_from_slice(&v[..chunk.len()]);
                }
            }
        }
    }
    /// A fresh random secret, base64url.
    pub fn secret(&self) -> String {
        let mut b = [0u8; SECRET_BYTES];
        self.fill(&mut b);
        B64.encode(b)
    }
}

/// A parsed enrollment token.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollToken {
    pub ca_fingerprint: [u8; 32],
    pub secret: String,
}

impl std::fmt::Debug for EnrollToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnrollToken(ca {}, secret hidden)", hex(&self.ca_fingerprint))
    }
}

impl EnrollToken {
    pub fn parse(s: &str) -> Result<EnrollToken, TlsError> {
        let bad = |why: &str| TlsError::Token(format!("{why} (expected stratus1.<64 hex digits>.<base64url secret>)"));
        let mut parts = s.trim().split('.');
        let (Some(prefix), Some(fp), Some(secret), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("wrong number of fields"));
        };
        if prefix != TOKEN_PREFIX {
            return Err(bad(&format!("unknown token format {prefix:?}")));
        }
        let fp = unhex(fp)
            .filter(|b| b.len() == 32)
            .ok_or_else(|| bad("the CA fingerprint is not 64 hex digits"))?;
        match B64.decode(secret) {
            Ok(b) if b.len() == SECRET_BYTES => {}
            _ => return Err(bad("the secret is not 32 bytes of base64url")),
        }
        let mut ca_fingerprint = [0u8; 32];
        ca_fingerprint.copy_from_slice(&fp);
        Ok(EnrollToken {
            ca_fingerprint,
            secret: secret.to_string(),
        })
    }
}

impl std::fmt::Display for EnrollToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{TOKEN_PREFIX}.{}.{}", hex(&self.ca_fingerprint), self.secret)
    }
}

/// The management server's CA and TLS identity (made fresh at start).
pub struct ManagementCa {
    pub ca_der: CertificateDer<'static>,
    pub server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ManagementCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManagementCa({})", hex(&self.fingerprint()))
    }
}

impl ManagementCa {
    /// A new CA and a server certificate for [`SERVER_NAME`] plus `extra_names`.
    pub fn generate(extra_names: &[String]) -> Result<ManagementCa, TlsError> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, PKCS_ED25519};
        let ca_key = KeyPair::generate_for(&PKCS_ED25519)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Stratus management CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let mut names = vec![SERVER_NAME.to_string()];
        names.extend(extra_names.iter().cloned());
        let key = KeyPair::generate_for(&PKCS_ED25519)?;
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "Stratus management server");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &issuer)?;

        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone(), ca_cert.der().clone()], key_der)?;
        Ok(ManagementCa {
            ca_der: ca_cert.der().clone(),
            server_config: Arc::new(server_config),
        })
    }

    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint(&self.ca_der)
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server_config.clone())
    }
}

/// Trusts exactly one CA, named by the SHA-256 of its certificate, which the
/// server sends along with its own. The chain, name and handshake signature
/// are then checked by webpki against that CA as the only root.
#[derive(Debug)]
pub struct PinnedCaVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl PinnedCaVerifier {
    pub fn new(pin: [u8; 32]) -> PinnedCaVerifier {
        PinnedCaVerifier {
            pin,
            provider: provider(),
        }
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates
            .iter()
            .find(|c| constant_time_eq(&fingerprint(c), &self.pin))
        else {
            return Err(rustls::Error::General(format!(
                "the management server's CA does not match the pinned fingerprint {}",
                hex(&self.pin)
            )));
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The agent's TLS connector: TLS 1.3, pinned CA, no client certificate.
pub fn agent_connector(pin: [u8; 32]) -> Result<tokio_rustls::TlsConnector, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous() // a custom verifier: pins the CA, still verifies chain and signatures
        .with_custom_certificate_verifier(Arc::new(PinnedCaVerifier::new(pin)))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

pub fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).expect("a valid DNS name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_print() {
        let s = SecretSource::seeded(1);
        let t = EnrollToken {
            ca_fingerprint: [0xab; 32],
            secret: s.secret(),
        };
        let text = t.to_string();
        assert!(text.starts_with("stratus1.abab"));
        assert_eq!(EnrollToken::parse(&text).unwrap(), t);
        for bad in [
            "",
            "stratus1",
            "stratus2.ab.cd",
            "stratus1.zz.AAAA",
            &format!("stratus1.{}.short", hex(&[1; 32])),
            &format!("{text}.extra"),
        ] {
            assert!(EnrollToken::parse(bad).is_err(), "{bad}");
        }
        assert!(!format!("{t:?}").contains(&t.secret));
    }

    #[test]
    fn secrets_compare_and_differ() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        let os = SecretSource::os();
        assert_ne!(os.secret(), os.secret());
        assert_eq!(SecretSource::seeded(4).secret(), SecretSource::seeded(4).secret());
    }

    #[test]
    fn makes_a_ca() {
        let ca = ManagementCa::generate(&["localhost".into()]).unwrap();
        assert_eq!(ca.fingerprint(), fingerprint(&ca.ca_der));
    }
}
