//! The management side's TLS identity and secrets: a fresh CA (Ed25519,
//! rcgen) with a server certificate for `stratus-management`, and where
//! enrollment secrets, host secrets and instance names come from. What both
//! ends must agree on (the verifier, the token format) is `stratus-link`.

use std::sync::{Arc, Mutex};
use stratus_core::rng::DetRng;
use stratus_link::rustls;
use stratus_link::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use stratus_link::tls::{self, SERVER_NAME, TlsError};
use stratus_link::token::{SECRET_BYTES, encode_secret};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("certificate generation failed: {0}")]
    Cert(#[from] rcgen::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Where secrets come from: the OS, or a seeded stream for reproducible
/// simulations (never in production: a real server uses `Os`).
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
    /// A fresh random secret, in the token format's text form.
    pub fn secret(&self) -> String {
        let mut b = [0u8; SECRET_BYTES];
        self.fill(&mut b);
        encode_secret(&b)
    }
}

/// The management server's CA and TLS identity. The CA (key and certificate)
/// is made once and kept in the Store ([`StoredCa`]), so a restarted server
/// keeps the fingerprint its agents pinned; the server certificate is signed
/// afresh by it at every start.
pub struct ManagementCa {
    pub ca_der: CertificateDer<'static>,
    pub server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ManagementCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManagementCa({})", tls::hex(&self.fingerprint()))
    }
}

/// The CA's durable form: its certificate and its private key (PKCS#8), both DER.
/// Secret: it lives in the Store's meta table, never on the wire.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCa {
    pub ca_cert_der: Vec<u8>,
    pub ca_key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for StoredCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StoredCa({}, key hidden)",
            tls::hex(&tls::fingerprint(&self.ca_der()))
        )
    }
}

impl StoredCa {
    /// A new CA (Ed25519).
    pub fn generate() -> Result<StoredCa, CaError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        let cert = ca_params()?.self_signed(&key)?;
        Ok(StoredCa {
            ca_cert_der: cert.der().to_vec(),
            ca_key_pkcs8: key.serialize_der(),
        })
    }

    fn ca_der(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.ca_cert_der.clone())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the CA serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<StoredCa, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("the stored management CA does not decode: {e}"))
    }
}

/// The CA certificate's parameters (the same at every start, so a stored key
/// signs as the same issuer).
fn ca_params() -> Result<rcgen::CertificateParams, rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Stratus management CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    Ok(ca_params)
}

impl ManagementCa {
    /// A new CA and a server certificate for [`SERVER_NAME`] plus `extra_names`.
    pub fn generate(extra_names: &[String]) -> Result<ManagementCa, CaError> {
        ManagementCa::from_stored(&StoredCa::generate()?, extra_names)
    }

    /// The identity of a stored CA: a fresh server certificate for
    /// [`SERVER_NAME`] plus `extra_names`, signed by it.
    pub fn from_stored(stored: &StoredCa, extra_names: &[String]) -> Result<ManagementCa, CaError> {
        use rcgen::{CertificateParams, DnType, KeyPair, KeyUsagePurpose, PKCS_ED25519};
        let ca_key = KeyPair::from_der_and_sign_algo(
            &PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(stored.ca_key_pkcs8.clone())),
            &PKCS_ED25519,
        )?;
        let issuer = rcgen::Issuer::new(ca_params()?, ca_key);
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
        let ca_der = stored.ca_der();
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let server_config = tls::server_config(vec![cert.der().clone(), ca_der.clone()], key_der)?;
        Ok(ManagementCa { ca_der, server_config })
    }

    pub fn fingerprint(&self) -> [u8; 32] {
        tls::fingerprint(&self.ca_der)
    }

    pub fn acceptor(&self) -> stratus_link::tokio_rustls::TlsAcceptor {
        stratus_link::tokio_rustls::TlsAcceptor::from(self.server_config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_link::token::EnrollToken;

    #[test]
    fn makes_a_ca() {
        let ca = ManagementCa::generate(&["localhost".into()]).unwrap();
        assert_eq!(ca.fingerprint(), tls::fingerprint(&ca.ca_der));
    }

    #[test]
    fn a_stored_ca_keeps_its_fingerprint() {
        let stored = StoredCa::generate().unwrap();
        let back = StoredCa::from_bytes(&stored.to_bytes()).unwrap();
        assert_eq!(back, stored);
        let a = ManagementCa::from_stored(&stored, &[]).unwrap();
        let b = ManagementCa::from_stored(&back, &["localhost".into()]).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), ManagementCa::generate(&[]).unwrap().fingerprint());
        assert!(StoredCa::from_bytes(b"nope").is_err());
    }

    #[test]
    fn secrets_differ_or_repeat_by_seed_and_fit_tokens() {
        let os = SecretSource::os();
        assert_ne!(os.secret(), os.secret());
        assert_eq!(SecretSource::seeded(4).secret(), SecretSource::seeded(4).secret());
        let t = EnrollToken {
            ca_fingerprint: [1; 32],
            secret: SecretSource::seeded(1).secret(),
        };
        assert_eq!(EnrollToken::parse(&t.to_string()).unwrap(), t);
    }
}
