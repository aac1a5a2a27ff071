//! Host failures tolerated per cluster: the largest k such that ANY k of its
//! Up hosts can fail and every HA VM still restarts.
//!
//! Not exponential, but never a guess. For each k (from 2; k = 1 is the N-1
//! sweep) one of three things decides:
//! * **enumerated** — when C(n, k) is within the budget, every k-subset is
//!   simulated (exact, what small clusters get);
//! * **witness** — the k hosts carrying the most HA memory, the most HA VMs,
//!   or the most free slots are failed together; if an HA VM stays down, k breaks;
//! * **slot-bound** — a proof that any k may fail: with every HA VM no bigger
//!   than a slot (the largest HA VM's CPU and memory) and placeable on every
//!   host of the cluster, the HA VMs of the k busiest hosts fit in the free
//!   slots left after removing the k roomiest hosts (each restart uses at most
//!   one slot of its destination).
//!
//! If none decides, the answer stays a range (`exact = false`).

use super::failures::survives;
use super::report::Tolerance;
use crate::allocator::{PlacementRequest, Reject, Scratch, host_fits};
use crate::cloud::Cloud;
use crate::ids::*;
use crate::inventory::{HostStatus, ResourceState};
use crate::vm::Charge;

#[derive(Debug)]
pub struct ClusterHa {
    pub up: Vec<HostIdx>,
    /// HA-eligible VMs running on each Up host (same order as `up`).
    pub ha_on: Vec<Vec<VmIdx>>,
}

pub fn cluster_ha(c: &Cloud, cl: ClusterIdx, force: &[bool]) -> ClusterHa {
    let up: Vec<HostIdx> = c
        .inv
        .cluster(cl)
        .hosts
        .iter()
        .copied()
        .filter(|h| c.inv.host(*h).status == HostStatus::Up)
        .collect();
    let ha_on = up
        .iter()
        .map(|h| {
            c.vms_on(*h)
                .iter()
                .copied()
                .filter(|i| {
                    c.vm_at(*i).charge == Charge::Used { host: *h } && super::failures::ha_eligible(c, force, *i)
                })
                .collect()
        })
        .collect();
    ClusterHa { up, ha_on }
}

fn binomial(n: usize, k: usize) -> u128 {
    let k = k.min(n - k.min(n));
    let mut r: u128 = 1;
    for i in 0..k {
        r = r * (n - i) as u128 / (i + 1) as u128;
        if r > u64::MAX as u128 {
            return r;
        }
    }
    r
}

/// Calls `f` with each k-subset of `0..n` in lexicographic order until it returns false.
fn each_subset(n: usize, k: usize, f: &mut dyn FnMut(&[usize]) -> bool) -> bool {
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        if !f(&idx) {
            return false;
        }
        let mut i = k;
        loop {
            if i == 0 {
                return true;
            }
            i -= 1;
            if idx[i] < n - k + i {
                idx[i] += 1;
                for j in i + 1..k {
                    idx[j] = idx[j - 1] + 1;
                }
                break;
            }
        }
    }
}

/// Free slots per Up host for the cluster's largest HA VM, or `None` when the
/// slot argument does not apply (an HA VM some host could not take).
fn slots(c: &Cloud, cl: ClusterIdx, ha: &ClusterHa) -> Option<Vec<u64>> {
    let all: Vec<VmIdx> = ha.ha_on.iter().flatten().copied().collect();
    if all.is_empty() {
        return Some(vec![0; ha.up.len()]);
    }
    let pol = &c.policy.clusters[cl.ix()];
    let agg = &c.book.cluster[cl.ix()];
    if pol.thresholds_enabled
        && (agg.cpu.fraction_with(0) > pol.cpu_disable || agg.mem.fraction_with(0) > pol.mem_disable)
    {
        return None;
    }
    let (mut s_cpu, mut s_mem) = (0u64, 0u64);
    for &i in &all {
        let vm = c.vm_at(i);
        if !vm.affinity_groups.is_empty() {
            return None;
        }
        let fp = vm.size.footprint();
        s_cpu = s_cpu.max(fp.cpu_mhz);
        s_mem = s_mem.max(fp.mem_bytes);
    }
    // Every HA VM must be acceptable to every Up, Enabled host but for capacity:
    // the allocator's own host filter, asked with no size.
    let mut out = Vec::with_capacity(ha.up.len());
    for &h in &ha.up {
        let host = c.inv.host(h);
        if host.resource_state != ResourceState::Enabled {
            out.push(0);
            continue;
        }
        for &i in &all {
            let mut req: PlacementRequest = c.request_for(i);
            req.preferred_host = None;
            req.own_reservation = None;
            req.ha_restart = true;
            match host_fits(c, &req, h) {
                None | Some(Reject::CpuCapacity { .. } | Reject::MemoryCapacity { .. } | Reject::MaxGuests { .. }) => {}
                Some(_) => return None,
            }
        }
        let b = &c.book.host[h.ix()];
        let free_cpu = b.cpu.total.saturating_sub(b.cpu.allocated());
        let free_mem = b.mem.total.saturating_sub(b.mem.allocated());
        let limit = u64::from(c.inv.capability(host.hypervisor).max_guests);
        let guests = u64::from(c.book.host_guests[h.ix()]);
        let n = (free_cpu / s_cpu.max(1))
            .min(free_mem / s_mem.max(1))
            .min(limit.saturating_sub(guests));
        out.push(n);
    }
    Some(out)
}

fn top_k_sum(v: &[u64], k: usize) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable_by(|a, b| b.cmp(a));
    s.iter().take(k).sum()
}

fn top_k_by(ha: &ClusterHa, k: usize, key: &dyn Fn(usize) -> u64) -> Vec<HostIdx> {
    let mut ix: Vec<usize> = (0..ha.up.len()).collect();
    ix.sort_by(|a, b| key(*b).cmp(&key(*a)).then(a.cmp(b)));
    let mut out: Vec<HostIdx> = ix.into_iter().take(k).map(|i| ha.up[i]).collect();
    out.sort();
    out
}

/// `n1_break`: an Up host of this cluster whose failure alone leaves an HA VM down.
pub fn tolerance(
    c: &mut Cloud,
    cl: ClusterIdx,
    force: &[bool],
    n1_break: Option<HostIdx>,
    budget: u64,
    scratch: &mut Scratch,
) -> Tolerance {
    let names = |c: &Cloud, hs: &[HostIdx]| hs.iter().map(|h| c.inv.host(*h).name.clone()).collect::<Vec<_>>();
    if let Some(h) = n1_break {
        return Tolerance {
            tolerated: 0,
            breaks_at: Some(1),
            exact: true,
            method: vec!["k=1: witness (N-1 sweep)".into()],
            witness: names(c, &[h]),
        };
    }
    let ha = cluster_ha(c, cl, force);
    let n = ha.up.len();
    let mut method = vec!["k=1: enumerated (N-1 sweep)".to_string()];
    if n == 0 {
        return Tolerance {
            tolerated: 0,
            breaks_at: None,
            exact: false,
            method: vec!["no Up hosts".into()],
            witness: vec![],
        };
    }
    let slot_counts = slots(c, cl, &ha);
    let ha_counts: Vec<u64> = ha.ha_on.iter().map(|v| v.len() as u64).collect();
    let ha_mem: Vec<u64> = ha
        .ha_on
        .iter()
        .map(|v| v.iter().map(|i| c.vm_at(*i).size.footprint().mem_bytes).sum())
        .collect();
    let mut tolerated = 1u32;
    for k in 2..=n {
        // Proof first: cheapest.
        if let Some(sl) = &slot_counts {
            let total: u64 = sl.iter().sum();
            if top_k_sum(&ha_counts, k) <= total.saturating_sub(top_k_sum(sl, k)) {
                method.push(format!("k={k}: slot-bound"));
                tolerated = k as u32;
                continue;
            }
        }
        if binomial(n, k) <= u128::from(budget) {
            let mut witness = None;
            each_subset(n, k, &mut |ix| {
                let hs: Vec<HostIdx> = ix.iter().map(|i| ha.up[*i]).collect();
                if survives(c, &hs, force, scratch) {
                    true
                } else {
                    witness = Some(hs);
                    false
                }
            });
            method.push(format!("k={k}: enumerated"));
            if let Some(w) = witness {
                return Tolerance {
                    tolerated,
                    breaks_at: Some(k as u32),
                    exact: true,
                    method,
                    witness: names(c, &w),
                };
            }
            tolerated = k as u32;
            continue;
        }
        let sl = slot_counts.clone().unwrap_or_default();
        let candidates = [
            top_k_by(&ha, k, &|i| ha_mem[i]),
            top_k_by(&ha, k, &|i| ha_counts[i]),
            top_k_by(&ha, k, &|i| sl.get(i).copied().unwrap_or(0)),
        ];
        for w in candidates {
            if !survives(c, &w, force, scratch) {
                method.push(format!("k={k}: witness"));
                return Tolerance {
                    tolerated,
                    breaks_at: Some(k as u32),
                    exact: k as u32 == tolerated + 1,
                    method,
                    witness: names(c, &w),
                };
            }
        }
        method.push(format!("k={k}: undecided (no proof, no witness within the budget)"));
        return Tolerance {
            tolerated,
            breaks_at: None,
            exact: false,
            method,
            witness: vec![],
        };
    }
    Tolerance {
        tolerated,
        breaks_at: None,
        exact: true,
        method,
        witness: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_all_visited_once() {
        for n in 1..8 {
            for k in 1..=n {
                let mut count = 0u128;
                each_subset(n, k, &mut |ix| {
                    assert!(ix.windows(2).all(|w| w[0] < w[1]));
                    count += 1;
                    true
                });
                assert_eq!(count, binomial(n, k), "C({n},{k})");
            }
        }
    }
}
