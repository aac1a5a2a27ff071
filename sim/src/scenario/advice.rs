//! Warnings about a valid scenario that will not do what its author likely
//! means: an offering no host of its zone can ever hold, or one that needs
//! host-local storage in a zone without it. `sim run` prints them; with
//! `--strict` they refuse the scenario.

use super::model::{OfferingDef, Scenario, ZoneDef};

/// `offerings[1] (huge): ...` lines, in file order.
pub fn warnings(s: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    for (i, o) in s.offerings.iter().enumerate() {
        // The zones its workloads deploy to; all zones if no workload uses it.
        let mut zones: Vec<&ZoneDef> = s
            .workload
            .iter()
            .filter(|w| w.offering == o.name)
            .filter_map(|w| s.zones.iter().find(|z| z.name == s.workload_zone(w)))
            .collect();
        zones.dedup_by(|a, b| a.name == b.name);
        let used = !zones.is_empty();
        if !used {
            zones = s.zones.iter().collect();
        }
        let problems: Vec<(String, String)> = zones
            .iter()
            .filter_map(|z| zone_problem(o, z, factors(s)).map(|p| (z.name.clone(), p)))
            .collect();
        // An unused offering only warns when it fits nowhere at all.
        if problems.is_empty() || (!used && problems.len() < zones.len()) {
            continue;
        }
        for (zone, why) in problems {
            out.push(format!(
                "offerings[{i}] ({}): fits no host of zone {zone}: {why}",
                o.name
            ));
        }
    }
    out
}

/// The global CPU and memory overprovisioning factors (cluster overrides are
/// not looked at: a warning errs on the side of silence).
fn factors(s: &Scenario) -> (f64, f64) {
    let get = |name: &str| {
        s.settings
            .get(name)
            .and_then(|v| {
                v.as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .or_else(|| v.as_str()?.parse().ok())
            })
            .unwrap_or(1.0)
            .max(1.0)
    };
    let cluster_max = |name: &str| {
        s.zones
            .iter()
            .flat_map(|z| &z.pods)
            .flat_map(|p| &p.clusters)
            .filter_map(|c| c.settings.get(name))
            .filter_map(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
            .fold(1.0f64, f64::max)
    };
    (
        get("cpu.overprovisioning.factor").max(cluster_max("cpu.overprovisioning.factor")),
        get("mem.overprovisioning.factor").max(cluster_max("mem.overprovisioning.factor")),
    )
}

/// Why no host of zone `z` could hold one VM of `o` even empty, if so.
pub fn zone_problem(o: &OfferingDef, z: &ZoneDef, (cpu_f, mem_f): (f64, f64)) -> Option<String> {
    let groups: Vec<_> = z.pods.iter().flat_map(|p| &p.clusters).flat_map(|c| &c.hosts).collect();
    if groups.is_empty() {
        return Some("the zone has no hosts".into());
    }
    if o.storage == "local" {
        if !z.local_storage_enabled {
            return Some(
                "the offering puts its root disk on host-local storage and the zone has local storage disabled".into(),
            );
        }
        if groups.iter().all(|g| g.local_storage_gib == 0) {
            return Some(
                "the offering puts its root disk on host-local storage and no host of the zone has any".into(),
            );
        }
    }
    let cores = |g: &super::model::HostGroupDef| g.sockets.saturating_mul(g.cores);
    let fits = groups.iter().any(|g| {
        cores(g) >= o.cpu
            && g.mhz >= o.mhz
            && (u64::from(cores(g)) * u64::from(g.mhz)) as f64 * cpu_f >= (u64::from(o.cpu) * u64::from(o.mhz)) as f64
            && (g.memory_gib * 1024) as f64 * mem_f >= o.memory_mb as f64
    });
    if fits {
        return None;
    }
    let mut why = Vec::new();
    let max_cores = groups.iter().map(|g| cores(g)).max().unwrap_or(0);
    if o.cpu > max_cores {
        why.push(format!("needs {} vCPUs, the largest host has {max_cores} cores", o.cpu));
    }
    let max_mhz = groups.iter().map(|g| g.mhz).max().unwrap_or(0);
    if o.mhz > max_mhz {
        why.push(format!(
            "needs {} MHz per vCPU, the fastest core runs at {max_mhz} MHz",
            o.mhz
        ));
    }
    let max_mem = groups.iter().map(|g| g.memory_gib).max().unwrap_or(0);
    if o.memory_mb as f64 > (max_mem * 1024) as f64 * mem_f {
        why.push(format!(
            "needs {} GiB of memory, the largest host has {max_mem} GiB",
            o.memory_mb.div_ceil(1024)
        ));
    }
    if why.is_empty() {
        why.push("no single host has enough cores, core speed and memory together".into());
    }
    Some(why.join("; "))
}
