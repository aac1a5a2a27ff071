//! Why a zone, pod, cluster, host or pool was not chosen. `Reject` is small and
//! `Copy` so the fast path records nothing on the heap; it is rendered with
//! names and numbers only when an explanation is asked for.

use crate::capacity::Counter;
use crate::ids::*;
use crate::inventory::{HostStatus, Hypervisor, Inventory, PoolState, ResourceState, TagSet};
use crate::units::{Gib, MIB};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resource {
    Cpu,
    Memory,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reject {
    ZoneDisabled,
    PodDisabled,
    ClusterDisabled,
    Avoided,
    NotInZone,
    HypervisorMismatch {
        cluster: Hypervisor,
        needed: Hypervisor,
    },
    /// `allocated + needs` over `total` would pass the cluster's disable threshold.
    ClusterThreshold {
        cluster: ClusterIdx,
        resource: Resource,
        allocated: u64,
        total: u64,
        needs: u64,
        threshold: f64,
    },
    VolumeUnreachable {
        pool: PoolIdx,
    },
    NoPool {
        disk: usize,
    },
    NoHostFits,
    HostStatus(HostStatus),
    HostResourceState(ResourceState),
    HaTagReserved,
    HaTagRequired,
    HostTags,
    CpuCores {
        host_cores: u32,
        needs: u32,
    },
    CpuSpeed {
        host_mhz: u32,
        needs: u32,
    },
    MaxGuests {
        running: u32,
        limit: u32,
    },
    AntiAffinity {
        group: AffinityGroupIdx,
        vm: VmIdx,
    },
    Affinity {
        group: AffinityGroupIdx,
        host: HostIdx,
    },
    CpuCapacity {
        allocated: u64,
        total: u64,
        needs: u64,
    },
    MemoryCapacity {
        allocated: u64,
        total: u64,
        needs: u64,
    },
    NoLocalPool {
        disk: usize,
    },
    PoolState(PoolState),
    PoolNotShared,
    PoolTags {
        disk: usize,
    },
    PoolUsedThreshold {
        used: u64,
        total: u64,
        threshold: f64,
    },
    PoolAllocatedThreshold {
        allocated: u64,
        total: u64,
        needs: u64,
        threshold: f64,
    },
    PoolCapacity {
        allocated: u64,
        total: u64,
        needs: u64,
    },
}

/// What rendering needs besides the inventory.
#[allow(missing_debug_implementations)]
pub struct RenderCtx<'a> {
    pub inv: &'a Inventory,
    pub host_tags: &'a TagSet,
    pub disk_labels: Vec<&'static str>,
    pub disk_tags: Vec<&'a TagSet>,
    pub disk_sizes: Vec<u64>,
    pub vm_name: &'a dyn Fn(VmIdx) -> String,
    pub ha_tag: String,
    pub settings: &'a crate::settings::Settings,
}

fn tag_list(inv: &Inventory, tags: &[crate::inventory::TagId]) -> String {
    tags.iter().map(|t| inv.tags.name(*t)).collect::<Vec<_>>().join(", ")
}

impl Reject {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Reject::ZoneDisabled | Reject::PodDisabled | Reject::ClusterDisabled => "allocation_disabled",
            Reject::Avoided => "avoid_set",
            Reject::NotInZone => "not_in_zone",
            Reject::HypervisorMismatch { .. } => "hypervisor",
            Reject::ClusterThreshold { .. } => "disable_threshold",
            Reject::VolumeUnreachable { .. } => "volume_unreachable",
            Reject::NoPool { .. } => "no_storage",
            Reject::NoHostFits => "no_host",
            Reject::HostStatus(_) => "host_status",
            Reject::HostResourceState(_) => "resource_state",
            Reject::HaTagReserved | Reject::HaTagRequired => "ha_tag",
            Reject::HostTags => "host_tags",
            Reject::CpuCores { .. } => "cpu_cores",
            Reject::CpuSpeed { .. } => "cpu_speed",
            Reject::MaxGuests { .. } => "max_guests",
            Reject::AntiAffinity { .. } | Reject::Affinity { .. } => "affinity",
            Reject::CpuCapacity { .. } => "cpu_capacity",
            Reject::MemoryCapacity { .. } => "memory_capacity",
            Reject::NoLocalPool { .. } => "no_local_storage",
            Reject::PoolState(_) => "pool_state",
            Reject::PoolNotShared => "pool_scope",
            Reject::PoolTags { .. } => "storage_tags",
            Reject::PoolUsedThreshold { .. } | Reject::PoolAllocatedThreshold { .. } => "pool_threshold",
            Reject::PoolCapacity { .. } => "pool_capacity",
        }
    }

    /// Human text, e.g. `memory 250.0/256.0 GiB allocated, needs 8.0 GiB`.
    pub fn render(&self, ctx: &RenderCtx<'_>, subject_tags: Option<&TagSet>) -> String {
        let inv = ctx.inv;
        match *self {
            Reject::ZoneDisabled | Reject::PodDisabled | Reject::ClusterDisabled => {
                "allocation state Disabled".to_string()
            }
            Reject::Avoided => "in the avoid set of this request".to_string(),
            Reject::NotInZone => "not in the requested zone".to_string(),
            Reject::HypervisorMismatch { cluster, needed } => format!("hypervisor {cluster}, template needs {needed}"),
            Reject::ClusterThreshold {
                cluster,
                resource,
                allocated,
                total,
                needs,
                threshold,
            } => {
                let (r, amount): (&str, fn(u64) -> String) = match resource {
                    Resource::Cpu => ("cpu", |v| format!("{v} MHz")),
                    Resource::Memory => ("memory", |v| format!("{:.1} GiB", v as f64 / (1024.0 * MIB as f64))),
                };
                let name = format!("cluster.{r}.allocated.capacity.disablethreshold");
                let scope = crate::settings::Scope::Cluster(inv.cluster(cluster).id);
                let fraction = if total == 0 {
                    f64::INFINITY
                } else {
                    (allocated + needs) as f64 / total as f64
                };
                format!(
                    "{r} {} of {} allocated{} = {} of capacity, over {name} {} ({})",
                    amount(allocated),
                    amount(total),
                    if needs > 0 {
                        format!(" + {} for this VM", amount(needs))
                    } else {
                        String::new()
                    },
                    ratio_beside(fraction, threshold),
                    threshold,
                    ctx.settings.source(&name, scope),
                )
            }
            Reject::VolumeUnreachable { pool } => {
                format!(
                    "existing volume on pool {} is not reachable from here",
                    inv.pool(pool).name
                )
            }
            Reject::NoPool { disk } => format!(
                "no suitable primary storage for {} ({}{})",
                ctx.disk_labels.get(disk).copied().unwrap_or("disk"),
                Gib(ctx.disk_sizes.get(disk).copied().unwrap_or(0)),
                ctx.disk_tags
                    .get(disk)
                    .filter(|t| !t.is_empty())
                    .map(|t| format!(", tags {}", tag_list(inv, &t.iter().collect::<Vec<_>>())))
                    .unwrap_or_default()
            ),
            Reject::NoHostFits => "no host fits".to_string(),
            Reject::HostStatus(s) => format!("status {s} (not Up)"),
            Reject::HostResourceState(s) => format!("resource state {s} (not Enabled)"),
            Reject::HaTagReserved => format!("reserved for HA restarts (ha.tag={})", ctx.ha_tag),
            Reject::HaTagRequired => format!("HA restarts go to hosts tagged {} (ha.tag)", ctx.ha_tag),
            Reject::HostTags => {
                let have = subject_tags.cloned().unwrap_or_default();
                format!(
                    "missing host tags: {}",
                    tag_list(inv, &have.missing_from(ctx.host_tags))
                )
            }
            Reject::CpuCores { host_cores, needs } => format!("has {host_cores} cores, VM needs {needs} vCPUs"),
            Reject::CpuSpeed { host_mhz, needs } => format!("cores run at {host_mhz} MHz, VM needs {needs} MHz"),
            Reject::MaxGuests { running, limit } => format!("runs {running} guests, max guests limit {limit}"),
            Reject::AntiAffinity { group, vm } => format!(
                "anti-affinity group {}: VM {} is already here",
                inv.affinity_group(group).name,
                (ctx.vm_name)(vm)
            ),
            Reject::Affinity { group, host } => {
                format!(
                    "affinity group {}: members are on host {}",
                    inv.affinity_group(group).name,
                    inv.host(host).name
                )
            }
            Reject::CpuCapacity {
                allocated,
                total,
                needs,
            } => {
                format!("cpu {allocated}/{total} MHz allocated, needs {needs} MHz")
            }
            Reject::MemoryCapacity {
                allocated,
                total,
                needs,
            } => {
                format!(
                    "memory {}/{} allocated, needs {}",
                    GibNum(allocated),
                    Gib(total),
                    Gib(needs)
                )
            }
            Reject::NoLocalPool { disk } => format!(
                "no suitable local storage for {}",
                ctx.disk_labels.get(disk).copied().unwrap_or("disk")
            ),
            Reject::PoolState(s) => format!("state {s} (not Up)"),
            Reject::PoolNotShared => "host-local pool, the disk needs shared storage".to_string(),
            Reject::PoolTags { disk } => {
                let have = subject_tags.cloned().unwrap_or_default();
                let need = ctx.disk_tags.get(disk).copied().cloned().unwrap_or_default();
                format!("missing storage tags: {}", tag_list(inv, &have.missing_from(&need)))
            }
            Reject::PoolUsedThreshold { used, total, threshold } => {
                let fraction = if total == 0 { 1.0 } else { used as f64 / total as f64 };
                format!(
                    "{} of {} used = {} of capacity, over pool.storage.capacity.disablethreshold {threshold}",
                    Gib(used),
                    Gib(total),
                    ratio_beside(fraction, threshold)
                )
            }
            Reject::PoolAllocatedThreshold {
                allocated,
                total,
                needs,
                threshold,
            } => {
                let fraction = if total == 0 {
                    f64::INFINITY
                } else {
                    (allocated + needs) as f64 / total as f64
                };
                format!(
                    "{} of {} allocated + {} for this disk = {} of capacity, over pool.storage.allocated.capacity.disablethreshold {threshold}",
                    Gib(allocated),
                    Gib(total),
                    Gib(needs),
                    ratio_beside(fraction, threshold)
                )
            }
            Reject::PoolCapacity {
                allocated,
                total,
                needs,
            } => {
                format!(
                    "storage {}/{} allocated, needs {}",
                    GibNum(allocated),
                    Gib(total),
                    Gib(needs)
                )
            }
        }
    }
}

/// A ratio shown beside a threshold with as many digits as it takes to see
/// that they differ (never `0.85 > 0.85`): 0.8512, 0.850003, ...
pub fn ratio_beside(fraction: f64, threshold: f64) -> String {
    if !fraction.is_finite() {
        return "more than all".to_string();
    }
    for digits in 4..=9 {
        let a = format!("{fraction:.digits$}");
        if a != format!("{threshold:.digits$}") {
            return a;
        }
    }
    format!("{fraction}")
}

/// `250.0` (GiB without unit, for "x/y GiB" pairs).
struct GibNum(u64);

impl std::fmt::Display for GibNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}", self.0 as f64 / (1024.0 * MIB as f64))
    }
}

/// Checks `extra` more against a counter, returning the allocated/total numbers.
#[inline]
pub fn over(c: &Counter, extra: u64, own: u64) -> Option<(u64, u64)> {
    let allocated = c.allocated().saturating_sub(own);
    (allocated + extra > c.total).then_some((allocated, c.total))
}
