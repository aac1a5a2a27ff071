//! Capacity accounting: per host CPU MHz, CPU cores and memory; per pool storage;
//! aggregates per cluster, pod and zone. All counters are integers, so every
//! aggregate equals the exact sum of its children.

use crate::ids::*;
use serde::{Deserialize, Serialize};

/// Total (after overprovisioning), used (running, starting, migrating away) and
/// reserved (stopped within `capacity.skipcounting.hours`, or migration target).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub total: u64,
    pub used: u64,
    pub reserved: u64,
}

impl Counter {
    #[inline]
    pub fn allocated(&self) -> u64 {
        self.used + self.reserved
    }
    /// Allocated fraction if `extra` more were allocated.
    #[inline]
    pub fn fraction_with(&self, extra: u64) -> f64 {
        if self.total == 0 {
            return if self.allocated() + extra == 0 {
                0.0
            } else {
                f64::INFINITY
            };
        }
        (self.allocated() + extra) as f64 / self.total as f64
    }
    #[inline]
    pub fn fits(&self, extra: u64) -> bool {
        self.allocated() + extra <= self.total
    }
}

/// What a VM's CPU and memory weigh on a host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footprint {
    pub cpu_mhz: u64,
    pub cores: u64,
    pub mem_bytes: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compute {
    pub cpu: Counter,
    pub cores: Counter,
    pub mem: Counter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Used,
    Reserved,
}

impl Compute {
    #[inline]
    fn apply(&mut self, fp: Footprint, slot: Slot, add: bool) {
        for (c, v) in [
            (&mut self.cpu, fp.cpu_mhz),
            (&mut self.cores, fp.cores),
            (&mut self.mem, fp.mem_bytes),
        ] {
            let field = match slot {
                Slot::Used => &mut c.used,
                Slot::Reserved => &mut c.reserved,
            };
            if add {
                *field += v;
            } else {
                *field = field.checked_sub(v).expect("capacity counter would go negative");
            }
        }
    }
    fn add_totals(&mut self, other: &Compute) {
        self.cpu.total += other.cpu.total;
        self.cores.total += other.cores.total;
        self.mem.total += other.mem.total;
    }
}

/// Storage pool usage. `allocated` is the sum of its volumes' virtual sizes; `used`
/// the sum of what they physically occupy (thin volumes on NFS/Gluster start with
/// the template's data; volumes on local, thick pools occupy their full size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolUsage {
    pub raw_total: u64,
    /// raw_total × storage.overprovisioning.factor for thin pools.
    pub allocatable_total: u64,
    pub allocated: u64,
    pub used: u64,
}

/// Where each host, cluster, pod and zone stands.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CapacityBook {
    pub host: Vec<Compute>,
    pub cluster: Vec<Compute>,
    pub pod: Vec<Compute>,
    pub zone: Vec<Compute>,
    /// VMs running, starting or migrating on each host (max guests limit).
    pub host_guests: Vec<u32>,
    pub pool: Vec<PoolUsage>,
    /// (host → cluster, pod, zone), copied from the inventory for the hot path.
    pub parents: Vec<(ClusterIdx, PodIdx, ZoneIdx)>,
}

impl CapacityBook {
    /// Adds or removes a footprint on a host and all its ancestors.
    #[inline]
    pub fn apply(&mut self, h: HostIdx, fp: Footprint, slot: Slot, add: bool) {
        let (c, p, z) = self.parents[h.ix()];
        self.host[h.ix()].apply(fp, slot, add);
        self.cluster[c.ix()].apply(fp, slot, add);
        self.pod[p.ix()].apply(fp, slot, add);
        self.zone[z.ix()].apply(fp, slot, add);
    }

    #[inline]
    pub fn guests(&mut self, h: HostIdx, add: bool) {
        let g = &mut self.host_guests[h.ix()];
        if add {
            *g += 1;
        } else {
            *g = g.checked_sub(1).expect("guest count would go negative");
        }
    }

    /// Adds or removes a volume: `bytes` allocated, `physical` actually written.
    pub fn pool_apply(&mut self, p: PoolIdx, bytes: u64, physical: u64, add: bool) {
        let u = &mut self.pool[p.ix()];
        if add {
            u.allocated += bytes;
            u.used += physical;
        } else {
            u.allocated = u
                .allocated
                .checked_sub(bytes)
                .expect("pool allocation would go negative");
            u.used = u.used.checked_sub(physical).expect("pool usage would go negative");
        }
    }

    /// Recomputes aggregate totals from host totals (after totals changed).
    pub fn rebuild_aggregate_totals(&mut self) {
        for agg in [&mut self.cluster, &mut self.pod, &mut self.zone] {
            for a in agg.iter_mut() {
                a.cpu.total = 0;
                a.cores.total = 0;
                a.mem.total = 0;
            }
        }
        for (h, (c, p, z)) in self.parents.iter().enumerate() {
            let hc = self.host[h];
            self.cluster[c.ix()].add_totals(&hc);
            self.pod[p.ix()].add_totals(&hc);
            self.zone[z.ix()].add_totals(&hc);
        }
    }
}

/// CloudStack's capacity type codes (listCapacity `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapacityType {
    Memory = 0,
    Cpu = 1,
    Storage = 2,
    StorageAllocated = 3,
    SecondaryStorage = 6,
    LocalStorage = 9,
    CpuCore = 90,
}

impl CapacityType {
    pub const ALL: [CapacityType; 7] = [
        CapacityType::Memory,
        CapacityType::Cpu,
        CapacityType::Storage,
        CapacityType::StorageAllocated,
        CapacityType::SecondaryStorage,
        CapacityType::LocalStorage,
        CapacityType::CpuCore,
    ];
    pub fn code(self) -> u32 {
        self as u32
    }
    pub fn from_code(code: u32) -> Option<CapacityType> {
        CapacityType::ALL.iter().copied().find(|t| t.code() == code)
    }
    pub fn name(self) -> &'static str {
        match self {
            CapacityType::Memory => "MEMORY",
            CapacityType::Cpu => "CPU",
            CapacityType::Storage => "STORAGE",
            CapacityType::StorageAllocated => "STORAGE_ALLOCATED",
            CapacityType::SecondaryStorage => "SECONDARY_STORAGE",
            CapacityType::LocalStorage => "LOCAL_STORAGE",
            CapacityType::CpuCore => "CPU_CORE",
        }
    }
}

/// One row of a listCapacity-shaped answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityRow {
    #[serde(rename = "type")]
    pub capacity_type: u32,
    pub name: &'static str,
    pub zoneid: ZoneId,
    pub zonename: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub podid: Option<PodId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub podname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clusterid: Option<ClusterId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clustername: Option<String>,
    pub capacitytotal: u64,
    /// Used plus reserved, as CloudStack reports it.
    pub capacityused: u64,
    pub capacityallocated: u64,
    /// Two decimals, as a string (CloudStack's format).
    pub percentused: String,
}

pub fn percent(used: u64, total: u64) -> String {
    if total == 0 {
        "0".to_string()
    } else {
        format!("{:.2}", used as f64 * 100.0 / total as f64)
    }
}
