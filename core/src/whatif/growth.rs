//! Growth projection: the running workload grows by a percentage per month
//! (compounded) with its current mix of (offering, template, account, zone);
//! each new VM is placed by the production allocator, as a deploy would be,
//! and charged on a fork. Per cluster: allocation at the end of each month, the
//! month it crosses the notification and disable thresholds, and the first
//! month a deploy is refused.

use super::capacity::pct;
use super::report::{ClusterGrowth, Growth, GrowthMonth};
use crate::allocator::{DiskNeed, PlacementRequest, Scratch};
use crate::cloud::Cloud;
use crate::ids::*;
use crate::vm::{Charge, VolumeType};
use std::collections::BTreeMap;

/// One kind of VM the workload is made of, with a VM of that kind to copy.
#[derive(Debug)]
pub struct MixEntry {
    pub example: VmIdx,
    pub count: u64,
}

/// The running VMs grouped by (offering, template, account, zone), in the
/// order of their first VM.
pub fn current_mix(c: &Cloud) -> Vec<MixEntry> {
    let mut groups: BTreeMap<(u32, u32, u32, u32), (VmIdx, u64)> = BTreeMap::new();
    for (i, vm) in c.vms() {
        if !matches!(vm.charge, Charge::Used { .. }) {
            continue;
        }
        let e = groups
            .entry((vm.offering.0, vm.template.0, vm.account.0, vm.zone.0))
            .or_insert((i, 0));
        e.1 += 1;
    }
    let mut out: Vec<MixEntry> = groups
        .into_values()
        .map(|(example, count)| MixEntry { example, count })
        .collect();
    out.sort_by_key(|m| m.example);
    out
}

/// The order new VMs are drawn from the mix: smooth weighted round robin, so
/// every prefix follows the mix as closely as whole VMs allow.
#[derive(Debug, Clone)]
pub struct MixDraw {
    weights: Vec<i128>,
    total: i128,
    credit: Vec<i128>,
}

impl MixDraw {
    pub fn new(weights: &[u64]) -> MixDraw {
        MixDraw {
            weights: weights.iter().map(|w| i128::from(*w)).collect(),
            total: weights.iter().map(|w| i128::from(*w)).sum(),
            credit: vec![0; weights.len()],
        }
    }
}

impl Iterator for MixDraw {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.total == 0 {
            return None;
        }
        let mut best = 0;
        for (i, w) in self.weights.iter().enumerate() {
            self.credit[i] += *w;
            if self.credit[i] > self.credit[best] {
                best = i;
            }
        }
        self.credit[best] -= self.total;
        Some(best)
    }
}

/// The first `n` draws of [`MixDraw`].
pub fn deploy_sequence(weights: &[u64], n: u64) -> Vec<usize> {
    MixDraw::new(weights).take(n as usize).collect()
}

/// Refusals in a row after which the rest of a month is counted as refused
/// without asking the allocator (the mix no longer fits anywhere); bounds the
/// work of absurd growth rates.
const GIVE_UP_AFTER: u64 = 1000;

/// VMs the workload should have after `month` months.
pub fn target(start: u64, percent_per_month: f64, month: u32) -> u64 {
    (start as f64 * (1.0 + percent_per_month / 100.0).powi(month as i32)).round() as u64
}

/// The deploy request for a new VM like `example` (its volumes not yet placed).
pub fn request_like(c: &Cloud, example: VmIdx) -> PlacementRequest {
    let mut req = c.request_for(example);
    req.vm = None;
    req.placed_pools.clear();
    req.new_disks.clear();
    req.affinity_groups.clear();
    req.preferred_host = None;
    req.own_reservation = None;
    for v in &c.vm_at(example).volumes {
        let vol = c.volume_at(*v);
        req.new_disks.push(DiskNeed {
            label: if vol.volume_type == VolumeType::Root {
                "ROOT"
            } else {
                "DATA"
            },
            size_bytes: vol.size_bytes,
            tags: vol.storage_tags.clone(),
            storage_type: vol.storage_type,
        });
    }
    req
}

pub fn project(
    c: &mut Cloud,
    percent_per_month: f64,
    months: u32,
    scratch: &mut Scratch,
    progress: &mut dyn FnMut(u64, u64),
) -> Growth {
    let mix = current_mix(c);
    let start: u64 = mix.iter().map(|m| m.count).sum();
    let weights: Vec<u64> = mix.iter().map(|m| m.count).collect();
    let mut seq = MixDraw::new(&weights);
    let requests: Vec<PlacementRequest> = mix.iter().map(|m| request_like(c, m.example)).collect();
    // (bytes, physical) per disk of each kind, as the deploy would charge them.
    let disks: Vec<Vec<(u64, u64)>> = mix
        .iter()
        .map(|m| {
            let vm = c.vm_at(m.example);
            let tpl = c.inv.template(vm.template).size_bytes;
            vm.volumes
                .iter()
                .map(|v| {
                    let vol = c.volume_at(*v);
                    let root = vol.volume_type == VolumeType::Root;
                    (vol.size_bytes, if root { vol.size_bytes.min(tpl) } else { 0 })
                })
                .collect()
        })
        .collect();
    let mix_names: Vec<(String, f64)> = mix
        .iter()
        .map(|m| {
            let so = &c.inv.service_offerings[c.vm_at(m.example).offering.ix()];
            (so.name.clone(), m.count as f64 / start.max(1) as f64)
        })
        .collect();
    let accounts: Vec<AccountIdx> = mix.iter().map(|m| c.vm_at(m.example).account).collect();
    let nclusters = c.inv.clusters.len();
    let mut cpu_pct: Vec<Vec<f64>> = vec![Vec::new(); nclusters];
    let mut mem_pct: Vec<Vec<f64>> = vec![Vec::new(); nclusters];
    let snap = |c: &Cloud, cpu: &mut Vec<Vec<f64>>, mem: &mut Vec<Vec<f64>>| {
        for (cl, agg) in c.book.cluster.iter().enumerate() {
            cpu[cl].push(pct(agg.cpu.fraction_with(0).min(1e9)));
            mem[cl].push(pct(agg.mem.fraction_with(0).min(1e9)));
        }
    };
    snap(c, &mut cpu_pct, &mut mem_pct);
    let mut rng = c.allocator_rng();
    let mut monthly = Vec::new();
    let mut first_failure = None;
    let mut first_failure_month = None;
    let mut f = c.fork();
    for month in 1..=months {
        let want = target(start, percent_per_month, month).saturating_sub(target(start, percent_per_month, month - 1));
        let (mut placed, mut failed, mut in_a_row) = (0u64, 0u64, 0u64);
        for n in 0..want {
            if in_a_row >= GIVE_UP_AFTER {
                failed += want - n;
                break;
            }
            let Some(kind) = seq.next() else { break };
            let req = &requests[kind];
            match f.cloud().place_quiet(req, &mut rng, scratch) {
                Some(p) => {
                    placed += 1;
                    in_a_row = 0;
                    f.add_load(p.host, req.size.footprint(), accounts[kind]);
                    for (k, &(bytes, physical)) in disks[kind].iter().enumerate() {
                        let pool = p.pools[k];
                        let thin = f.cloud().inv.pool(pool).overprovisionable();
                        let phys = if thin { physical } else { bytes };
                        f.add_pool_use(pool, bytes, phys);
                    }
                }
                None => {
                    failed += 1;
                    in_a_row += 1;
                    if first_failure.is_none() {
                        first_failure_month = Some(month);
                        // Replay the refusal for its explanation (same RNG state is
                        // not needed: the headline names the request and scope).
                        let mut replay = rng.clone();
                        if let Err(e) = f.cloud().place_shared(req, &mut replay, scratch) {
                            first_failure = Some(e.headline());
                        }
                    }
                }
            }
        }
        monthly.push(GrowthMonth {
            month,
            target_vms: target(start, percent_per_month, month),
            placed,
            failed,
        });
        snap(f.cloud(), &mut cpu_pct, &mut mem_pct);
        progress(u64::from(month), u64::from(months));
    }
    let clusters = (0..nclusters)
        .filter(|cl| !f.cloud().inv.clusters[*cl].removed)
        .map(|cl| {
            let pol = &f.cloud().policy.clusters[cl];
            let (notify, disable) = (pol.cpu_notify.min(pol.mem_notify), pol.cpu_disable.min(pol.mem_disable));
            let cross = |cpu_t: f64, mem_t: f64| {
                (0..=months).find(|m| cpu_pct[cl][*m as usize] > pct(cpu_t) || mem_pct[cl][*m as usize] > pct(mem_t))
            };
            ClusterGrowth {
                cluster: f.cloud().inv.clusters[cl].name.clone(),
                notify_month: cross(pol.cpu_notify, pol.mem_notify),
                disable_month: cross(pol.cpu_disable, pol.mem_disable),
                cpu_pct: std::mem::take(&mut cpu_pct[cl]),
                memory_pct: std::mem::take(&mut mem_pct[cl]),
                notify_pct: pct(notify),
                disable_pct: pct(disable),
            }
        })
        .collect();
    f.rollback();
    Growth {
        percent_per_month,
        months,
        start_vms: start,
        mix: mix_names,
        monthly,
        clusters,
        first_failure_month,
        first_failure,
    }
}
