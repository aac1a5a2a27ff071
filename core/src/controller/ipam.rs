//! Guest IP and MAC allocation. An address is never handed out twice while in use.

use crate::ids::NetworkIdx;
use crate::inventory::Network;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ipam {
    used: BTreeMap<NetworkIdx, BTreeSet<u32>>,
    next_mac: u32,
    /// Per network, an address below which every host address is taken (in
    /// use, or the gateway): the search for the lowest free address starts
    /// there, so filling a large network does not walk its addresses in use
    /// at every allocation. Derived, not state: not serialized (the snapshot
    /// bytes are unchanged); a missing entry means the network's first address.
    #[serde(skip)]
    taken_below: BTreeMap<NetworkIdx, u32>,
}

impl Ipam {
    /// Lowest free host address after the gateway, or None when the network is full.
    pub fn allocate(&mut self, n: NetworkIdx, net: &Network) -> Option<(Ipv4Addr, [u8; 6])> {
        let used = self.used.entry(n).or_default();
        let base = u32::from(net.cidr.network());
        let count = net.cidr.host_count() as u32;
        let gw = u32::from(net.gateway);
        let first = base + 1;
        let from = self.taken_below.get(&n).map_or(first, |&h| h.max(first));
        let ip = lowest_free(used, from, base + count, gw)?;
        used.insert(ip);
        self.taken_below.insert(n, ip.saturating_add(1));
        self.next_mac += 1;
        let m = self.next_mac.to_be_bytes();
        Some((Ipv4Addr::from(ip), [0x02, 0x00, m[0], m[1], m[2], m[3]]))
    }

    pub fn release(&mut self, n: NetworkIdx, ip: Ipv4Addr) {
        if let Some(s) = self.used.get_mut(&n) {
            s.remove(&u32::from(ip));
        }
        if let Some(h) = self.taken_below.get_mut(&n) {
            *h = (*h).min(u32::from(ip));
        }
    }

    /// Marks an address and MAC a VM already holds as taken (a controller
    /// built from an existing inventory, e.g. an export).
    pub fn hold(&mut self, n: NetworkIdx, ip: Ipv4Addr, mac: [u8; 6]) {
        self.used.entry(n).or_default().insert(u32::from(ip));
        let serial = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
        if mac[0] == 0x02 && mac[1] == 0x00 {
            self.next_mac = self.next_mac.max(serial);
        }
    }

    pub fn in_use(&self, n: NetworkIdx) -> usize {
        self.used.get(&n).map_or(0, |s| s.len())
    }

    /// Every address in use, for invariant checks.
    pub fn all(&self) -> impl Iterator<Item = (NetworkIdx, Ipv4Addr)> + '_ {
        self.used
            .iter()
            .flat_map(|(n, s)| s.iter().map(move |ip| (*n, Ipv4Addr::from(*ip))))
    }
}

/// The lowest address in `first..=last` that is neither `skip` nor in
/// `used`. Walks the ordered set once alongside the candidates (a large
/// network's allocation costs one pass over its addresses in use, not a set
/// lookup per candidate).
fn lowest_free(used: &BTreeSet<u32>, first: u32, last: u32, skip: u32) -> Option<u32> {
    if first > last {
        return None;
    }
    let mut taken = used.range(first..=last).peekable();
    let mut cand = first;
    loop {
        while taken.next_if(|u| **u < cand).is_some() {}
        let in_use = taken.next_if_eq(&&cand).is_some();
        if cand != skip && !in_use {
            return Some(cand);
        }
        if cand == last {
            return None;
        }
        cand += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(cidr: &str, gateway: [u8; 4]) -> Network {
        let (addr, prefix) = cidr.split_once('/').unwrap();
        Network {
            id: crate::ids::NetworkId(uuid::Uuid::nil()),
            name: "n".into(),
            zone: crate::ids::ZoneIdx(0),
            cidr: crate::inventory::Cidr {
                addr: addr.parse().unwrap(),
                prefix: prefix.parse().unwrap(),
            },
            gateway: Ipv4Addr::from(gateway),
            account: None,
            vlan: None,
        }
    }

    proptest! {
        /// Allocations and releases in any order hand out exactly what a
        /// search from the network's first address would (the hint is only
        /// where the search starts), also after a snapshot drops the hints.
        #[test]
        fn allocation_is_the_lowest_free_address(
            ops in proptest::collection::vec((any::<bool>(), 0usize..40), 0..200),
            gw_last in 1u8..20,
        ) {
            let n = NetworkIdx(0);
            let net = net("10.9.0.0/26", [10, 9, 0, gw_last]);
            let mut ipam = Ipam::default();
            let mut held: Vec<Ipv4Addr> = Vec::new();
            for (i, (alloc, k)) in ops.into_iter().enumerate() {
                if i % 50 == 49 {
                    ipam.taken_below.clear();
                }
                if alloc || held.is_empty() {
                    let base = u32::from(net.cidr.network());
                    let used = ipam.used.get(&n).cloned().unwrap_or_default();
                    let want = (base + 1..=base + 62).find(|ip| *ip != u32::from(net.gateway) && !used.contains(ip));
                    let got = ipam.allocate(n, &net).map(|(ip, _)| u32::from(ip));
                    prop_assert_eq!(got, want);
                    if let Some(ip) = got {
                        held.push(Ipv4Addr::from(ip));
                    }
                } else {
                    let ip = held.swap_remove(k % held.len());
                    ipam.release(n, ip);
                }
            }
        }

        #[test]
        fn lowest_free_is_the_first_candidate_not_taken(
            used in proptest::collection::btree_set(0u32..80, 0..70),
            first in 0u32..70,
            len in 0u32..20,
            skip in 0u32..80,
        ) {
            let last = first + len;
            let slow = (first..=last).find(|ip| *ip != skip && !used.contains(ip));
            prop_assert_eq!(lowest_free(&used, first, last, skip), slow);
            prop_assert_eq!(lowest_free(&used, last + 1, last, skip), None);
        }
    }
}
