//! TLS for the host link, both ends: TLS 1.3 only (rustls, ring provider).
//!
//! The management server serves a certificate for [`SERVER_NAME`] signed by
//! its own CA and sends that CA along ([`server_config`]); the agent trusts
//! exactly that CA, named by the SHA-256 fingerprint its enrollment token
//! carries ([`PinnedCaVerifier`], [`agent_connector`]): no system roots, no
//! trust on first use.

use ring::digest::{SHA256, digest};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// The name in the management server's certificate; agents ask for it (SNI)
/// whatever address they dial, since trust comes from the pinned CA.
pub const SERVER_NAME: &str = "stratus-management";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("invalid enrollment token: {0}")]
    Token(String),
}

/// The crypto provider of both ends (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// SHA-256 of a DER certificate.
pub fn fingerprint(cert_der: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, cert_der).as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Parses a 64-digit hex SHA-256 fingerprint.
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let b = unhex(s)?;
    b.try_into().ok()
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
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

/// The management server's TLS configuration: TLS 1.3, no client
/// certificates, serving `chain` (its certificate, then the CA's, so agents
/// can find the CA they pin) with `key`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
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

/// The TLS failure inside an I/O error from a handshake, if that is what it
/// is: a certificate the agent must not trust is fatal, not a reason to retry.
pub fn tls_failure(e: &std::io::Error) -> Option<String> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(inner.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_and_fingerprints_parse() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        let fp = fingerprint(b"certificate");
        assert_eq!(parse_fingerprint(&hex(&fp)), Some(fp));
        assert_eq!(parse_fingerprint("abc"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
        assert_eq!(secret_hash("s"), fingerprint(b"s"));
    }
}
