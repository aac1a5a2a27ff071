//! Planners (cluster and pod order) and host ordering (`vm.allocation.algorithm`).

use super::PlacementRequest;
use crate::capacity::Compute;
use crate::cloud::Cloud;
use crate::ids::*;
use crate::inventory::PlannerKind;
use serde::{Deserialize, Serialize};

/// `vm.allocation.algorithm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    Random,
    FirstFit,
    UserDispersing,
    UserConcentratedPodRandom,
    UserConcentratedPodFirstFit,
    FirstFitLeastConsumed,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Algorithm> {
        Some(match s.to_ascii_lowercase().as_str() {
            "random" => Algorithm::Random,
            "firstfit" => Algorithm::FirstFit,
            "userdispersing" => Algorithm::UserDispersing,
            "userconcentratedpod_random" => Algorithm::UserConcentratedPodRandom,
            "userconcentratedpod_firstfit" => Algorithm::UserConcentratedPodFirstFit,
            "firstfitleastconsumed" => Algorithm::FirstFitLeastConsumed,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Random => "random",
            Algorithm::FirstFit => "firstfit",
            Algorithm::UserDispersing => "userdispersing",
            Algorithm::UserConcentratedPodRandom => "userconcentratedpod_random",
            Algorithm::UserConcentratedPodFirstFit => "userconcentratedpod_firstfit",
            Algorithm::FirstFitLeastConsumed => "firstfitleastconsumed",
        }
    }
    pub fn random_hosts(self) -> bool {
        matches!(self, Algorithm::Random | Algorithm::UserConcentratedPodRandom)
    }
}

/// `host.capacityType.to.order.clusters`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum OrderBy {
    Cpu,
    Ram,
    Combined { cpu_weight: f64 },
}

impl OrderBy {
    /// Allocated fraction used as the sort key (lower = more free = earlier).
    #[inline]
    pub fn key(self, c: &Compute) -> f64 {
        let cpu = c.cpu.fraction_with(0);
        let mem = c.mem.fraction_with(0);
        match self {
            OrderBy::Cpu => cpu,
            OrderBy::Ram => mem,
            OrderBy::Combined { cpu_weight } => cpu_weight * cpu + (1.0 - cpu_weight) * mem,
        }
    }
}

fn key_order(a: &(f64, u32), b: &(f64, u32)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

fn sort_by_key(keys: &mut [(f64, u32)]) {
    keys.sort_unstable_by(key_order);
}

/// Clusters put in order before the first one is tried. A placement nearly
/// always ends in one of the first few, so the rest are sorted only if the
/// planner gets that far (`finish_cluster_order`).
const ORDERED_PREFIX: usize = 8;

/// Writes to `out` the clusters of the `ORDERED_PREFIX` smallest keys, in
/// order, then the others in no particular order; `keys` is left as it was.
/// Returns how many of `out` are in their final place.
fn order_prefix(keys: &mut [(f64, u32)], out: &mut Vec<ClusterIdx>) -> usize {
    if keys.len() <= ORDERED_PREFIX {
        sort_by_key(keys);
        out.extend(keys.iter().map(|k| ClusterIdx(k.1)));
        return keys.len();
    }
    // One pass keeping the smallest keys sorted in a small array: most keys
    // lose against its last entry at once.
    let mut best = [(f64::INFINITY, u32::MAX); ORDERED_PREFIX];
    let mut n = 0;
    for &k in keys.iter() {
        if n == ORDERED_PREFIX && key_order(&k, &best[n - 1]).is_ge() {
            continue;
        }
        let mut i = n.min(ORDERED_PREFIX - 1);
        n = (n + 1).min(ORDERED_PREFIX);
        best[i] = k;
        while i > 0 && key_order(&best[i], &best[i - 1]).is_lt() {
            best.swap(i, i - 1);
            i -= 1;
        }
    }
    out.extend(best.iter().map(|k| ClusterIdx(k.1)));
    // Placeholders: `finish_cluster_order` writes the tail before it is tried.
    out.extend(keys[ORDERED_PREFIX..].iter().map(|k| ClusterIdx(k.1)));
    ORDERED_PREFIX
}

/// Completes an order that `order_clusters` left partly done from `from` on;
/// `keys` is the buffer it was given, untouched since. Keys are distinct
/// (cluster indexes break ties), so the full sort agrees with the prefix.
pub(super) fn finish_cluster_order(out: &mut [ClusterIdx], keys: &mut [(f64, u32)], from: usize) {
    sort_by_key(keys);
    for (o, k) in out[from..].iter_mut().zip(&keys[from..]) {
        *o = ClusterIdx(k.1);
    }
}

/// Fills `out` with the zone's clusters in the order the planner tries them.
/// Returns how many of them are in order: the rest (the default planner's
/// tail) must be put in order with `finish_cluster_order` before being tried.
pub(super) fn order_clusters(
    c: &Cloud,
    req: &PlacementRequest,
    out: &mut Vec<ClusterIdx>,
    keys: &mut Vec<(f64, u32)>,
) -> usize {
    out.clear();
    let g = &c.policy.global;
    let planner = req.planner.unwrap_or(g.planner);
    let pods = &c.inv.zone_pods[req.zone.ix()];
    let by_capacity = |keys: &mut Vec<(f64, u32)>, clusters: &mut dyn Iterator<Item = ClusterIdx>| {
        keys.clear();
        keys.extend(clusters.map(|cl| (g.order_by.key(&c.book.cluster[cl.ix()]), cl.0)));
        sort_by_key(keys);
    };
    match planner {
        PlannerKind::FirstFit if !g.pods_ordered => {
            keys.clear();
            keys.extend(
                pods.iter()
                    .flat_map(|p| c.inv.pod_clusters[p.ix()].iter())
                    .map(|cl| (g.order_by.key(&c.book.cluster[cl.ix()]), cl.0)),
            );
            return order_prefix(keys, out);
        }
        PlannerKind::FirstFit => {
            let mut pod_keys: Vec<(f64, u32)> = pods
                .iter()
                .map(|p| (g.order_by.key(&c.book.pod[p.ix()]), p.0))
                .collect();
            sort_by_key(&mut pod_keys);
            for (_, p) in pod_keys {
                by_capacity(keys, &mut c.inv.pod_clusters[p as usize].iter().copied());
                out.extend(keys.iter().map(|k| ClusterIdx(k.1)));
            }
        }
        PlannerKind::UserDispersing => {
            // Rank by capacity and by the account's VM count; blend the ranks.
            by_capacity(
                keys,
                &mut pods.iter().flat_map(|p| c.inv.pod_clusters[p.ix()].iter().copied()),
            );
            let cap_order: Vec<u32> = keys.iter().map(|k| k.1).collect();
            let mut disp: Vec<(f64, u32)> = cap_order
                .iter()
                .map(|&cl| (f64::from(c.occupancy.cluster(req.account, ClusterIdx(cl))), cl))
                .collect();
            sort_by_key(&mut disp);
            let mut disp_rank = vec![0usize; c.inv.clusters.len()];
            for (rank, d) in disp.iter().enumerate() {
                disp_rank[d.1 as usize] = rank;
            }
            let w = g.dispersion_weight;
            keys.clear();
            for (rank_cap, &cl) in cap_order.iter().enumerate() {
                let rank_disp = disp_rank[cl as usize];
                keys.push((
                    (1.0 - w) * rank_cap as f64 + w * rank_disp as f64 + rank_cap as f64 * 1e-9,
                    cl,
                ));
            }
            sort_by_key(keys);
            out.extend(keys.iter().map(|k| ClusterIdx(k.1)));
        }
        PlannerKind::UserConcentratedPod => {
            // Pods already holding the account's VMs first (most first), then by capacity.
            let mut pod_keys: Vec<(f64, u32)> = pods
                .iter()
                .map(|p| {
                    let n = f64::from(c.occupancy.pod(req.account, *p));
                    let cap = g.order_by.key(&c.book.pod[p.ix()]);
                    (-n * 1e6 + cap, p.0)
                })
                .collect();
            sort_by_key(&mut pod_keys);
            for (_, p) in pod_keys {
                by_capacity(keys, &mut c.inv.pod_clusters[p as usize].iter().copied());
                out.extend(keys.iter().map(|k| ClusterIdx(k.1)));
            }
        }
    }
    out.len()
}

/// Fills `out` with the cluster's hosts in the order the algorithm tries them.
/// For the random algorithms the caller shuffles lazily while scanning.
pub(super) fn order_hosts(
    c: &Cloud,
    req: &PlacementRequest,
    cl: ClusterIdx,
    out: &mut Vec<HostIdx>,
    keys: &mut Vec<(f64, u32)>,
) {
    out.clear();
    out.extend_from_slice(&c.inv.cluster(cl).hosts);
    let g = &c.policy.global;
    match g.algorithm {
        Algorithm::Random
        | Algorithm::UserConcentratedPodRandom
        | Algorithm::FirstFit
        | Algorithm::UserConcentratedPodFirstFit => {}
        Algorithm::UserDispersing => {
            // Keys computed once, not per comparison.
            keys.clear();
            keys.extend(out.iter().map(|h| (f64::from(c.occupancy.host(req.account, *h)), h.0)));
            sort_by_key(keys);
            out.clear();
            out.extend(keys.iter().map(|k| HostIdx(k.1)));
        }
        Algorithm::FirstFitLeastConsumed => {
            keys.clear();
            keys.extend(out.iter().map(|h| (g.order_by.key(&c.book.host[h.ix()]), h.0)));
            sort_by_key(keys);
            out.clear();
            out.extend(keys.iter().map(|k| HostIdx(k.1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::DetRng;

    #[test]
    fn an_ordered_prefix_then_the_tail_is_the_full_order() {
        let mut rng = DetRng::new(5);
        for len in [0, 1, 7, 8, 9, 10, 57, 200] {
            // Few distinct fractions, so ties are broken by the cluster index.
            let keys: Vec<(f64, u32)> = (0..len).map(|i| (rng.below(7) as f64 / 7.0, i as u32)).collect();
            let mut full = keys.clone();
            sort_by_key(&mut full);
            let want: Vec<ClusterIdx> = full.iter().map(|k| ClusterIdx(k.1)).collect();
            let mut lazy = keys;
            let mut out = Vec::new();
            let ordered = order_prefix(&mut lazy, &mut out);
            assert_eq!(out.len(), len);
            assert_eq!(out[..ordered], want[..ordered], "prefix of {len}");
            finish_cluster_order(&mut out, &mut lazy, ordered);
            assert_eq!(out, want, "{len} clusters");
        }
    }
}
