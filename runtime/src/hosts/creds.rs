//! What the gateway keeps in the Store's meta table so a restarted server
//! needs no re-enrollment: the management CA (`gateway/ca`), each enrolled
//! host's secret hash and facts (`agent/<host id>`), and each enrollment token
//! by the hash of its secret (`token/<sha-256 hex>`). Secrets themselves are
//! never stored, only their SHA-256.

use super::ca::{CaError, ManagementCa, StoredCa};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use stratus_core::ids::HostId;
use stratus_link::tls;
use stratus_wire::HostFacts;

pub(crate) const CA_KEY: &str = "gateway/ca";
const AGENT_PREFIX: &str = "agent/";
const TOKEN_PREFIX: &str = "token/";

/// An enrolled host's credentials.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct HostAuth {
    #[serde(with = "hex32")]
    pub secret_hash: [u8; 32],
    pub facts: HostFacts,
}

/// An enrollment token (by the hash of its secret).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TokenEntry {
    pub host: HostId,
    pub used: bool,
}

/// Credentials loaded from the Store.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub hosts: BTreeMap<HostId, HostAuth>,
    pub tokens: BTreeMap<[u8; 32], TokenEntry>,
}

/// The stored CA, or a new one (stored before it is used).
pub(crate) async fn load_or_make_ca(store: &Store, names: &[String]) -> Result<(ManagementCa, bool), String> {
    let stored = match store.get_meta(CA_KEY).await.map_err(|e| e.to_string())? {
        Some(bytes) => (StoredCa::from_bytes(&bytes)?, false),
        None => {
            let ca = StoredCa::generate().map_err(|e: CaError| e.to_string())?;
            store
                .put_meta(CA_KEY, &ca.to_bytes())
                .await
                .map_err(|e| e.to_string())?;
            (ca, true)
        }
    };
    let ca = ManagementCa::from_stored(&stored.0, names).map_err(|e| e.to_string())?;
    Ok((ca, stored.1))
}

pub(crate) async fn load(store: &Store) -> Result<Loaded, String> {
    let mut out = Loaded::default();
    for (key, value) in store.list_meta(AGENT_PREFIX).await.map_err(|e| e.to_string())? {
        let host: HostId = key[AGENT_PREFIX.len()..]
            .parse()
            .map(HostId)
            .map_err(|e| format!("meta {key}: bad host id: {e}"))?;
        let auth: HostAuth = serde_json::from_slice(&value).map_err(|e| format!("meta {key}: {e}"))?;
        out.hosts.insert(host, auth);
    }
    for (key, value) in store.list_meta(TOKEN_PREFIX).await.map_err(|e| e.to_string())? {
        let hash = unhex32(&key[TOKEN_PREFIX.len()..]).ok_or_else(|| format!("meta {key}: bad token hash"))?;
        let t: TokenEntry = serde_json::from_slice(&value).map_err(|e| format!("meta {key}: {e}"))?;
        out.tokens.insert(hash, t);
    }
    Ok(out)
}

pub(crate) async fn save_host(store: &Store, host: HostId, auth: &HostAuth) -> Result<(), String> {
    let value = serde_json::to_vec(auth).expect("credentials serialize");
    store
        .put_meta(&format!("{AGENT_PREFIX}{host}"), &value)
        .await
        .map_err(|e| e.to_string())
}

/// A removed host's stored secret and tokens go (deleteHost): its agent can
/// neither `hello` nor enroll again.
pub(crate) async fn forget_host(store: &Store, host: HostId, tokens: &[[u8; 32]]) -> Result<(), String> {
    store
        .delete_meta(&format!("{AGENT_PREFIX}{host}"))
        .await
        .map_err(|e| e.to_string())?;
    for hash in tokens {
        store
            .delete_meta(&format!("{TOKEN_PREFIX}{}", tls::hex(hash)))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub(crate) async fn save_token(store: &Store, hash: &[u8; 32], t: &TokenEntry) -> Result<(), String> {
    let value = serde_json::to_vec(t).expect("tokens serialize");
    store
        .put_meta(&format!("{TOKEN_PREFIX}{}", tls::hex(hash)), &value)
        .await
        .map_err(|e| e.to_string())
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&stratus_link::tls::hex(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        super::unhex32(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_as_hex() {
        let h = [0xab; 32];
        assert_eq!(unhex32(&tls::hex(&h)), Some(h));
        assert_eq!(unhex32("abc"), None);
        assert_eq!(unhex32(&"zz".repeat(32)), None);
        let auth = HostAuth {
            secret_hash: h,
            facts: HostFacts {
                cpu_cores: 1,
                cpu_mhz: 2,
                memory_bytes: 3,
                hypervisor_version: "x".into(),
                ..Default::default()
            },
        };
        let back: HostAuth = serde_json::from_slice(&serde_json::to_vec(&auth).unwrap()).unwrap();
        assert_eq!(back.secret_hash, h);
        assert_eq!(back.facts, auth.facts);
    }
}
