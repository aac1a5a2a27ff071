//! Removing hosts, clusters and pods from the ledger's point of view: what
//! still holds them (a refusal names it), and what the book and the VM records
//! must forget. The inventory side (tombstones) is `inventory::remove`.

use super::Cloud;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::inventory::{ClusterTombstone, HostTombstone, PodTombstone, PoolScope};
use crate::vm::Charge;

/// At most this many names in a refusal (then "and N more").
const NAMED: usize = 5;

fn list(kind: &str, names: &[String]) -> String {
    let shown = names.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
    let more = names.len().saturating_sub(NAMED);
    if more > 0 {
        format!("{} {kind}: {shown} and {more} more", names.len())
    } else {
        format!("{} {kind}: {shown}", names.len())
    }
}

impl Cloud {
    /// What keeps host `h` from being removed: VMs the ledger places on it
    /// (running, starting, stopping, migrating from or to it, Unknown there)
    /// and volumes on its local storage. A stopped VM's reservation there, or a
    /// VM that merely last ran there, does not count (removal drops them).
    pub fn host_removal_blockers(&self, h: HostIdx) -> Vec<String> {
        let mut why = Vec::new();
        let vms: Vec<String> = self
            .vms()
            .filter(|(_, v)| {
                v.host == Some(h) || matches!(v.charge, Charge::Used { .. } | Charge::Migrating { .. } if v.charge.hosts().any(|x| x == h))
            })
            .map(|(_, v)| v.name.clone())
            .collect();
        if !vms.is_empty() {
            why.push(list("VM(s) still on it", &vms));
        }
        let local = &self.inv.host_local_pools[h.ix()];
        let vols: Vec<String> = self
            .volumes()
            .filter(|(_, v)| v.pool.is_some_and(|p| local.contains(&p)))
            .map(|(_, v)| v.name.clone())
            .collect();
        if !vols.is_empty() {
            why.push(list("volume(s) on its local storage", &vols));
        }
        why
    }

    /// deleteHost in the ledger: refused (nothing changes) while anything
    /// holds the host; else stopped VMs' reservations on it and `last_host`
    /// pointers to it are dropped, it leaves the inventory, and its capacity
    /// (and its local pools') leaves every total.
    pub fn remove_host(&mut self, id: HostId) -> CoreResult<HostTombstone> {
        let h = self.host_idx(id)?;
        let why = self.host_removal_blockers(h);
        if !why.is_empty() {
            return Err(CoreError::Refused(format!(
                "Unable to delete host {}: {}",
                self.inv.host(h).name,
                why.join("; ")
            )));
        }
        let reserved: Vec<VmIdx> = self.vms_on(h).to_vec();
        for i in reserved {
            self.set_charge(i, Charge::None);
        }
        let pointing: Vec<VmIdx> = self
            .vms()
            .filter(|(_, v)| v.last_host == Some(h))
            .map(|(i, _)| i)
            .collect();
        for i in pointing {
            self.vms.get_mut(i.0).expect("live vm").last_host = None;
        }
        Ok(self.tombstone_host(h))
    }

    /// The inventory and book side of a removal (no checks: `remove_host`
    /// or a what-if fork that emptied the host first).
    pub(crate) fn tombstone_host(&mut self, h: HostIdx) -> HostTombstone {
        let t = self.inv.remove_host(h);
        self.refresh_host_total(h);
        for p in &t.local_pools {
            self.refresh_pool_total(*p);
        }
        t
    }

    pub(crate) fn untombstone_host(&mut self, t: HostTombstone) {
        let (h, pools) = (t.host, t.local_pools.clone());
        self.inv.restore_host(t);
        self.refresh_host_total(h);
        for p in pools {
            self.refresh_pool_total(p);
        }
    }

    /// deleteCluster: refused while it has hosts (CloudStack's rule) or its
    /// own primary storage holds volumes; its empty cluster-scope pools go
    /// with it (Stratus has no deleteStoragePool yet).
    pub fn remove_cluster(&mut self, id: ClusterId) -> CoreResult<ClusterTombstone> {
        let c = self.cluster_idx(id)?;
        let cl = self.inv.cluster(c);
        if !cl.hosts.is_empty() {
            let names: Vec<String> = cl.hosts.iter().map(|h| self.inv.host(*h).name.clone()).collect();
            return Err(CoreError::Refused(format!(
                "Cluster {} cannot be removed: it still has {}",
                cl.name,
                list("host(s)", &names)
            )));
        }
        let own: Vec<PoolIdx> = self.inv.cluster_pools[c.ix()]
            .iter()
            .copied()
            .filter(|p| self.inv.pool(*p).scope == PoolScope::Cluster(c))
            .collect();
        let vols: Vec<String> = self
            .volumes()
            .filter(|(_, v)| v.pool.is_some_and(|p| own.contains(&p)))
            .map(|(_, v)| v.name.clone())
            .collect();
        if !vols.is_empty() {
            return Err(CoreError::Refused(format!(
                "Cluster {} cannot be removed: its primary storage still holds {}",
                cl.name,
                list("volume(s)", &vols)
            )));
        }
        Ok(self.tombstone_cluster(c))
    }

    pub(crate) fn tombstone_cluster(&mut self, c: ClusterIdx) -> ClusterTombstone {
        let t = self.inv.remove_cluster(c);
        for p in &t.own_pools {
            self.refresh_pool_total(*p);
        }
        t
    }

    pub(crate) fn untombstone_cluster(&mut self, t: ClusterTombstone) {
        let pools = t.own_pools.clone();
        self.inv.restore_cluster(t);
        for p in pools {
            self.refresh_pool_total(p);
        }
    }

    /// deletePod: refused while it has clusters.
    pub fn remove_pod(&mut self, id: PodId) -> CoreResult<PodTombstone> {
        let p = self.pod_idx(id)?;
        let clusters = &self.inv.pod_clusters[p.ix()];
        if !clusters.is_empty() {
            let names: Vec<String> = clusters.iter().map(|c| self.inv.cluster(*c).name.clone()).collect();
            return Err(CoreError::Refused(format!(
                "Pod {} cannot be removed: it still has {}",
                self.inv.pod(p).name,
                list("cluster(s)", &names)
            )));
        }
        Ok(self.inv.remove_pod(p))
    }
}
