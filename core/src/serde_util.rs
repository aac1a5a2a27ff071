//! Serde forms that make snapshots canonical: hash maps are written as lists
//! sorted by key, so the same state always serializes to the same bytes (the
//! state hash that recovery is checked against depends on it).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BinaryHeap;
use std::hash::{BuildHasher, Hash};

/// `HashMap<K, V>` as a key-sorted list of pairs.
pub mod sorted_map {
    use super::*;
    use std::collections::HashMap;

    pub fn serialize<K, V, H, S>(m: &HashMap<K, V, H>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Ord,
        V: Serialize,
        S: Serializer,
    {
        let mut pairs: Vec<(&K, &V)> = m.iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        s.collect_seq(pairs)
    }

    pub fn deserialize<'de, K, V, H, D>(d: D) -> Result<HashMap<K, V, H>, D::Error>
    where
        K: DeserializeOwned + Eq + Hash,
        V: DeserializeOwned,
        H: BuildHasher + Default,
        D: Deserializer<'de>,
    {
        let pairs: Vec<(K, V)> = Vec::deserialize(d)?;
        let mut m = HashMap::with_capacity_and_hasher(pairs.len(), H::default());
        m.extend(pairs);
        Ok(m)
    }
}

/// `HashSet<K>` as a sorted list.
pub mod sorted_set {
    use super::*;
    use std::collections::HashSet;

    pub fn serialize<K, H, S>(m: &HashSet<K, H>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Ord,
        S: Serializer,
    {
        let mut keys: Vec<&K> = m.iter().collect();
        keys.sort_unstable();
        s.collect_seq(keys)
    }

    pub fn deserialize<'de, K, H, D>(d: D) -> Result<HashSet<K, H>, D::Error>
    where
        K: DeserializeOwned + Eq + Hash,
        H: BuildHasher + Default,
        D: Deserializer<'de>,
    {
        let keys: Vec<K> = Vec::deserialize(d)?;
        let mut m = HashSet::with_capacity_and_hasher(keys.len(), H::default());
        m.extend(keys);
        Ok(m)
    }
}

/// `BinaryHeap<T>` as a sorted list (its internal order depends on history).
pub mod sorted_heap {
    use super::*;

    pub fn serialize<T, S>(h: &BinaryHeap<T>, s: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize + Ord + Clone,
        S: Serializer,
    {
        s.collect_seq(h.clone().into_sorted_vec())
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<BinaryHeap<T>, D::Error>
    where
        T: DeserializeOwned + Ord,
        D: Deserializer<'de>,
    {
        Ok(BinaryHeap::from(Vec::<T>::deserialize(d)?))
    }
}

/// `BTreeMap<K, V>` as a list of pairs, for keys JSON cannot use (tuples).
pub mod pairs {
    use super::*;
    use std::collections::BTreeMap;

    pub fn serialize<K, V, S>(m: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize,
        V: Serialize,
        S: Serializer,
    {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: DeserializeOwned + Ord,
        V: DeserializeOwned,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// An IPv4 address always as dotted text: binary formats would otherwise write
/// a 4-tuple that a tagged enum's buffered decode cannot read back.
pub mod ip_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::net::Ipv4Addr;

    pub fn serialize<S: Serializer>(ip: &Ipv4Addr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(ip)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv4Addr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `ip_text` for an optional address.
pub mod opt_ip_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::net::Ipv4Addr;

    pub fn serialize<S: Serializer>(ip: &Option<Ipv4Addr>, s: S) -> Result<S::Ok, S::Error> {
        match ip {
            Some(ip) => s.collect_str(ip),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ipv4Addr>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| t.parse().map_err(serde::de::Error::custom)).transpose()
    }
}
