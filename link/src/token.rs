//! The enrollment token: `stratus1.<SHA-256 of the management CA certificate,
//! 64 hex digits>.<32 random bytes, base64url>`. The agent pins the CA by the
//! fingerprint; the secret authenticates it once. The management server
//! keeps only the secret's SHA-256.

use crate::tls::{TlsError, hex, unhex};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// The token format's name, its first field.
pub const TOKEN_PREFIX: &str = "stratus1";
/// Random bytes in a token's secret (and in a host's secret).
pub const SECRET_BYTES: usize = 32;

/// The text form of a secret: base64url without padding.
pub fn encode_secret(bytes: &[u8; SECRET_BYTES]) -> String {
    B64.encode(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_print() {
        let t = EnrollToken {
            ca_fingerprint: [0xab; 32],
            secret: encode_secret(&[7; SECRET_BYTES]),
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
}
