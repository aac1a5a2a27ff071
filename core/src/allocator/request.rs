//! What the allocator is asked and what it answers.

use crate::ids::*;
use crate::inventory::{Hypervisor, PlannerKind, StorageType, TagSet};
use crate::vm::VmSize;
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

/// A volume that still needs a pool.
#[derive(Clone, Debug)]
pub struct DiskNeed {
    pub label: &'static str,
    pub size_bytes: u64,
    pub tags: TagSet,
    pub storage_type: StorageType,
}

/// Hosts, clusters and pods the allocator must not use (CloudStack's ExcludeList).
#[derive(Clone, Debug, Default)]
pub struct Avoid {
    pub hosts: FxHashSet<HostIdx>,
    pub clusters: FxHashSet<ClusterIdx>,
    pub pods: FxHashSet<PodIdx>,
}

impl Avoid {
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.clusters.is_empty() && self.pods.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct PlacementRequest {
    pub vm_name: String,
    /// The VM being placed, if it exists already (excluded from affinity checks).
    pub vm: Option<VmIdx>,
    pub account: AccountIdx,
    pub zone: ZoneIdx,
    pub size: VmSize,
    pub host_tags: TagSet,
    pub hypervisor: Option<Hypervisor>,
    pub new_disks: Vec<DiskNeed>,
    /// Pools already holding the VM's volumes: the host must reach them.
    pub placed_pools: Vec<PoolIdx>,
    pub affinity_groups: Vec<AffinityGroupIdx>,
    pub avoid: Avoid,
    /// deployVirtualMachine/startVirtualMachine `hostid`, or a migration target.
    pub explicit_host: Option<HostIdx>,
    /// Host tried first (a stopped VM's last host), as CloudStack does.
    pub preferred_host: Option<HostIdx>,
    /// The VM's own reservation, which it may reuse on that host.
    pub own_reservation: Option<HostIdx>,
    /// A live migration's source host: the VM's own load is already counted
    /// in that host's cluster, so the cluster threshold must not add it again.
    pub migrating_from: Option<HostIdx>,
    pub ha_restart: bool,
    pub planner: Option<PlannerKind>,
}

impl PlacementRequest {
    pub fn new(vm_name: impl Into<String>, account: AccountIdx, zone: ZoneIdx, size: VmSize) -> Self {
        PlacementRequest {
            vm_name: vm_name.into(),
            vm: None,
            account,
            zone,
            size,
            host_tags: TagSet::default(),
            hypervisor: None,
            new_disks: Vec::new(),
            placed_pools: Vec::new(),
            affinity_groups: Vec::new(),
            avoid: Avoid::default(),
            explicit_host: None,
            preferred_host: None,
            own_reservation: None,
            migrating_from: None,
            ha_restart: false,
            planner: None,
        }
    }

    pub fn needs_local_storage(&self) -> bool {
        self.new_disks.iter().any(|d| d.storage_type == StorageType::Local)
    }
}

/// Where the VM goes: a host and one pool per entry of `new_disks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub host: HostIdx,
    pub pools: Vec<PoolIdx>,
}
