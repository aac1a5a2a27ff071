//! The capacity invariant, checked from scratch: every counter equals the sum
//! over the VMs and volumes that should weigh on it, and every aggregate equals
//! the sum of its children.

use super::Cloud;
use crate::capacity::{Compute, Footprint, Slot};
use crate::vm::Charge;

#[derive(Clone, Debug, Default)]
pub struct AuditReport {
    pub violations: Vec<String>,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

fn add(c: &mut Compute, fp: Footprint, slot: Slot) {
    let pick = |x: &mut crate::capacity::Counter, v: u64| match slot {
        Slot::Used => x.used += v,
        Slot::Reserved => x.reserved += v,
    };
    pick(&mut c.cpu, fp.cpu_mhz);
    pick(&mut c.cores, fp.cores);
    pick(&mut c.mem, fp.mem_bytes);
}

impl Cloud {
    pub fn audit(&self) -> AuditReport {
        let mut v = Vec::new();
        let nh = self.inv.hosts.len();
        let mut hosts = vec![Compute::default(); nh];
        let mut guests = vec![0u32; nh];
        for (_, vm) in self.vms() {
            let fp = vm.size.footprint();
            match vm.charge {
                Charge::None => {}
                Charge::Used { host } => {
                    add(&mut hosts[host.ix()], fp, Slot::Used);
                    guests[host.ix()] += 1;
                }
                Charge::Reserved { host, until } => {
                    add(&mut hosts[host.ix()], fp, Slot::Reserved);
                    if until <= self.now() {
                        v.push(format!("VM {} holds a reservation that expired at {until}", vm.name));
                    }
                }
                Charge::Migrating { from, to } => {
                    add(&mut hosts[from.ix()], fp, Slot::Used);
                    add(&mut hosts[to.ix()], fp, Slot::Reserved);
                    guests[from.ix()] += 1;
                    guests[to.ix()] += 1;
                }
            }
        }
        let mut clusters = vec![Compute::default(); self.inv.clusters.len()];
        let mut pods = vec![Compute::default(); self.inv.pods.len()];
        let mut zones = vec![Compute::default(); self.inv.zones.len()];
        for (h, expect) in hosts.iter().enumerate() {
            let got = &self.book.host[h];
            let name = &self.inv.hosts[h].name;
            for (what, e, g) in [
                ("cpu", expect.cpu, got.cpu),
                ("cores", expect.cores, got.cores),
                ("memory", expect.mem, got.mem),
            ] {
                if e.used != g.used || e.reserved != g.reserved {
                    v.push(format!(
                        "host {name} {what}: book used/reserved {}/{} but VMs sum to {}/{}",
                        g.used, g.reserved, e.used, e.reserved
                    ));
                }
            }
            if guests[h] != self.book.host_guests[h] {
                v.push(format!(
                    "host {name}: book counts {} guests, VMs say {}",
                    self.book.host_guests[h], guests[h]
                ));
            }
            let (c, p, z) = self.book.parents[h];
            for agg in [&mut clusters[c.ix()], &mut pods[p.ix()], &mut zones[z.ix()]] {
                for (a, b) in [
                    (&mut agg.cpu, got.cpu),
                    (&mut agg.cores, got.cores),
                    (&mut agg.mem, got.mem),
                ] {
                    a.total += b.total;
                    a.used += b.used;
                    a.reserved += b.reserved;
                }
            }
        }
        for (kind, expect, got) in [
            ("cluster", &clusters, &self.book.cluster),
            ("pod", &pods, &self.book.pod),
            ("zone", &zones, &self.book.zone),
        ] {
            for (i, (e, g)) in expect.iter().zip(got.iter()).enumerate() {
                if e != g {
                    v.push(format!(
                        "{kind} #{i}: aggregate {g:?} differs from the sum of its hosts {e:?}"
                    ));
                }
            }
        }
        let mut pools = vec![(0u64, 0u64); self.inv.pools.len()];
        for (_, vol) in self.volumes() {
            if let Some(p) = vol.counts_on_pool() {
                pools[p.ix()].0 += vol.size_bytes;
                pools[p.ix()].1 += vol.physical_bytes;
            }
            if let Some(vm) = vol.vm
                && self.vms.get(vm.0).is_none()
            {
                v.push(format!("volume {} belongs to a VM that no longer exists", vol.name));
            }
        }
        for (i, e) in pools.iter().enumerate() {
            let g = self.book.pool[i];
            if (g.allocated, g.used) != *e {
                v.push(format!(
                    "pool {}: book allocated/used {}/{} but volumes sum to {}/{}",
                    self.inv.pools[i].name, g.allocated, g.used, e.0, e.1
                ));
            }
        }
        // Occupancy mirrors Used and Migrating(from) charges.
        let mut occ = 0usize;
        for (_, vm) in self.vms() {
            if let Charge::Used { host } | Charge::Migrating { from: host, .. } = vm.charge {
                occ += 1;
                if self.occupancy.host(vm.account, host) == 0 {
                    v.push(format!(
                        "VM {} is missing from the occupancy of host {}",
                        vm.name,
                        self.inv.host(host).name
                    ));
                }
            }
        }
        for (h, list) in self.host_vms.iter().enumerate() {
            for i in list {
                let ok = self.vms.get(i.0).is_some_and(|v| v.charge.hosts().any(|x| x.ix() == h));
                if !ok {
                    v.push(format!("host index {h} lists VM #{} which is not charged there", i.0));
                }
            }
        }
        let counted: u32 = self.occupancy_host_total();
        if counted as usize != occ {
            v.push(format!("occupancy counts {counted} VMs, {occ} are active"));
        }
        AuditReport { violations: v }
    }

    fn occupancy_host_total(&self) -> u32 {
        self.occupancy.host_total()
    }
}
