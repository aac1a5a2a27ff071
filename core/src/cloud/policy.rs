//! Settings resolved per cluster and pool, cached for the allocator's hot path.
//! Rebuilt whenever a setting changes.

use crate::allocator::{Algorithm, OrderBy};
use crate::inventory::{Inventory, PlannerKind, TagId};
use crate::settings::{Scope, Settings};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GlobalPolicy {
    pub algorithm: Algorithm,
    pub planner: PlannerKind,
    pub order_by: OrderBy,
    pub pods_ordered: bool,
    pub dispersion_weight: f64,
    pub ha_tag: Option<TagId>,
    pub ha_tag_name: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct ClusterPolicy {
    pub cpu_factor: f64,
    pub mem_factor: f64,
    pub cpu_disable: f64,
    pub mem_disable: f64,
    pub cpu_notify: f64,
    pub mem_notify: f64,
    pub storage_notify: f64,
    pub storage_allocated_notify: f64,
    pub local_storage_notify: f64,
    pub thresholds_enabled: bool,
    pub skip_counting_ms: u64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct PoolPolicy {
    pub factor: f64,
    pub used_disable: f64,
    pub alloc_disable: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Policy {
    pub global: GlobalPolicy,
    pub clusters: Vec<ClusterPolicy>,
    pub pools: Vec<PoolPolicy>,
}

impl Policy {
    pub fn resolve(s: &Settings, inv: &mut Inventory) -> Policy {
        let g = Scope::Global;
        let order_by = match s.text("host.capacityType.to.order.clusters", g).as_str() {
            "RAM" => OrderBy::Ram,
            "COMBINED" => OrderBy::Combined {
                cpu_weight: s.f64("host.capacityType.to.order.clusters.cputomemoryweight", g),
            },
            _ => OrderBy::Cpu,
        };
        let ha_tag_name = s.text("ha.tag", g);
        let ha_tag = (!ha_tag_name.trim().is_empty()).then(|| inv.tags.intern(&ha_tag_name));
        let global = GlobalPolicy {
            algorithm: Algorithm::parse(&s.text("vm.allocation.algorithm", g)).unwrap_or(Algorithm::Random),
            planner: PlannerKind::parse(&s.text("vm.deployment.planner", g)).unwrap_or(PlannerKind::FirstFit),
            order_by,
            pods_ordered: s.bool("apply.allocation.algorithm.to.pods", g),
            dispersion_weight: s.f64("vm.user.dispersion.weight", g),
            ha_tag,
            ha_tag_name,
        };
        let clusters = (0..inv.clusters.len()).map(|i| Self::cluster(s, inv, i)).collect();
        let pools = (0..inv.pools.len()).map(|i| Self::pool(s, inv, i)).collect();
        Policy {
            global,
            clusters,
            pools,
        }
    }

    pub fn cluster(s: &Settings, inv: &Inventory, i: usize) -> ClusterPolicy {
        let cl = &inv.clusters[i];
        let c = Scope::Cluster(cl.id);
        let z = Scope::Zone(inv.zones[cl.zone.ix()].id);
        ClusterPolicy {
            cpu_factor: s.f64("cpu.overprovisioning.factor", c),
            mem_factor: s.f64("mem.overprovisioning.factor", c),
            cpu_disable: s.f64("cluster.cpu.allocated.capacity.disablethreshold", c),
            mem_disable: s.f64("cluster.memory.allocated.capacity.disablethreshold", c),
            cpu_notify: s.f64("cluster.cpu.allocated.capacity.notificationthreshold", c),
            mem_notify: s.f64("cluster.memory.allocated.capacity.notificationthreshold", c),
            storage_notify: s.f64("cluster.storage.capacity.notificationthreshold", c),
            storage_allocated_notify: s.f64("cluster.storage.allocated.capacity.notificationthreshold", c),
            local_storage_notify: s.f64("cluster.localStorage.capacity.notificationthreshold", c),
            thresholds_enabled: s.bool("cluster.threshold.enabled", z),
            skip_counting_ms: s.i64("capacity.skipcounting.hours", c).max(0) as u64 * 1000,
        }
    }

    pub fn pool(s: &Settings, inv: &Inventory, i: usize) -> PoolPolicy {
        let p = &inv.pools[i];
        let z = Scope::Zone(inv.zones[p.zone.ix()].id);
        PoolPolicy {
            factor: s.f64("storage.overprovisioning.factor", Scope::Pool(p.id)),
            used_disable: s.f64("pool.storage.capacity.disablethreshold", z),
            alloc_disable: s.f64("pool.storage.allocated.capacity.disablethreshold", z),
        }
    }
}
