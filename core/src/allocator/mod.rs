//! The allocator: planners order pods and clusters, host ordering follows
//! `vm.allocation.algorithm`, and filters reject with reasons. Pure: a function
//! of the cloud state, the request and a seeded RNG.

mod explain;
mod planner;
mod reject;
mod request;

pub use explain::{Explanation, TraceRecorder, Verdict, VerdictLine};
pub use planner::{Algorithm, OrderBy};
pub use reject::{Reject, RenderCtx, Resource, ratio_beside};
pub use request::{Avoid, DiskNeed, Placement, PlacementRequest};

use crate::cloud::Cloud;
use crate::ids::*;
use crate::inventory::{AffinityKind, AllocationState, HostStatus, PoolScope, PoolState, ResourceState, StorageType};
use crate::rng::DetRng;
use reject::over;

/// Receives every verdict the allocator reaches. The no-op recorder compiles away.
pub trait Recorder {
    const ENABLED: bool;
    fn zone(&mut self, _z: ZoneIdx, _r: Option<Reject>) {}
    fn pod(&mut self, _p: PodIdx, _r: Option<Reject>) {}
    fn cluster(&mut self, _c: ClusterIdx, _r: Option<Reject>) {}
    fn host(&mut self, _h: HostIdx, _r: Option<Reject>) {}
    fn pool(&mut self, _c: ClusterIdx, _h: Option<HostIdx>, _disk: usize, _p: PoolIdx, _r: Option<Reject>) {}
}

/// Records nothing: the placement fast path.
#[derive(Debug)]
pub struct NoRecord;

impl Recorder for NoRecord {
    const ENABLED: bool = false;
}

/// Reusable buffers, so a placement allocates (almost) nothing.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    clusters: Vec<ClusterIdx>,
    keys: Vec<(f64, u32)>,
    /// The cluster order's keys, kept while its tail is unsorted (`keys` serves hosts).
    cluster_keys: Vec<(f64, u32)>,
    hosts: Vec<HostIdx>,
    pools: Vec<PoolIdx>,
    chosen: Vec<PoolIdx>,
}

/// Runs one placement. Returns the destination or `None` (then re-run with a
/// `TraceRecorder` to learn why; the result is identical given the same RNG).
pub fn place<R: Recorder>(
    c: &Cloud,
    req: &PlacementRequest,
    rng: &mut DetRng,
    rec: &mut R,
    s: &mut Scratch,
) -> Option<Placement> {
    let zone = c.inv.zone(req.zone);
    if zone.allocation_state == AllocationState::Disabled {
        rec.zone(req.zone, Some(Reject::ZoneDisabled));
        return None;
    }
    rec.zone(req.zone, None);

    if let Some(h) = req.explicit_host {
        let cl = c.inv.host(h).cluster;
        if c.inv.host(h).zone != req.zone {
            rec.host(h, Some(Reject::NotInZone));
            return None;
        }
        s.clusters.clear();
        s.clusters.push(cl);
        return try_cluster(c, req, cl, Some(h), false, rng, rec, s);
    }

    if let Some(h) = req.preferred_host {
        let host = c.inv.host(h);
        if host.zone == req.zone && !req.avoid.hosts.contains(&h) {
            // The last host is tried first, without cluster thresholds (CloudStack
            // reuses the reservation there); failure falls through to the planner.
            let mut quiet = NoRecord;
            if let Some(p) = try_cluster(c, req, host.cluster, Some(h), false, rng, &mut quiet, s) {
                rec.host(h, None);
                return Some(p);
            }
        }
    }

    let mut order = std::mem::take(&mut s.clusters);
    let mut ordered = planner::order_clusters(c, req, &mut order, &mut s.cluster_keys);
    let mut last_pod = None;
    let mut result = None;
    for i in 0..order.len() {
        if i == ordered {
            planner::finish_cluster_order(&mut order, &mut s.cluster_keys, i);
            ordered = order.len();
        }
        let cl = order[i];
        let pod = c.inv.cluster(cl).pod;
        if last_pod != Some(pod) {
            last_pod = Some(pod);
            let pr = if c.inv.pod(pod).allocation_state == AllocationState::Disabled {
                Some(Reject::PodDisabled)
            } else if req.avoid.pods.contains(&pod) {
                Some(Reject::Avoided)
            } else {
                None
            };
            rec.pod(pod, pr);
        }
        if c.inv.pod(pod).allocation_state == AllocationState::Disabled || req.avoid.pods.contains(&pod) {
            continue;
        }
        if let Some(p) = try_cluster(c, req, cl, None, true, rng, rec, s) {
            result = Some(p);
            break;
        }
    }
    s.clusters = order;
    result
}

#[allow(clippy::too_many_arguments)]
fn try_cluster<R: Recorder>(
    c: &Cloud,
    req: &PlacementRequest,
    cl: ClusterIdx,
    only_host: Option<HostIdx>,
    apply_thresholds: bool,
    rng: &mut DetRng,
    rec: &mut R,
    s: &mut Scratch,
) -> Option<Placement> {
    if let Some(r) = cluster_check(c, req, cl, apply_thresholds) {
        rec.cluster(cl, Some(r));
        return None;
    }
    // Shared storage for new disks is chosen per cluster.
    s.chosen.clear();
    for (di, disk) in req.new_disks.iter().enumerate() {
        if disk.storage_type == StorageType::Local {
            s.chosen.push(PoolIdx(u32::MAX));
            continue;
        }
        match choose_pool(c, req, cl, None, di, rng, rec, s) {
            Some(p) => s.chosen.push(p),
            None => {
                rec.cluster(cl, Some(Reject::NoPool { disk: di }));
                return None;
            }
        }
    }

    let mut hosts = std::mem::take(&mut s.hosts);
    hosts.clear();
    match only_host {
        Some(h) => hosts.push(h),
        None => planner::order_hosts(c, req, cl, &mut hosts, &mut s.keys),
    }
    let random = only_host.is_none() && c.policy.global.algorithm.random_hosts();
    let mut found = None;
    let n = hosts.len();
    for i in 0..n {
        if random {
            // Lazy Fisher-Yates: only draw as many as we look at.
            let j = i + rng.below(n - i);
            hosts.swap(i, j);
        }
        let h = hosts[i];
        if let Some(r) = host_check(c, req, h) {
            rec.host(h, Some(r));
            continue;
        }
        if req.needs_local_storage() {
            let mut ok = true;
            for (di, disk) in req.new_disks.iter().enumerate() {
                if disk.storage_type == StorageType::Local {
                    s.chosen[di] = PoolIdx(u32::MAX);
                }
            }
            for (di, disk) in req.new_disks.iter().enumerate() {
                if disk.storage_type != StorageType::Local {
                    continue;
                }
                match choose_pool(c, req, cl, Some(h), di, rng, rec, s) {
                    Some(p) => s.chosen[di] = p,
                    None => {
                        rec.host(h, Some(Reject::NoLocalPool { disk: di }));
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                continue;
            }
        }
        rec.host(h, None);
        found = Some(Placement {
            host: h,
            pools: s.chosen.clone(),
        });
        break;
    }
    s.hosts = hosts;
    rec.cluster(
        cl,
        if found.is_some() {
            None
        } else {
            Some(Reject::NoHostFits)
        },
    );
    found
}

fn cluster_check(c: &Cloud, req: &PlacementRequest, cl: ClusterIdx, apply_thresholds: bool) -> Option<Reject> {
    let cluster = c.inv.cluster(cl);
    if cluster.allocation_state == AllocationState::Disabled {
        return Some(Reject::ClusterDisabled);
    }
    if req.avoid.clusters.contains(&cl) {
        return Some(Reject::Avoided);
    }
    if let Some(hv) = req.hypervisor
        && hv != cluster.hypervisor
    {
        return Some(Reject::HypervisorMismatch {
            cluster: cluster.hypervisor,
            needed: hv,
        });
    }
    // Reachability first: a cluster that cannot reach the VM's volumes is
    // refused for storage, whatever its load.
    for &p in &req.placed_pools {
        match c.inv.pool(p).scope {
            PoolScope::Cluster(pc) if pc != cl => return Some(Reject::VolumeUnreachable { pool: p }),
            PoolScope::Zone if c.inv.pool(p).zone != cluster.zone => {
                return Some(Reject::VolumeUnreachable { pool: p });
            }
            PoolScope::Host(h) if c.inv.host(h).cluster != cl => return Some(Reject::VolumeUnreachable { pool: p }),
            _ => {}
        }
    }
    let pol = &c.policy.clusters[cl.ix()];
    if apply_thresholds && pol.thresholds_enabled {
        let agg = &c.book.cluster[cl.ix()];
        // A migration inside one cluster moves load that is already counted there.
        let fp = if req.migrating_from.is_some_and(|h| c.inv.host(h).cluster == cl) {
            Default::default()
        } else {
            req.size.footprint()
        };
        if agg.cpu.fraction_with(fp.cpu_mhz) > pol.cpu_disable {
            return Some(Reject::ClusterThreshold {
                cluster: cl,
                resource: Resource::Cpu,
                allocated: agg.cpu.allocated(),
                total: agg.cpu.total,
                needs: fp.cpu_mhz,
                threshold: pol.cpu_disable,
            });
        }
        if agg.mem.fraction_with(fp.mem_bytes) > pol.mem_disable {
            return Some(Reject::ClusterThreshold {
                cluster: cl,
                resource: Resource::Memory,
                allocated: agg.mem.allocated(),
                total: agg.mem.total,
                needs: fp.mem_bytes,
                threshold: pol.mem_disable,
            });
        }
    }
    None
}

/// The allocator's host filter alone (status, tags, affinity, capacity), for
/// analyses that count what fits host by host; `None` = the host takes it.
pub fn host_fits(c: &Cloud, req: &PlacementRequest, h: HostIdx) -> Option<Reject> {
    host_check(c, req, h)
}

/// The allocator's pool filter alone (state, sharing, tags, the used and
/// allocated disable thresholds, capacity) for `need` more bytes on pool `p`,
/// for analyses that count what fits; `None` = the pool takes it.
pub fn pool_fits(c: &Cloud, p: PoolIdx, need: u64, tags: &crate::inventory::TagSet, shared: bool) -> Option<Reject> {
    pool_check(c, p, need, tags, shared, 0)
}

/// The constraints a VM must satisfy on host `h` for as long as it runs there
/// (not only when placed): host tags, CPU cores and speed, host-local volumes,
/// affinity groups. The allocator and the safety invariant share this one rule.
pub fn hard_constraints(c: &Cloud, req: &PlacementRequest, h: HostIdx) -> Option<Reject> {
    let host = c.inv.host(h);
    if !host.tags.contains_all(&req.host_tags) {
        return Some(Reject::HostTags);
    }
    if req.size.cpu_number > host.cpu_cores {
        return Some(Reject::CpuCores {
            host_cores: host.cpu_cores,
            needs: req.size.cpu_number,
        });
    }
    if req.size.cpu_speed_mhz > host.cpu_mhz_per_core {
        return Some(Reject::CpuSpeed {
            host_mhz: host.cpu_mhz_per_core,
            needs: req.size.cpu_speed_mhz,
        });
    }
    for &p in &req.placed_pools {
        if let PoolScope::Host(ph) = c.inv.pool(p).scope
            && ph != h
        {
            return Some(Reject::VolumeUnreachable { pool: p });
        }
    }
    for &g in &req.affinity_groups {
        let group = c.inv.affinity_group(g);
        for &m in &c.group_members[g.ix()] {
            if Some(m) == req.vm {
                continue;
            }
            let charge = c.vm_charge(m);
            match group.kind {
                AffinityKind::HostAntiAffinity => {
                    if charge.hosts().any(|x| x == h) {
                        return Some(Reject::AntiAffinity { group: g, vm: m });
                    }
                }
                AffinityKind::HostAffinity => {
                    if let Some(other) = charge.hosts().find(|x| *x != h)
                        && !charge.hosts().any(|x| x == h)
                    {
                        return Some(Reject::Affinity { group: g, host: other });
                    }
                }
            }
        }
    }
    None
}

fn host_check(c: &Cloud, req: &PlacementRequest, h: HostIdx) -> Option<Reject> {
    let host = c.inv.host(h);
    if req.avoid.hosts.contains(&h) {
        return Some(Reject::Avoided);
    }
    if host.status != HostStatus::Up {
        return Some(Reject::HostStatus(host.status));
    }
    if host.resource_state != ResourceState::Enabled {
        return Some(Reject::HostResourceState(host.resource_state));
    }
    if let Some(tag) = c.policy.global.ha_tag {
        let tagged = host.tags.contains(tag);
        if req.ha_restart && !tagged {
            return Some(Reject::HaTagRequired);
        }
        if !req.ha_restart && tagged {
            return Some(Reject::HaTagReserved);
        }
    }
    if let Some(r) = hard_constraints(c, req, h) {
        return Some(r);
    }
    let limit = c.inv.capability(host.hypervisor).max_guests;
    let running = c.book.host_guests[h.ix()];
    if running >= limit {
        return Some(Reject::MaxGuests { running, limit });
    }
    let fp = req.size.footprint();
    let own = if req.own_reservation == Some(h) {
        fp
    } else {
        Default::default()
    };
    let book = &c.book.host[h.ix()];
    if let Some((allocated, total)) = over(&book.cpu, fp.cpu_mhz, own.cpu_mhz) {
        return Some(Reject::CpuCapacity {
            allocated,
            total,
            needs: fp.cpu_mhz,
        });
    }
    if let Some((allocated, total)) = over(&book.mem, fp.mem_bytes, own.mem_bytes) {
        return Some(Reject::MemoryCapacity {
            allocated,
            total,
            needs: fp.mem_bytes,
        });
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn choose_pool<R: Recorder>(
    c: &Cloud,
    req: &PlacementRequest,
    cl: ClusterIdx,
    local_host: Option<HostIdx>,
    di: usize,
    rng: &mut DetRng,
    rec: &mut R,
    s: &mut Scratch,
) -> Option<PoolIdx> {
    let disk = &req.new_disks[di];
    let mut candidates = std::mem::take(&mut s.pools);
    candidates.clear();
    match local_host {
        Some(h) => candidates.extend_from_slice(&c.inv.host_local_pools[h.ix()]),
        None => candidates.extend_from_slice(&c.inv.cluster_pools[cl.ix()]),
    }
    if c.policy.global.algorithm.random_hosts() && candidates.len() > 1 {
        for i in 0..candidates.len() - 1 {
            let j = i + rng.below(candidates.len() - i);
            candidates.swap(i, j);
        }
    }
    let mut found = None;
    for &p in &candidates {
        // Earlier disks of this request already chosen on the same pool count too.
        let pending: u64 = req.new_disks[..di]
            .iter()
            .zip(s.chosen.iter())
            .filter(|(_, cp)| **cp == p)
            .map(|(d, _)| d.size_bytes)
            .sum();
        let r = pool_check(c, p, disk.size_bytes + pending, &disk.tags, local_host.is_none(), di);
        rec.pool(cl, local_host, di, p, r);
        if r.is_none() {
            found = Some(p);
            break;
        }
    }
    s.pools = candidates;
    found
}

fn pool_check(
    c: &Cloud,
    p: PoolIdx,
    need: u64,
    tags: &crate::inventory::TagSet,
    shared: bool,
    di: usize,
) -> Option<Reject> {
    let pool = c.inv.pool(p);
    if pool.state != PoolState::Up {
        return Some(Reject::PoolState(pool.state));
    }
    if shared && pool.is_local() {
        return Some(Reject::PoolNotShared);
    }
    if !pool.tags.contains_all(tags) {
        return Some(Reject::PoolTags { disk: di });
    }
    let u = &c.book.pool[p.ix()];
    let pol = &c.policy.pools[p.ix()];
    let used = if u.raw_total == 0 {
        1.0
    } else {
        u.used as f64 / u.raw_total as f64
    };
    if used > pol.used_disable {
        return Some(Reject::PoolUsedThreshold {
            used: u.used,
            total: u.raw_total,
            threshold: pol.used_disable,
        });
    }
    let alloc = if u.allocatable_total == 0 {
        f64::INFINITY
    } else {
        (u.allocated + need) as f64 / u.allocatable_total as f64
    };
    if alloc > pol.alloc_disable {
        return Some(Reject::PoolAllocatedThreshold {
            allocated: u.allocated,
            total: u.allocatable_total,
            needs: need,
            threshold: pol.alloc_disable,
        });
    }
    if u.allocated + need > u.allocatable_total {
        return Some(Reject::PoolCapacity {
            allocated: u.allocated,
            total: u.allocatable_total,
            needs: need,
        });
    }
    None
}
