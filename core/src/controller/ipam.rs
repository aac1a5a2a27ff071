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
}

impl Ipam {
    /// Lowest free host address after the gateway, or None when the network is full.
    pub fn allocate(&mut self, n: NetworkIdx, net: &Network) -> Option<(Ipv4Addr, [u8; 6])> {
        let used = self.used.entry(n).or_default();
        let base = u32::from(net.cidr.network());
        let count = net.cidr.host_count() as u32;
        let gw = u32::from(net.gateway);
        let ip = (1..=count)
            .map(|o| base + o)
            .find(|ip| *ip != gw && !used.contains(ip))?;
        used.insert(ip);
        self.next_mac += 1;
        let m = self.next_mac.to_be_bytes();
        Some((Ipv4Addr::from(ip), [0x02, 0x00, m[0], m[1], m[2], m[3]]))
    }

    pub fn release(&mut self, n: NetworkIdx, ip: Ipv4Addr) {
        if let Some(s) = self.used.get_mut(&n) {
            s.remove(&u32::from(ip));
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
