//! Applying the hypotheticals: settings, added hosts, then failures and drains
//! (with the re-placement plan the allocator makes for them).

use super::Options;
use super::failures::{Fate, fail_hosts, force_ha};
use super::report::{Move, Replacement};
use crate::allocator::Scratch;
use crate::cloud::{Cloud, HostSpec};
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::inventory::{HostStatus, ResourceState};
use crate::settings::Scope;
use crate::units::GIB;
use crate::vm::{Charge, VmState};
use serde::{Deserialize, Serialize};

/// `--add-hosts CLUSTER:N:SHAPE`; SHAPE is `CORESxMHZ/MEMG` (e.g. `32x2400/256G`)
/// or the name of an existing host to copy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddHosts {
    pub cluster: String,
    pub count: u32,
    pub shape: String,
}

impl AddHosts {
    pub fn parse(s: &str) -> CoreResult<AddHosts> {
        let bad = || {
            CoreError::invalid(
                "addhosts",
                format!("'{s}' is not CLUSTER:N:SHAPE (SHAPE = CORESxMHZ/MEMG or a host name)"),
            )
        };
        let mut it = s.splitn(3, ':');
        let (Some(cluster), Some(n), Some(shape)) = (it.next(), it.next(), it.next()) else {
            return Err(bad());
        };
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > 10_000 || cluster.trim().is_empty() || shape.trim().is_empty() {
            return Err(bad());
        }
        Ok(AddHosts {
            cluster: cluster.trim().to_string(),
            count,
            shape: shape.trim().to_string(),
        })
    }
}

/// (cores, MHz per core, memory bytes, tags)
fn shape(c: &Cloud, s: &str) -> CoreResult<(u32, u32, u64, Vec<String>)> {
    if let Some((_, h)) = c.inv.live_hosts().find(|(_, h)| h.name == s) {
        return Ok((
            h.cpu_cores,
            h.cpu_mhz_per_core,
            h.memory_bytes,
            c.inv.tags.names_of(&h.tags),
        ));
    }
    let bad = || {
        CoreError::invalid(
            "addhosts",
            format!("shape '{s}' is neither CORESxMHZ/MEMG (e.g. 32x2400/256G) nor a host name"),
        )
    };
    let (cpu, mem) = s.split_once('/').ok_or_else(bad)?;
    let (cores, mhz) = cpu
        .to_ascii_lowercase()
        .split_once('x')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(bad)?;
    let cores: u32 = cores.parse().map_err(|_| bad())?;
    let mhz: u32 = mhz.parse().map_err(|_| bad())?;
    let gib: u64 = mem.trim_end_matches(['G', 'g']).parse().map_err(|_| bad())?;
    if cores == 0 || mhz == 0 || gib == 0 || cores > 4096 || mhz > 100_000 || gib > 1 << 20 {
        return Err(bad());
    }
    Ok((cores, mhz, gib * GIB, vec![]))
}

fn find_host(c: &Cloud, s: &str) -> CoreResult<HostIdx> {
    if let Ok(id) = s.parse()
        && let Ok(h) = c.host_idx(HostId(id))
    {
        return Ok(h);
    }
    let found: Vec<HostIdx> = c
        .inv
        .live_hosts()
        .filter(|(_, h)| h.name == s)
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(CoreError::NotFound {
            kind: "host",
            id: s.into(),
        }),
        _ => Err(CoreError::invalid(
            "host",
            format!("host name '{s}' is ambiguous; give its id"),
        )),
    }
}

fn find_cluster(c: &Cloud, s: &str) -> CoreResult<ClusterIdx> {
    if let Ok(id) = s.parse()
        && let Ok(cl) = c.cluster_idx(ClusterId(id))
    {
        return Ok(cl);
    }
    c.inv
        .live_clusters()
        .find(|(_, x)| x.name == s)
        .map(|(i, _)| i)
        .ok_or_else(|| CoreError::NotFound {
            kind: "cluster",
            id: s.into(),
        })
}

fn find_pod(c: &Cloud, s: &str) -> CoreResult<PodIdx> {
    if let Ok(id) = s.parse()
        && let Ok(p) = c.pod_idx(PodId(id))
    {
        return Ok(p);
    }
    c.inv
        .pods
        .iter()
        .position(|x| x.name == s && !x.removed)
        .map(|i| PodIdx(i as u32))
        .ok_or_else(|| CoreError::NotFound {
            kind: "pod",
            id: s.into(),
        })
}

/// Checks every name, shape, setting and number of `opts` against `c`
/// without changing anything (what an API refuses synchronously).
pub fn validate(c: &Cloud, opts: &Options) -> CoreResult<()> {
    for h in opts
        .fail_hosts
        .iter()
        .chain(&opts.drain_hosts)
        .chain(&opts.remove_hosts)
    {
        find_host(c, h)?;
    }
    for cl in opts.fail_clusters.iter().chain(&opts.remove_clusters) {
        find_cluster(c, cl)?;
    }
    for p in &opts.fail_pods {
        find_pod(c, p)?;
    }
    for a in &opts.add_hosts {
        find_cluster(c, &a.cluster)?;
        shape(c, &a.shape)?;
    }
    if let Some((p, m)) = opts.grow
        && !(p.is_finite() && (0.0..=1000.0).contains(&p) && m <= 600)
    {
        return Err(CoreError::invalid(
            "grow",
            "percent per month must be 0..1000 and months 0..600",
        ));
    }
    let mut probe = c.settings.clone();
    for (name, value) in &opts.settings {
        probe.set(name, Scope::Global, value)?;
    }
    Ok(())
}

/// Applies `opts` to `c`: settings, added hosts, then drains and failures
/// (committed). Returns the descriptions and the re-placement plan. Every name
/// is checked before anything changes.
pub fn apply_hypotheticals(c: &mut Cloud, opts: &Options) -> CoreResult<(Vec<String>, Option<Replacement>)> {
    validate(c, opts)?;
    let mut failed: Vec<HostIdx> = Vec::new();
    for h in &opts.fail_hosts {
        failed.push(find_host(c, h)?);
    }
    for cl in &opts.fail_clusters {
        let cl = find_cluster(c, cl)?;
        failed.extend(c.inv.cluster(cl).hosts.iter().copied());
    }
    for p in &opts.fail_pods {
        let p = find_pod(c, p)?;
        for cl in &c.inv.pod_clusters[p.ix()] {
            failed.extend(c.inv.cluster(*cl).hosts.iter().copied());
        }
    }
    failed.sort();
    failed.dedup();
    let mut drained: Vec<HostIdx> = Vec::new();
    for h in &opts.drain_hosts {
        drained.push(find_host(c, h)?);
    }
    drained.sort();
    drained.dedup();
    drained.retain(|h| !failed.contains(h));
    // Removal wins over failure and drain: the host leaves either way.
    let mut removed_clusters: Vec<ClusterIdx> = Vec::new();
    for cl in &opts.remove_clusters {
        removed_clusters.push(find_cluster(c, cl)?);
    }
    removed_clusters.sort();
    removed_clusters.dedup();
    let mut removed: Vec<HostIdx> = Vec::new();
    for h in &opts.remove_hosts {
        removed.push(find_host(c, h)?);
    }
    for cl in &removed_clusters {
        removed.extend(c.inv.cluster(*cl).hosts.iter().copied());
    }
    removed.sort();
    removed.dedup();
    failed.retain(|h| !removed.contains(h));
    drained.retain(|h| !removed.contains(h));
    let mut adds = Vec::new();
    for a in &opts.add_hosts {
        adds.push((find_cluster(c, &a.cluster)?, a.count, shape(c, &a.shape)?));
    }
    let mut said = Vec::new();
    for (name, value) in &opts.settings {
        c.update_setting(name, Scope::Global, value)?;
        said.push(format!("set {name} = {value}"));
    }
    for (cl, count, (cores, mhz, mem, tags)) in adds {
        let cluster = c.inv.cluster(cl).clone();
        for n in 1..=count {
            let mut name = format!("{}-whatif-{n}", cluster.name);
            while c
                .inv
                .live_hosts()
                .any(|(_, h)| h.name == name && h.zone == cluster.zone)
            {
                name.push('+');
            }
            c.add_host(HostSpec {
                name,
                cluster: cluster.id,
                cpu_cores: cores,
                cpu_mhz: mhz,
                memory_bytes: mem,
                tags: tags.clone(),
            })?;
        }
        said.push(format!(
            "add {count} host(s) of {cores} x {mhz} MHz, {} GiB to cluster {}",
            mem / GIB,
            cluster.name
        ));
    }
    if failed.is_empty() && drained.is_empty() && removed.is_empty() {
        return Ok((said, None));
    }
    let name = |c: &Cloud, h: HostIdx| c.inv.host(h).name.clone();
    let mut plan = Replacement {
        failed_hosts: failed.iter().map(|h| name(c, *h)).collect(),
        drained_hosts: drained.iter().map(|h| name(c, *h)).collect(),
        ..Default::default()
    };
    if !drained.is_empty() {
        said.push(format!("drain (maintenance) {}", plan.drained_hosts.join(", ")));
    }
    if !removed.is_empty() {
        let names: Vec<String> = removed.iter().map(|h| name(c, *h)).collect();
        said.push(format!("remove (decommission) {}", names.join(", ")));
    }
    if !failed.is_empty() {
        said.push(format!("fail {}", plan.failed_hosts.join(", ")));
    }
    let force = force_ha(c);
    let mut scratch = Scratch::default();
    let mut rng = c.allocator_rng();
    let mut f = c.fork();
    // Drained hosts are never a destination (PrepareForMaintenance); removals
    // go first (the capacity is gone), then drains, then failures.
    for &h in &drained {
        f.set_resource_state(h, ResourceState::PrepareForMaintenance);
    }
    super::remove::remove(&mut f, &removed, &removed_clusters, &mut rng, &mut scratch, &mut plan);
    for &h in &drained {
        let vms: Vec<VmIdx> = f.cloud().vms_on(h).to_vec();
        for i in vms {
            let vm = f.cloud().vm_at(i);
            if !(vm.state == VmState::Running && vm.charge == (Charge::Used { host: h })) {
                continue;
            }
            let mut req = f.cloud().request_for(i);
            req.own_reservation = None;
            req.preferred_host = None;
            req.avoid.hosts.insert(h);
            let (vmname, vmid) = (vm.name.clone(), vm.id.to_string());
            let mv = match f.cloud().place_shared(&req, &mut rng, &mut scratch) {
                Ok(p) => {
                    f.set_vm(i, Charge::Used { host: p.host }, VmState::Running, Some(p.host));
                    plan.placed += 1;
                    Move {
                        vm: vmname,
                        vmid,
                        from: name(f.cloud(), h),
                        kind: "migrate".into(),
                        to: Some(name(f.cloud(), p.host)),
                        reason: None,
                    }
                }
                Err(e) => {
                    plan.not_placed += 1;
                    Move {
                        vm: vmname,
                        vmid,
                        from: name(f.cloud(), h),
                        kind: "migrate".into(),
                        to: None,
                        reason: Some(e.headline()),
                    }
                }
            };
            plan.moves.push(mv);
        }
    }
    let failed_up: Vec<HostIdx> = failed
        .iter()
        .copied()
        .filter(|h| f.cloud().inv.host(*h).status == HostStatus::Up)
        .collect();
    let mut moves = Vec::new();
    fail_hosts(
        &mut f,
        &failed_up,
        &force,
        &mut rng,
        &mut scratch,
        true,
        false,
        &mut |cl, h, i, fate| {
            let vm = cl.vm_at(i);
            let (kind, to, reason) = match fate {
                Fate::Restarted(d) => ("ha-restart", Some(cl.inv.host(*d).name.clone()), None),
                Fate::Refused(e) => ("ha-restart", None, e.as_ref().map(|e| e.headline())),
                Fate::Lost => (
                    "lost",
                    None,
                    Some("not HA-enabled (or root volume on host-local storage)".to_string()),
                ),
            };
            moves.push(Move {
                vm: vm.name.clone(),
                vmid: vm.id.to_string(),
                from: cl.inv.host(h).name.clone(),
                kind: kind.into(),
                to,
                reason,
            });
        },
    );
    // Hosts already down stay down (their VMs were dealt with when they failed).
    for &h in &failed {
        if f.cloud().inv.host(h).status == HostStatus::Up {
            f.set_host_status(h, HostStatus::Down);
        }
    }
    for m in &moves {
        match (m.kind.as_str(), &m.to) {
            ("lost", _) => plan.lost += 1,
            (_, Some(_)) => plan.placed += 1,
            _ => plan.not_placed += 1,
        }
    }
    plan.moves.extend(moves);
    f.commit();
    Ok((said, Some(plan)))
}
