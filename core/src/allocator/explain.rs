//! Explanations: every verdict of a placement, grouped zone > pod > cluster >
//! host (with pool verdicts), rendered as text or JSON.

use super::{PlacementRequest, Recorder, Reject, RenderCtx};
use crate::cloud::Cloud;
use crate::ids::*;
use crate::inventory::{Inventory, StorageType};
use crate::units::Gib;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::fmt::Write;

#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // indices kept for debugging output
enum Event {
    Zone(ZoneIdx, Option<Reject>),
    Pod(PodIdx, Option<Reject>),
    Cluster(ClusterIdx, Option<Reject>),
    Host(HostIdx, Option<Reject>),
    Pool(ClusterIdx, Option<HostIdx>, usize, PoolIdx, Option<Reject>),
}

/// Records every verdict in order, cheaply; `Explanation::build` makes sense of them.
#[derive(Debug, Default)]
pub struct TraceRecorder {
    events: Vec<Event>,
}

impl Recorder for TraceRecorder {
    const ENABLED: bool = true;
    fn zone(&mut self, z: ZoneIdx, r: Option<Reject>) {
        self.events.push(Event::Zone(z, r));
    }
    fn pod(&mut self, p: PodIdx, r: Option<Reject>) {
        self.events.push(Event::Pod(p, r));
    }
    fn cluster(&mut self, c: ClusterIdx, r: Option<Reject>) {
        self.events.push(Event::Cluster(c, r));
    }
    fn host(&mut self, h: HostIdx, r: Option<Reject>) {
        self.events.push(Event::Host(h, r));
    }
    fn pool(&mut self, c: ClusterIdx, h: Option<HostIdx>, d: usize, p: PoolIdx, r: Option<Reject>) {
        self.events.push(Event::Pool(c, h, d, p, r));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Chosen,
    Passed,
    Rejected,
}

/// One zone, pod, cluster, host or pool and what the allocator decided about it.
#[derive(Clone, Debug, Serialize)]
pub struct VerdictLine {
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For pools: which disk was being placed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<VerdictLine>,
}

impl VerdictLine {
    fn new(kind: &'static str, id: String, name: String) -> Self {
        VerdictLine {
            kind,
            id,
            name,
            verdict: Verdict::Passed,
            code: None,
            reason: None,
            disk: None,
            children: Vec::new(),
        }
    }
    fn set(&mut self, name: &str, r: Option<Reject>, ctx: &RenderCtx<'_>, tags: Option<&crate::inventory::TagSet>) {
        self.name = name.to_string();
        match r {
            Some(r) => {
                self.verdict = Verdict::Rejected;
                self.code = Some(r.code());
                self.reason = Some(r.render(ctx, tags));
            }
            None => {
                self.verdict = Verdict::Passed;
                self.code = None;
                self.reason = None;
            }
        }
    }
    fn count(&self, kind: &str) -> usize {
        usize::from(self.kind == kind) + self.children.iter().map(|c| c.count(kind)).sum::<usize>()
    }
}

/// Why a VM was (or was not) placed.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub vm: String,
    pub request: String,
    pub placed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostid: Option<HostId>,
    /// Set when no host of the zone could hold the VM even empty (too few
    /// cores, too slow cores, too little memory or storage): why, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub never_fits: Option<String>,
    pub zone: VerdictLine,
}

impl Explanation {
    pub fn build(c: &Cloud, req: &PlacementRequest, trace: &TraceRecorder, placed: Option<HostIdx>) -> Explanation {
        let inv = &c.inv;
        let vm_name = |v: VmIdx| c.vm_name(v);
        let ctx = RenderCtx {
            inv,
            host_tags: &req.host_tags,
            disk_labels: req.new_disks.iter().map(|d| d.label).collect(),
            disk_tags: req.new_disks.iter().map(|d| &d.tags).collect(),
            disk_sizes: req.new_disks.iter().map(|d| d.size_bytes).collect(),
            vm_name: &vm_name,
            ha_tag: c.policy.global.ha_tag_name.clone(),
            settings: &c.settings,
        };
        let z = inv.zone(req.zone);
        let mut zone = VerdictLine::new("zone", z.id.to_string(), z.name.clone());
        // Dense-index maps to each line's position (no searching by id string).
        let mut pods: FxHashMap<PodIdx, usize> = FxHashMap::default();
        let mut clusters: FxHashMap<ClusterIdx, (usize, usize)> = FxHashMap::default();
        let mut hosts: FxHashMap<HostIdx, (usize, usize, usize)> = FxHashMap::default();
        let mut pools: FxHashMap<(ClusterIdx, Option<HostIdx>, usize, PoolIdx), Vec<usize>> = FxHashMap::default();
        fn pod_line(zone: &mut VerdictLine, pods: &mut FxHashMap<PodIdx, usize>, inv: &Inventory, p: PodIdx) -> usize {
            *pods.entry(p).or_insert_with(|| {
                let pod = inv.pod(p);
                zone.children
                    .push(VerdictLine::new("pod", pod.id.to_string(), pod.name.clone()));
                zone.children.len() - 1
            })
        }
        fn cluster_line(
            zone: &mut VerdictLine,
            pods: &mut FxHashMap<PodIdx, usize>,
            clusters: &mut FxHashMap<ClusterIdx, (usize, usize)>,
            inv: &Inventory,
            cl: ClusterIdx,
        ) -> (usize, usize) {
            if let Some(x) = clusters.get(&cl) {
                return *x;
            }
            let cluster = inv.cluster(cl);
            let p = pod_line(zone, pods, inv, cluster.pod);
            let list = &mut zone.children[p].children;
            list.push(VerdictLine::new(
                "cluster",
                cluster.id.to_string(),
                cluster.name.clone(),
            ));
            let x = (p, list.len() - 1);
            clusters.insert(cl, x);
            x
        }
        fn host_line(
            zone: &mut VerdictLine,
            pods: &mut FxHashMap<PodIdx, usize>,
            clusters: &mut FxHashMap<ClusterIdx, (usize, usize)>,
            hosts: &mut FxHashMap<HostIdx, (usize, usize, usize)>,
            inv: &Inventory,
            h: HostIdx,
        ) -> (usize, usize, usize) {
            if let Some(x) = hosts.get(&h) {
                return *x;
            }
            let host = inv.host(h);
            let (p, c) = cluster_line(zone, pods, clusters, inv, host.cluster);
            let list = &mut zone.children[p].children[c].children;
            list.push(VerdictLine::new("host", host.id.to_string(), host.name.clone()));
            let x = (p, c, list.len() - 1);
            hosts.insert(h, x);
            x
        }
        for ev in &trace.events {
            match *ev {
                Event::Zone(_, r) => zone.set(&z.name, r, &ctx, None),
                Event::Pod(p, r) => {
                    let i = pod_line(&mut zone, &mut pods, inv, p);
                    zone.children[i].set(&inv.pod(p).name, r, &ctx, None);
                }
                Event::Cluster(cl, r) => {
                    let (p, c) = cluster_line(&mut zone, &mut pods, &mut clusters, inv, cl);
                    zone.children[p].children[c].set(&inv.cluster(cl).name, r, &ctx, None);
                }
                Event::Host(h, r) => {
                    let (p, c, i) = host_line(&mut zone, &mut pods, &mut clusters, &mut hosts, inv, h);
                    let host = inv.host(h);
                    zone.children[p].children[c].children[i].set(&host.name, r, &ctx, Some(&host.tags));
                }
                Event::Pool(cl, h, d, pidx, r) => {
                    let pool = inv.pool(pidx);
                    let parent = match h {
                        Some(h) => {
                            let (p, c, i) = host_line(&mut zone, &mut pods, &mut clusters, &mut hosts, inv, h);
                            &mut zone.children[p].children[c].children[i]
                        }
                        None => {
                            let (p, c) = cluster_line(&mut zone, &mut pods, &mut clusters, inv, cl);
                            &mut zone.children[p].children[c]
                        }
                    };
                    // A pool may be judged several times (once per cluster); keep the latest.
                    let key = (cl, h, d, pidx);
                    let pos = match pools.get(&key).and_then(|v| v.last()) {
                        Some(&pos) if pos < parent.children.len() && parent.children[pos].kind == "pool" => pos,
                        _ => {
                            parent
                                .children
                                .push(VerdictLine::new("pool", pool.id.to_string(), pool.name.clone()));
                            let pos = parent.children.len() - 1;
                            pools.entry(key).or_default().push(pos);
                            pos
                        }
                    };
                    let line = &mut parent.children[pos];
                    line.set(&pool.name, r, &ctx, Some(&pool.tags));
                    line.disk = ctx.disk_labels.get(d).copied();
                }
            }
        }
        if let Some(h) = placed {
            mark_chosen(&mut zone, &inv.host(h).id.to_string(), inv, h);
        }
        Explanation {
            vm: req.vm_name.clone(),
            request: describe(req, c),
            placed: placed.is_some(),
            host: placed.map(|h| inv.host(h).name.clone()),
            hostid: placed.map(|h| inv.host(h).id),
            never_fits: if placed.is_some() { None } else { never_fits(c, req) },
            zone,
        }
    }

    /// CloudStack's message, followed by what was considered.
    pub fn headline(&self) -> String {
        if self.placed {
            format!(
                "Placed VM {} ({}) on host {}",
                self.vm,
                self.request,
                self.host.as_deref().unwrap_or("?")
            )
        } else if let Some(why) = &self.never_fits {
            format!(
                "Unable to find a suitable deployment destination for VM {} ({}) in zone {}: it can never fit any host there, even empty: {why}",
                self.vm, self.request, self.zone.name
            )
        } else {
            format!(
                "Unable to find a suitable deployment destination for VM {} ({}) in zone {}: considered {} pods, {} clusters, {} hosts; none fits",
                self.vm,
                self.request,
                self.zone.name,
                self.zone.count("pod"),
                self.zone.count("cluster"),
                self.zone.count("host"),
            )
        }
    }

    /// Indented text, one line per verdict.
    pub fn to_text(&self) -> String {
        let mut out = self.headline();
        out.push('\n');
        render_line(&self.zone, 0, &mut out);
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("explanations serialize")
    }
}

/// Why no host of the request's zone could hold the VM even if it were empty
/// (checked before any threshold, which would otherwise take the blame).
pub fn never_fits(c: &Cloud, req: &PlacementRequest) -> Option<String> {
    let inv = &c.inv;
    let fp = req.size.footprint();
    let hosts: Vec<HostIdx> = (0..inv.hosts.len())
        .map(|i| HostIdx(i as u32))
        .filter(|h| inv.host(*h).zone == req.zone && !inv.host(*h).is_removed())
        .collect();
    let fits = |h: HostIdx| {
        let host = inv.host(h);
        let book = &c.book.host[h.ix()];
        host.cpu_cores >= req.size.cpu_number
            && host.cpu_mhz_per_core >= req.size.cpu_speed_mhz
            && book.cpu.total >= fp.cpu_mhz
            && book.mem.total >= fp.mem_bytes
    };
    let mut why = Vec::new();
    if hosts.is_empty() {
        why.push("the zone has no hosts".to_string());
    } else if !hosts.iter().any(|h| fits(*h)) {
        let most = |f: &dyn Fn(HostIdx) -> u64| hosts.iter().map(|h| f(*h)).max().unwrap_or(0);
        let cores = most(&|h| u64::from(inv.host(h).cpu_cores));
        if u64::from(req.size.cpu_number) > cores {
            why.push(format!(
                "needs {} vCPUs, but the largest host has {cores} cores",
                req.size.cpu_number
            ));
        }
        let speed = most(&|h| u64::from(inv.host(h).cpu_mhz_per_core));
        if u64::from(req.size.cpu_speed_mhz) > speed {
            why.push(format!(
                "needs {} MHz per vCPU, but the fastest core runs at {speed} MHz",
                req.size.cpu_speed_mhz
            ));
        }
        let mhz = most(&|h| c.book.host[h.ix()].cpu.total);
        if fp.cpu_mhz > mhz {
            why.push(format!(
                "needs {} MHz in all, but the largest host has {mhz} MHz",
                fp.cpu_mhz
            ));
        }
        let mem = most(&|h| c.book.host[h.ix()].mem.total);
        if fp.mem_bytes > mem {
            why.push(format!(
                "needs {} of memory, but the largest host has {}",
                Gib(fp.mem_bytes),
                Gib(mem)
            ));
        }
        if why.is_empty() {
            why.push("no single host has enough cores, core speed, CPU and memory together".to_string());
        }
    }
    for d in &req.new_disks {
        let local = d.storage_type == StorageType::Local;
        let biggest = inv
            .pools
            .iter()
            .filter(|p| p.zone == req.zone && p.is_local() == local)
            .map(|p| p.capacity_bytes)
            .max();
        match biggest {
            None => why.push(format!(
                "its {} needs {} storage and the zone has none",
                d.label,
                if local { "host-local" } else { "shared primary" }
            )),
            Some(b) if b < d.size_bytes => why.push(format!(
                "its {} needs {}, but the largest pool holds {}",
                d.label,
                Gib(d.size_bytes),
                Gib(b)
            )),
            Some(_) => {}
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

fn mark_chosen(zone: &mut VerdictLine, host_id: &str, inv: &Inventory, h: HostIdx) {
    let host = inv.host(h);
    let pod_id = inv.pod(host.pod).id.to_string();
    let cl_id = inv.cluster(host.cluster).id.to_string();
    zone.verdict = Verdict::Chosen;
    for pod in zone.children.iter_mut().filter(|p| p.id == pod_id) {
        pod.verdict = Verdict::Chosen;
        for cl in pod.children.iter_mut().filter(|c| c.id == cl_id) {
            cl.verdict = Verdict::Chosen;
            for line in cl.children.iter_mut() {
                if line.kind == "host" && line.id == host_id {
                    line.verdict = Verdict::Chosen;
                }
            }
        }
    }
}

fn describe(req: &PlacementRequest, c: &Cloud) -> String {
    let mut s = format!(
        "{} vCPU x {} MHz, {}",
        req.size.cpu_number,
        req.size.cpu_speed_mhz,
        Gib(req.size.memory_mb * crate::units::MIB)
    );
    for d in &req.new_disks {
        let _ = write!(
            s,
            "; {} {} {}",
            d.label,
            Gib(d.size_bytes),
            if d.storage_type == StorageType::Local {
                "local"
            } else {
                "shared"
            }
        );
    }
    if !req.host_tags.is_empty() {
        let _ = write!(s, "; host tags {}", c.inv.tags.names_of(&req.host_tags).join(","));
    }
    if req.ha_restart {
        s.push_str("; HA restart");
    }
    s
}

/// Clusters with more hosts than this are summarised per reason in text
/// (JSON always lists every host).
const HOSTS_LISTED: usize = 12;

fn render_line(line: &VerdictLine, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    let disk = line.disk.map(|d| format!(" for {d}")).unwrap_or_default();
    let verdict = match (line.verdict, &line.reason) {
        (_, Some(r)) => format!(": {r}"),
        (Verdict::Chosen, None) => ": chosen".to_string(),
        (_, None) => ": ok".to_string(),
    };
    let _ = writeln!(out, "{indent}{} {}{disk}{verdict}", line.kind, line.name);
    let hosts = line.children.iter().filter(|c| c.kind == "host").count();
    if hosts <= HOSTS_LISTED {
        for c in &line.children {
            render_line(c, depth + 1, out);
        }
        return;
    }
    for c in line
        .children
        .iter()
        .filter(|c| c.kind != "host" || c.verdict == Verdict::Chosen)
    {
        render_line(c, depth + 1, out);
    }
    // Group the rejected hosts by reason code, with the first few as examples.
    let mut groups: Vec<(&str, Vec<&VerdictLine>)> = Vec::new();
    for c in line
        .children
        .iter()
        .filter(|c| c.kind == "host" && c.verdict == Verdict::Rejected)
    {
        let code = c.code.unwrap_or("other");
        match groups.iter_mut().find(|g| g.0 == code) {
            Some(g) => g.1.push(c),
            None => groups.push((code, vec![c])),
        }
    }
    let inner = "  ".repeat(depth + 1);
    for (code, members) in groups {
        let _ = writeln!(out, "{inner}{} hosts rejected ({code}), for example:", members.len());
        for c in members.iter().take(3) {
            render_line(c, depth + 2, out);
        }
    }
}
