//! Per-cluster capacity answers that need no hypothetical: headroom, vSphere
//! slots, stranded capacity, and how many more VMs of an offering fit now.

use super::report::{Resource, Slots, Stranded};
use crate::allocator::{PlacementRequest, host_fits, pool_fits};
use crate::capacity::{Counter, Footprint};
use crate::cloud::Cloud;
use crate::ids::*;
use crate::inventory::{HostStatus, ResourceState, ServiceOffering, StorageType, TagSet};
use crate::units::MIB;
use crate::vm::{Charge, VmSize};

pub fn pct(x: f64) -> f64 {
    (x * 10000.0).round() / 100.0
}

pub fn resource(counter: &Counter, notify: f64, disable: f64) -> Resource {
    Resource {
        total: counter.total,
        allocated: counter.allocated(),
        allocated_pct: pct(counter.fraction_with(0).min(1e9)),
        notify_pct: pct(notify),
        disable_pct: pct(disable),
    }
}

/// vSphere's slot policy: a slot is the largest CPU and the largest memory of
/// the cluster's powered-on VMs; a host holds min(its CPU / slot CPU, its
/// memory / slot memory) slots; each powered-on VM uses one; the largest
/// host's slots are held back for one host failure.
pub fn slots(c: &Cloud, cl: ClusterIdx) -> Slots {
    let hosts = &c.inv.cluster(cl).hosts;
    let (mut s_cpu, mut s_mem, mut used) = (0u64, 0u64, 0u64);
    for &h in hosts {
        for &i in c.vms_on(h) {
            let vm = c.vm_at(i);
            if vm.charge == (Charge::Used { host: h }) {
                let fp = vm.size.footprint();
                s_cpu = s_cpu.max(fp.cpu_mhz);
                s_mem = s_mem.max(fp.mem_bytes);
                used += 1;
            }
        }
    }
    let per_host: Vec<u64> = hosts
        .iter()
        .filter(|h| usable(c, **h))
        .map(|h| {
            let b = &c.book.host[h.ix()];
            if s_cpu == 0 || s_mem == 0 {
                0
            } else {
                (b.cpu.total / s_cpu).min(b.mem.total / s_mem)
            }
        })
        .collect();
    let total: u64 = per_host.iter().sum();
    let failover = per_host.iter().copied().max().unwrap_or(0);
    Slots {
        definition: if used == 0 {
            "no powered-on VMs: no slot size".into()
        } else {
            format!(
                "largest powered-on VM's CPU ({s_cpu} MHz) and largest memory ({} MiB); slots per host = min(host CPU / slot CPU, host memory / slot memory), after overprovisioning",
                s_mem / MIB
            )
        },
        slot_cpu_mhz: s_cpu,
        slot_memory_mib: s_mem / MIB,
        total,
        used,
        failover,
        available: total.saturating_sub(used).saturating_sub(failover),
    }
}

fn usable(c: &Cloud, h: HostIdx) -> bool {
    let host = c.inv.host(h);
    host.status == HostStatus::Up && host.resource_state == ResourceState::Enabled
}

/// How many VMs of `fp` a host's free CPU, memory and guest limit allow.
fn host_room(c: &Cloud, h: HostIdx, fp: Footprint) -> u64 {
    let b = &c.book.host[h.ix()];
    let free_cpu = b.cpu.total.saturating_sub(b.cpu.allocated());
    let free_mem = b.mem.total.saturating_sub(b.mem.allocated());
    let host = c.inv.host(h);
    let limit = u64::from(c.inv.capability(host.hypervisor).max_guests);
    let guests = u64::from(c.book.host_guests[h.ix()]);
    let by_cpu = free_cpu.checked_div(fp.cpu_mhz).unwrap_or(u64::MAX);
    let by_mem = free_mem.checked_div(fp.mem_bytes).unwrap_or(u64::MAX);
    by_cpu.min(by_mem).min(limit.saturating_sub(guests))
}

pub fn offering_request(c: &Cloud, so: &ServiceOffering, zone: ZoneIdx) -> PlacementRequest {
    let size = VmSize {
        cpu_number: so.cpu_number,
        cpu_speed_mhz: so.cpu_speed_mhz,
        memory_mb: so.memory_mb,
    };
    let admin = c
        .inv
        .accounts
        .iter()
        .position(|a| a.id == c.admin_account())
        .unwrap_or(0);
    let mut req = PlacementRequest::new("whatif", AccountIdx(admin as u32), zone, size);
    req.host_tags = so.host_tags.clone();
    req.planner = so.planner;
    req
}

/// More VMs of the offering that fit in the cluster now: host by host
/// (the allocator's host filter decides whether a host takes one at all),
/// each new VM with a root disk of `root_bytes` on the storage the allocator
/// would use (the cluster's shared pools, or the host's local pools for a
/// local-storage offering, through the allocator's pool filter: state, tags,
/// overprovisioning, the used and allocated disable thresholds), capped by
/// the cluster's disable thresholds.
pub fn cluster_fit(c: &Cloud, cl: ClusterIdx, so: &ServiceOffering, root_bytes: u64, apply_thresholds: bool) -> u64 {
    let cluster = c.inv.cluster(cl);
    let req = offering_request(c, so, cluster.zone);
    let fp = req.size.footprint();
    let local = so.storage_type == StorageType::Local;
    let mut n: u64 = 0;
    for &h in &cluster.hosts {
        if host_fits(c, &req, h).is_none() {
            let mut room = host_room(c, h, fp);
            if local {
                let disks = pools_room(c, &c.inv.host_local_pools[h.ix()], root_bytes, &so.storage_tags, false);
                room = room.min(disks);
            }
            n = n.saturating_add(room);
        }
    }
    if !local {
        n = n.min(pools_room(
            c,
            &c.inv.cluster_pools[cl.ix()],
            root_bytes,
            &so.storage_tags,
            true,
        ));
    }
    let pol = &c.policy.clusters[cl.ix()];
    if apply_thresholds && pol.thresholds_enabled {
        let agg = &c.book.cluster[cl.ix()];
        n = n.min(threshold_room(&agg.cpu, fp.cpu_mhz, pol.cpu_disable));
        n = n.min(threshold_room(&agg.mem, fp.mem_bytes, pol.mem_disable));
    }
    n
}

/// Disks of `need` bytes the pools take in all, one pool filling after another.
fn pools_room(c: &Cloud, pools: &[PoolIdx], need: u64, tags: &TagSet, shared: bool) -> u64 {
    pools
        .iter()
        .map(|&p| pool_room(c, p, need, tags, shared))
        .fold(0u64, u64::saturating_add)
}

/// The largest k such that the allocator's pool filter takes k more disks of
/// `need` bytes on the pool, one after another: the allocated checks see the
/// bytes asked (monotone in them), the used check sees what the disks before
/// wrote (a new root disk writes its template, `need` bytes).
fn pool_room(c: &Cloud, p: PoolIdx, need: u64, tags: &TagSet, shared: bool) -> u64 {
    let by_allocation = pool_room_allocated(c, p, need, tags, shared);
    if by_allocation == 0 || need == 0 {
        return by_allocation;
    }
    let b = &c.book.pool[p.ix()];
    let limit = c.policy.pools[p.ix()].used_disable;
    // The k-th disk is accepted while (used + (k-1)*need)/raw <= limit.
    let ok = |k: u64| (b.used + (k - 1) * need) as f64 / b.raw_total.max(1) as f64 <= limit;
    let guess = ((limit * b.raw_total as f64 - b.used as f64) / need as f64).floor() + 1.0;
    let mut k = if guess >= 1.0 {
        (guess as u64).min(by_allocation)
    } else {
        1
    };
    while k > 1 && !ok(k) {
        k -= 1;
    }
    while k < by_allocation && ok(k + 1) {
        k += 1;
    }
    k
}

fn pool_room_allocated(c: &Cloud, p: PoolIdx, need: u64, tags: &TagSet, shared: bool) -> u64 {
    if need == 0 {
        return if pool_fits(c, p, 0, tags, shared).is_none() {
            u64::MAX
        } else {
            0
        };
    }
    if pool_fits(c, p, need, tags, shared).is_some() {
        return 0;
    }
    let b = &c.book.pool[p.ix()];
    let (mut lo, mut hi) = (1u64, (b.allocatable_total.saturating_sub(b.allocated) / need).max(1));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if pool_fits(c, p, mid * need, tags, shared).is_none() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The root disk a new VM of each offering would get (indexed like
/// `inv.service_offerings`): the largest root volume of the offering's VMs,
/// else the largest template (not an ISO), as a new VM may use any of them.
pub fn root_disk_bytes(c: &Cloud) -> Vec<u64> {
    let largest_template = c
        .inv
        .templates
        .iter()
        .filter(|t| !t.is_iso)
        .map(|t| t.size_bytes)
        .max()
        .unwrap_or(0);
    let mut root = vec![0u64; c.inv.service_offerings.len()];
    for (_, vm) in c.vms() {
        for &v in &vm.volumes {
            let vol = c.volume_at(v);
            if vol.volume_type == crate::vm::VolumeType::Root
                && let Some(r) = root.get_mut(vm.offering.ix())
            {
                *r = (*r).max(vol.size_bytes);
            }
        }
    }
    for r in &mut root {
        if *r == 0 {
            *r = largest_template;
        }
    }
    root
}

/// The largest n such that the allocator's check `(allocated + one) / total >
/// disable` still passes before the n-th VM is placed.
fn threshold_room(ctr: &Counter, one: u64, disable: f64) -> u64 {
    if one == 0 {
        return u64::MAX;
    }
    // The k-th VM (k from 1) is accepted if (alloc + k*one)/total <= disable.
    let ok = |k: u64| (ctr.allocated() + k * one) as f64 / ctr.total.max(1) as f64 <= disable && ctr.total > 0;
    let guess = ((disable * ctr.total as f64 - ctr.allocated() as f64) / one as f64).floor();
    let mut k = if guess > 0.0 { guess as u64 } else { 0 };
    while k > 0 && !ok(k) {
        k -= 1;
    }
    while ok(k + 1) {
        k += 1;
    }
    k
}

/// The offering the stranded-capacity answer is about: the largest (memory, then CPU).
pub fn largest_offering(c: &Cloud) -> Option<usize> {
    (0..c.inv.service_offerings.len())
        .filter(|i| {
            let so = &c.inv.service_offerings[*i];
            so.memory_mb > 0 && so.cpu_number > 0 && so.cpu_speed_mhz > 0
        })
        .max_by_key(|i| {
            let so = &c.inv.service_offerings[*i];
            (
                so.memory_mb,
                u64::from(so.cpu_number) * u64::from(so.cpu_speed_mhz),
                std::cmp::Reverse(*i),
            )
        })
}

pub fn stranded(c: &Cloud, cl: ClusterIdx, so: &ServiceOffering) -> Stranded {
    let cluster = c.inv.cluster(cl);
    let req = offering_request(c, so, cluster.zone);
    let fp = req.size.footprint();
    let (mut free_cpu, mut free_mem, mut placeable, mut left_cpu, mut left_mem) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for &h in &cluster.hosts {
        if !usable(c, h) {
            continue;
        }
        let b = &c.book.host[h.ix()];
        let fc = b.cpu.total.saturating_sub(b.cpu.allocated());
        let fm = b.mem.total.saturating_sub(b.mem.allocated());
        free_cpu += fc;
        free_mem += fm;
        let n = if host_fits(c, &req, h).is_none() {
            host_room(c, h, fp)
        } else {
            0
        };
        placeable += n;
        left_cpu += fc - n * fp.cpu_mhz;
        left_mem += fm - n * fp.mem_bytes;
    }
    let aggregate_fit = (free_cpu / fp.cpu_mhz.max(1)).min(free_mem / fp.mem_bytes.max(1));
    Stranded {
        offering: so.name.clone(),
        aggregate_fit,
        placeable,
        stranded_vms: aggregate_fit.saturating_sub(placeable),
        stranded_cpu_mhz: left_cpu,
        stranded_memory_mib: left_mem / MIB,
    }
}
