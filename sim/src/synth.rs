//! Deterministic synthetic datacenters for benchmarks and load tests.
//!
//! [`build`] lays out one KVM zone (pods, clusters, hosts, one NFS pool per
//! cluster, offerings, a template and accounts) from a [`SynthConfig`];
//! [`workload`] draws a mixed stream of deploy requests for it. Both are pure
//! functions of their inputs: every random choice comes from a
//! [`DetRng`] seeded by the config, never from the OS.
//!
//! Deploy requests leave `name` empty so the core generates `i-<account>-<n>-VM`
//! names; a named deploy scans every VM of the cloud for duplicates (see the
//! benchmark notes in `BENCHMARKS.md`).

use stratus_core::Cloud;
use stratus_core::cloud::{
    DeploySpec, HostSpec, PodSpec, PoolScopeSpec, PoolSpec, ServiceOfferingSpec, TemplateSpec, ZoneSpec,
};
use stratus_core::error::{CoreError, CoreResult};
use stratus_core::ids::{AccountId, ClusterId, HostId, PodId, PoolId, ServiceOfferingId, TemplateId, ZoneId};
use stratus_core::inventory::{AccountType, Hypervisor, ImageFormat, PoolType};
use stratus_core::rng::DetRng;
use stratus_core::settings::Scope;
use stratus_core::units::GIB;

/// 1 TiB.
pub const TIB: u64 = 1024 * GIB;

/// One compute offering of the synthetic mix and its share of the workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OfferingDef {
    pub name: &'static str,
    pub cpu_number: u32,
    pub cpu_speed_mhz: u32,
    pub memory_mb: u64,
    /// Host tag the offering requires, if any.
    pub host_tag: Option<&'static str>,
    /// Relative weight in [`workload`] draws.
    pub weight: u32,
}

const fn offering(
    name: &'static str,
    cpu_number: u32,
    cpu_speed_mhz: u32,
    memory_gib: u64,
    host_tag: Option<&'static str>,
    weight: u32,
) -> OfferingDef {
    OfferingDef {
        name,
        cpu_number,
        cpu_speed_mhz,
        memory_mb: memory_gib * 1024,
        host_tag,
        weight,
    }
}

/// The default offering mix (weights 40/30/15/10/5).
pub const OFFERING_MIX: [OfferingDef; 5] = [
    offering("small", 1, 1000, 1, None, 40),
    offering("medium", 2, 2000, 4, None, 30),
    offering("large", 4, 2000, 8, None, 15),
    offering("xlarge", 8, 2400, 32, None, 10),
    offering("gpu", 4, 2000, 16, Some("gpu"), 5),
];

/// Shape of the synthetic datacenter. `Default` is the placement benchmark's
/// datacenter: 10,000 hosts in 100 clusters over 10 pods, 50 accounts.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub hosts: usize,
    pub clusters: usize,
    pub pods: usize,
    pub accounts: usize,
    pub seed: u64,
    pub sockets: u32,
    pub cores_per_socket: u32,
    pub cpu_mhz: u32,
    pub memory_bytes: u64,
    /// Fraction of hosts tagged `gpu` (drawn per host).
    pub gpu_fraction: f64,
    /// Fraction of hosts tagged `ssd` (drawn per host).
    pub ssd_fraction: f64,
    /// Every `ssd_pool_every`-th cluster's pool carries storage tag `ssd` (0: none).
    pub ssd_pool_every: usize,
    /// Capacity of each cluster's NFS pool.
    pub pool_bytes: u64,
    /// Global `cpu.overprovisioning.factor`.
    pub cpu_overprovisioning: f64,
    /// `mem.overprovisioning.factor` set on every `mem_overprovisioning_every`-th
    /// cluster (0: none).
    pub mem_overprovisioning: f64,
    pub mem_overprovisioning_every: usize,
    /// Extra global settings (name, value), applied before any host is added.
    pub settings: Vec<(String, String)>,
    pub offerings: Vec<OfferingDef>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            hosts: 10_000,
            clusters: 100,
            pods: 10,
            accounts: 50,
            seed: 1,
            sockets: 2,
            cores_per_socket: 10,
            cpu_mhz: 2400,
            memory_bytes: 256 * GIB,
            gpu_fraction: 0.10,
            ssd_fraction: 0.20,
            ssd_pool_every: 5,
            pool_bytes: 200 * TIB,
            cpu_overprovisioning: 2.0,
            mem_overprovisioning: 1.5,
            mem_overprovisioning_every: 4,
            settings: Vec::new(),
            offerings: OFFERING_MIX.to_vec(),
        }
    }
}

impl SynthConfig {
    /// The default datacenter scaled to `hosts`: 100 hosts per cluster (the
    /// last one may hold fewer) and up to 10 pods.
    pub fn with_hosts(hosts: usize) -> Self {
        let clusters = hosts.div_ceil(100).max(1);
        SynthConfig {
            hosts,
            clusters,
            pods: clusters.min(10),
            ..SynthConfig::default()
        }
    }

    /// Adds a global setting applied before hosts are added (cheap: the core
    /// refreshes totals of the hosts present, none yet).
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_string(), value.to_string()));
        self
    }
}

/// An offering of the built datacenter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SynthOffering {
    pub def: OfferingDef,
    pub id: ServiceOfferingId,
}

/// A built synthetic datacenter and the IDs a workload needs.
#[derive(Debug)]
pub struct Synth {
    pub cloud: Cloud,
    pub zone: ZoneId,
    pub pods: Vec<PodId>,
    pub clusters: Vec<ClusterId>,
    pub hosts: Vec<HostId>,
    pub pools: Vec<PoolId>,
    pub offerings: Vec<SynthOffering>,
    pub template: TemplateId,
    pub accounts: Vec<AccountId>,
}

impl Synth {
    /// The offering named `name` (e.g. `"medium"`).
    pub fn offering(&self, name: &str) -> Option<ServiceOfferingId> {
        self.offerings.iter().find(|o| o.def.name == name).map(|o| o.id)
    }

    /// A started deploy of offering `offering` for account number `account`.
    pub fn deploy_spec(&self, offering: ServiceOfferingId, account: usize) -> DeploySpec {
        DeploySpec {
            account: Some(self.accounts[account % self.accounts.len()]),
            zone: Some(self.zone),
            offering: Some(offering),
            template: Some(self.template),
            start: true,
            ..Default::default()
        }
    }
}

fn invalid(message: String) -> CoreError {
    CoreError::invalid("synth", message)
}

/// Builds the datacenter described by `cfg`. Settings are applied while the
/// zone has no hosts yet, so each `update_setting` call stays cheap.
pub fn build(cfg: &SynthConfig) -> CoreResult<Synth> {
    if cfg.hosts == 0 || cfg.clusters == 0 || cfg.pods == 0 || cfg.accounts == 0 {
        return Err(invalid(
            "hosts, clusters, pods and accounts must all be positive".into(),
        ));
    }
    if cfg.clusters < cfg.pods || cfg.hosts < cfg.clusters {
        return Err(invalid(format!(
            "need pods <= clusters <= hosts, got {} pods, {} clusters, {} hosts",
            cfg.pods, cfg.clusters, cfg.hosts
        )));
    }
    if cfg.pods > 250 {
        return Err(invalid(format!("at most 250 pods (one /24 each), got {}", cfg.pods)));
    }
    let mut c = Cloud::new(cfg.seed);
    let zone = c.add_zone(ZoneSpec::advanced("synth-z1"))?;
    let mut pods = Vec::with_capacity(cfg.pods);
    for p in 0..cfg.pods {
        pods.push(c.add_pod(PodSpec::numbered(&format!("rack{:03}", p + 1), zone, (p + 1) as u8))?);
    }
    // Clusters spread round-robin over the pods' ranges: cluster i goes to pod
    // i * pods / clusters, so each pod holds a contiguous, even share.
    let mut clusters = Vec::with_capacity(cfg.clusters);
    for ci in 0..cfg.clusters {
        let pod = pods[ci * cfg.pods / cfg.clusters];
        clusters.push(c.add_cluster(&format!("kvm{:04}", ci + 1), pod, Hypervisor::Kvm)?);
    }

    c.update_setting(
        "cpu.overprovisioning.factor",
        Scope::Global,
        &cfg.cpu_overprovisioning.to_string(),
    )?;
    if cfg.mem_overprovisioning_every > 0 {
        let value = cfg.mem_overprovisioning.to_string();
        for cl in clusters.iter().step_by(cfg.mem_overprovisioning_every) {
            c.update_setting("mem.overprovisioning.factor", Scope::Cluster(*cl), &value)?;
        }
    }
    for (name, value) in &cfg.settings {
        c.update_setting(name, Scope::Global, value)?;
    }

    let mut pools = Vec::with_capacity(cfg.clusters);
    for (ci, cl) in clusters.iter().enumerate() {
        let ssd = cfg.ssd_pool_every > 0 && ci % cfg.ssd_pool_every == 0;
        pools.push(c.add_pool(PoolSpec {
            name: format!("nfs{:04}", ci + 1),
            zone,
            scope: PoolScopeSpec::Cluster(*cl),
            pool_type: PoolType::NetworkFilesystem,
            capacity_bytes: cfg.pool_bytes,
            tags: if ssd { vec!["ssd".to_string()] } else { Vec::new() },
        })?);
    }

    // Hosts spread evenly: cluster ci gets hosts [ci*H/C, (ci+1)*H/C).
    let mut tag_rng = DetRng::child(cfg.seed, "synth-host-tags");
    let mut hosts = Vec::with_capacity(cfg.hosts);
    for (ci, cl) in clusters.iter().enumerate() {
        let (from, to) = (ci * cfg.hosts / cfg.clusters, (ci + 1) * cfg.hosts / cfg.clusters);
        for h in from..to {
            let mut tags = Vec::new();
            if tag_rng.unit() < cfg.gpu_fraction {
                tags.push("gpu".to_string());
            }
            if tag_rng.unit() < cfg.ssd_fraction {
                tags.push("ssd".to_string());
            }
            hosts.push(c.add_host(HostSpec {
                name: format!("host{:06}", h + 1),
                cluster: *cl,
                cpu_cores: cfg.sockets * cfg.cores_per_socket,
                cpu_mhz: cfg.cpu_mhz,
                memory_bytes: cfg.memory_bytes,
                tags,
            })?);
        }
    }

    let mut offerings = Vec::with_capacity(cfg.offerings.len());
    for def in &cfg.offerings {
        let mut spec = ServiceOfferingSpec::fixed(def.name, def.cpu_number, def.cpu_speed_mhz, def.memory_mb);
        spec.host_tags = def.host_tag.map(|t| vec![t.to_string()]).unwrap_or_default();
        offerings.push(SynthOffering {
            def: *def,
            id: c.add_service_offering(spec)?,
        });
    }
    let template = c.add_template(TemplateSpec {
        name: "synth-linux".into(),
        format: ImageFormat::Qcow2,
        size_bytes: 2 * GIB,
        os_type: "Other Linux (64-bit)".into(),
        hypervisor: Hypervisor::Kvm,
        is_iso: false,
        ready_in: vec![zone],
    })?;
    let mut accounts = Vec::with_capacity(cfg.accounts);
    for a in 0..cfg.accounts {
        accounts.push(c.add_account(&format!("tenant{:03}", a + 1), None, AccountType::User)?);
    }
    Ok(Synth {
        cloud: c,
        zone,
        pods,
        clusters,
        hosts,
        pools,
        offerings,
        template,
        accounts,
    })
}

/// A deterministic stream of started deploys: offering drawn by weight,
/// account uniformly. Owns copies of the IDs, so the cloud can be mutated
/// while iterating.
#[derive(Clone, Debug)]
pub struct Workload {
    rng: DetRng,
    remaining: usize,
    zone: ZoneId,
    template: TemplateId,
    /// (cumulative weight, offering)
    offerings: Vec<(u32, ServiceOfferingId)>,
    accounts: Vec<AccountId>,
}

/// `n_vms` deploy requests for `synth`, a pure function of the datacenter's
/// IDs and `seed`.
pub fn workload(synth: &Synth, n_vms: usize, seed: u64) -> Workload {
    let mut total = 0;
    let offerings = synth
        .offerings
        .iter()
        .filter(|o| o.def.weight > 0)
        .map(|o| {
            total += o.def.weight;
            (total, o.id)
        })
        .collect();
    Workload {
        rng: DetRng::child(seed, "synth-workload"),
        remaining: n_vms,
        zone: synth.zone,
        template: synth.template,
        offerings,
        accounts: synth.accounts.clone(),
    }
}

impl Iterator for Workload {
    type Item = DeploySpec;

    fn next(&mut self) -> Option<DeploySpec> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let total = self.offerings.last().map_or(0, |o| o.0);
        let pick = self.rng.below(total.max(1) as usize) as u32;
        let offering = self.offerings.iter().find(|o| pick < o.0).map(|o| o.1);
        let account = self.accounts[self.rng.below(self.accounts.len())];
        Some(DeploySpec {
            account: Some(account),
            zone: Some(self.zone),
            offering,
            template: Some(self.template),
            start: true,
            ..Default::default()
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Workload {}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthConfig {
        SynthConfig {
            hosts: 40,
            clusters: 4,
            pods: 2,
            accounts: 5,
            ..SynthConfig::default()
        }
    }

    #[test]
    fn builds_the_requested_shape() {
        let s = build(&small()).unwrap();
        let inv = &s.cloud.inv;
        assert_eq!(
            (inv.pods.len(), inv.clusters.len(), inv.hosts.len(), inv.pools.len()),
            (2, 4, 40, 4)
        );
        assert!(inv.clusters.iter().all(|c| c.hosts.len() == 10));
        assert_eq!(s.accounts.len(), 5);
        // cpu x2 everywhere, memory x1.5 on clusters 0 and (every 4th).
        let h0 = &s.cloud.book.host[inv.clusters[0].hosts[0].ix()];
        let h1 = &s.cloud.book.host[inv.clusters[1].hosts[0].ix()];
        assert_eq!(h0.cpu.total, 2 * 20 * 2400);
        assert_eq!(h0.mem.total, 384 * GIB);
        assert_eq!(h1.mem.total, 256 * GIB);
        assert!(s.offering("gpu").is_some());
    }

    #[test]
    fn same_seed_same_datacenter_and_workload() {
        let a = build(&small()).unwrap();
        let b = build(&small()).unwrap();
        assert_eq!(a.hosts, b.hosts);
        let tags = |s: &Synth| s.cloud.inv.hosts.iter().map(|h| h.tags.clone()).collect::<Vec<_>>();
        assert_eq!(tags(&a), tags(&b));
        let wa: Vec<_> = workload(&a, 50, 9).map(|d| (d.offering, d.account)).collect();
        let wb: Vec<_> = workload(&b, 50, 9).map(|d| (d.offering, d.account)).collect();
        assert_eq!(wa, wb);
        let wc: Vec<_> = workload(&a, 50, 10).map(|d| (d.offering, d.account)).collect();
        assert_ne!(wa, wc);
    }

    #[test]
    fn workload_deploys() {
        let mut s = build(&small()).unwrap();
        let w = workload(&s, 100, 3);
        assert_eq!(w.len(), 100);
        for spec in w {
            s.cloud.deploy_vm(spec).unwrap();
        }
        assert_eq!(s.cloud.vm_count(), 100);
    }

    #[test]
    fn bad_settings_are_refused_with_the_setting_message() {
        let e = build(&small().setting("vm.allocation.algorithm", "best")).unwrap_err();
        assert!(e.to_string().contains("vm.allocation.algorithm"), "{e}");
    }

    #[test]
    fn with_hosts_keeps_clusters_within_kvm_limit() {
        let cfg = SynthConfig::with_hosts(1_000);
        assert_eq!((cfg.clusters, cfg.pods), (10, 10));
        assert_eq!(SynthConfig::with_hosts(10_000).clusters, 100);
    }
}
