//! Capacity what-if analysis on a `Cloud` (issue 10): hypothetical failures,
//! drains, added hosts, setting changes and growth, answered with the
//! production allocator on cheap forks (`cloud::Fork`), never on clones.
//!
//! Pure and deterministic: the same cloud and options give the same report.

pub mod capacity;
pub mod export;
pub mod failures;
pub mod growth;
mod hypo;
mod remove;
pub mod report;
pub mod tolerance;

pub use hypo::{AddHosts, apply_hypotheticals, validate};
pub use report::*;

use crate::allocator::Scratch;
use crate::cloud::Cloud;
use crate::error::CoreResult;
use crate::ids::*;
use crate::inventory::HostStatus;
use crate::vm::Charge;
use failures::{Fate, fail_hosts, force_ha};
use serde::{Deserialize, Serialize};

/// The hypotheticals and limits of one what-if (the CLI flags and API parameters).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Options {
    /// Host names or ids.
    pub fail_hosts: Vec<String>,
    pub fail_clusters: Vec<String>,
    pub fail_pods: Vec<String>,
    pub drain_hosts: Vec<String>,
    /// Hosts and clusters removed (decommissioned): VMs migrated away by plan,
    /// then the capacity leaves the inventory (unlike a failure: no HA, no
    /// lost VMs, and the host no longer counts anywhere).
    #[serde(default)]
    pub remove_hosts: Vec<String>,
    #[serde(default)]
    pub remove_clusters: Vec<String>,
    pub add_hosts: Vec<AddHosts>,
    /// (percent per month, months)
    pub grow: Option<(f64, u32)>,
    /// Global settings to change first (`--set NAME=VALUE`).
    pub settings: Vec<(String, String)>,
    /// Most k-subsets simulated per cluster and k when proving failures tolerated.
    pub exact_budget: u64,
    /// Skip the full allocator explanation texts (reasons stay).
    pub brief: bool,
}

impl Options {
    pub fn new() -> Options {
        Options {
            exact_budget: 256,
            ..Default::default()
        }
    }
}

/// Progress: (stage, done, total).
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, u64);

fn summary(c: &Cloud, force: &[bool]) -> Summary {
    let running: Vec<VmIdx> = c
        .vms()
        .filter(|(_, v)| matches!(v.charge, Charge::Used { .. }))
        .map(|(i, _)| i)
        .collect();
    Summary {
        zones: c.inv.zones.len(),
        pods: c.inv.pods.iter().filter(|p| !p.removed).count(),
        clusters: c.inv.live_clusters().count(),
        hosts: c.inv.live_hosts().count(),
        hosts_up: c.inv.live_hosts().filter(|(_, h)| h.status == HostStatus::Up).count(),
        vms: c.vm_count(),
        vms_running: running.len(),
        ha_vms_running: running.iter().filter(|i| failures::ha_eligible(c, force, **i)).count(),
    }
}

/// The N-1 sweep: every Up host failed alone, HA replayed, rolled back.
pub fn n_minus_1(c: &mut Cloud, force: &[bool], brief: bool, progress: Progress) -> Vec<HostFailure> {
    let mut scratch = Scratch::default();
    let hosts: Vec<HostIdx> = (0..c.inv.hosts.len() as u32)
        .map(HostIdx)
        .filter(|h| c.inv.host(*h).status == HostStatus::Up)
        .collect();
    let total = hosts.len() as u64;
    let mut out = Vec::with_capacity(hosts.len());
    for (n, h) in hosts.into_iter().enumerate() {
        let mut rng = c.allocator_rng();
        let (name, id, cluster) = {
            let host = c.inv.host(h);
            (
                host.name.clone(),
                host.id.to_string(),
                c.inv.cluster(host.cluster).name.clone(),
            )
        };
        let mut row = HostFailure {
            host: name,
            hostid: id,
            cluster,
            ..Default::default()
        };
        let mut f = c.fork();
        fail_hosts(
            &mut f,
            &[h],
            force,
            &mut rng,
            &mut scratch,
            false,
            false,
            &mut |cl, _, i, fate| match fate {
                Fate::Restarted(_) => {
                    row.ha_vms += 1;
                    row.restarted += 1;
                }
                Fate::Refused(_) => {
                    row.ha_vms += 1;
                    let vm = cl.vm_at(i);
                    row.not_restarted.push(VmRefusal {
                        vm: vm.name.clone(),
                        vmid: vm.id.to_string(),
                        reason: String::new(),
                        explanation: String::new(),
                    });
                }
                Fate::Lost => row.lost += 1,
            },
        );
        f.rollback();
        if !row.not_restarted.is_empty() {
            // Rare: run it again with explanations (the same RNG gives the same decisions).
            row.not_restarted.clear();
            let mut rng = c.allocator_rng();
            let mut f = c.fork();
            fail_hosts(
                &mut f,
                &[h],
                force,
                &mut rng,
                &mut scratch,
                true,
                false,
                &mut |cl, _, i, fate| {
                    if let Fate::Refused(Some(e)) = fate {
                        let vm = cl.vm_at(i);
                        row.not_restarted.push(VmRefusal {
                            vm: vm.name.clone(),
                            vmid: vm.id.to_string(),
                            reason: e.headline(),
                            explanation: if brief { String::new() } else { e.to_text() },
                        });
                    }
                },
            );
            f.rollback();
        }
        out.push(row);
        if n % 64 == 0 || n as u64 + 1 == total {
            progress("N-1 sweep", n as u64 + 1, total);
        }
    }
    out
}

/// Runs every answer on `c` after applying the hypotheticals of `opts` to it
/// (`c` is the caller's own copy: the hypotheticals stay applied).
pub fn run(c: &mut Cloud, opts: &Options, progress: Progress) -> CoreResult<Report> {
    let (hypotheticals, replacement) = apply_hypotheticals(c, opts)?;
    let force = force_ha(c);
    let inventory = summary(c, &force);
    let sweep = n_minus_1(c, &force, opts.brief, progress);
    let mut scratch = Scratch::default();
    let largest = capacity::largest_offering(c);
    let nclusters = c.inv.clusters.len();
    let mut n1_breaks: Vec<Option<HostIdx>> = vec![None; nclusters];
    for r in sweep.iter().filter(|r| !r.not_restarted.is_empty()) {
        if let Some(h) = r.hostid.parse().ok().and_then(|id| c.host_idx(HostId(id)).ok()) {
            let cl = c.inv.host(h).cluster.ix();
            n1_breaks[cl] = n1_breaks[cl].or(Some(h));
        }
    }
    let mut clusters = Vec::with_capacity(nclusters);
    for cl in 0..nclusters {
        let cl = ClusterIdx(cl as u32);
        if c.inv.cluster(cl).removed {
            continue;
        }
        let n1_break = n1_breaks[cl.ix()];
        let failures_tolerated = tolerance::tolerance(c, cl, &force, n1_break, opts.exact_budget, &mut scratch);
        let cluster = c.inv.cluster(cl);
        let pol = c.policy.clusters[cl.ix()];
        let agg = c.book.cluster[cl.ix()];
        let cpu = capacity::resource(&agg.cpu, pol.cpu_notify, pol.cpu_disable);
        let memory = capacity::resource(&agg.mem, pol.mem_notify, pol.mem_disable);
        let ha = tolerance::cluster_ha(c, cl, &force);
        clusters.push(ClusterReport {
            id: cluster.id.to_string(),
            name: cluster.name.clone(),
            pod: c.inv.pod(cluster.pod).name.clone(),
            zone: c.inv.zone(cluster.zone).name.clone(),
            hosts: cluster.hosts.len(),
            hosts_up: ha.up.len(),
            ha_vms: ha.ha_on.iter().map(|v| v.len()).sum(),
            headroom_pct: capacity::pct(
                (pol.cpu_disable - agg.cpu.fraction_with(0)).min(pol.mem_disable - agg.mem.fraction_with(0)),
            ),
            cpu,
            memory,
            failures_tolerated,
            slots: capacity::slots(c, cl),
            stranded: largest.map(|so| capacity::stranded(c, cl, &c.inv.service_offerings[so])),
        });
        progress("failures tolerated", cl.0 as u64 + 1, nclusters as u64);
    }
    let root_bytes = capacity::root_disk_bytes(c);
    let fit_now = c
        .inv
        .service_offerings
        .iter()
        .zip(&root_bytes)
        .filter(|(so, _)| so.memory_mb > 0 && so.cpu_number > 0 && so.cpu_speed_mhz > 0)
        .map(|(so, &root)| {
            let per_cluster: Vec<ClusterFit> = (0..nclusters)
                .filter(|cl| !c.inv.clusters[*cl].removed)
                .map(|cl| ClusterFit {
                    cluster: c.inv.clusters[cl].name.clone(),
                    fits: capacity::cluster_fit(c, ClusterIdx(cl as u32), so, root, true),
                })
                .collect();
            OfferingFit {
                offering: so.name.clone(),
                id: so.id.to_string(),
                cpu: so.cpu_number,
                mhz: so.cpu_speed_mhz,
                memory_mib: so.memory_mb,
                fits: per_cluster.iter().map(|x| x.fits).sum(),
                per_cluster,
            }
        })
        .collect();
    let growth = opts
        .grow
        .map(|(p, m)| growth::project(c, p, m, &mut scratch, &mut |d, t| progress("growth", d, t)));
    Ok(Report {
        schema: SCHEMA.to_string(),
        inventory,
        hypotheticals,
        replacement,
        clusters,
        n_minus_1: sweep,
        fit_now,
        growth,
    })
}
