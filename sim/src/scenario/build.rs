//! Building a `stratus_core::Cloud` from a scenario.

use super::locate::FieldPath;
use super::model::*;
use super::validate::{self, SettingEntry};
use super::{HostNamer, Problem, ScenarioError, local_pool_name};
use std::collections::BTreeMap;
use stratus_core::cloud::{
    DiskOfferingSpec, HostSpec, NetworkSpec, PodSpec, PoolScopeSpec, PoolSpec, ServiceOfferingSpec, TemplateSpec,
    ZoneSpec,
};
use stratus_core::ids::{
    AccountId, ClusterId, DiskOfferingId, HostId, ImageStoreId, NetworkId, PodId, PoolId, ServiceOfferingId,
    TemplateId, ZoneId,
};
use stratus_core::inventory::{AccountType, DiskSize, ImageFormat, PoolType, StorageType};
use stratus_core::settings::{Scope, ScopeKind};
use stratus_core::units::GIB;
use stratus_core::{Cloud, CoreError};

/// Scenario names → core IDs. BTreeMaps, so iteration order is deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameMaps {
    pub zones: BTreeMap<String, ZoneId>,
    pub pods: BTreeMap<String, PodId>,
    pub clusters: BTreeMap<String, ClusterId>,
    pub hosts: BTreeMap<String, HostId>,
    /// Shared pools and host-local pools (`<host>-local`).
    pub pools: BTreeMap<String, PoolId>,
    pub image_stores: BTreeMap<String, ImageStoreId>,
    pub offerings: BTreeMap<String, ServiceOfferingId>,
    pub disk_offerings: BTreeMap<String, DiskOfferingId>,
    pub templates: BTreeMap<String, TemplateId>,
    pub accounts: BTreeMap<String, AccountId>,
    pub networks: BTreeMap<String, NetworkId>,
}

/// A scenario's cloud, built and ready to run, with its names.
#[derive(Debug)]
pub struct Built {
    pub cloud: Cloud,
    pub names: NameMaps,
}

/// Builds the cloud of `s` (validating it first). Errors name the field; use
/// [`super::load_and_build`] to have them located in the file as well.
pub fn build(s: &Scenario) -> Result<Built, ScenarioError> {
    build_inner(s).map_err(super::unlocated)
}

fn core(at: &FieldPath) -> impl Fn(CoreError) -> Problem + '_ {
    move |e| Problem::new(at, e.to_string())
}

fn gib(v: u64) -> u64 {
    v.saturating_mul(GIB)
}

pub(crate) fn build_inner(s: &Scenario) -> Result<Built, Problem> {
    validate::validate(s)?;
    let root = FieldPath::root();
    let mut c = Cloud::new(s.scenario.seed);
    let mut names = NameMaps::default();

    // Global settings first: with no hosts yet, each update is cheap, and
    // everything added later resolves its policy with them.
    for SettingEntry { name, raw, path } in validate::settings(&s.settings, &root.key("settings"), ScopeKind::Global)? {
        c.update_setting(&name, Scope::Global, &raw).map_err(core(&path))?;
    }
    for (i, a) in s.accounts.iter().enumerate() {
        let id = c
            .add_account(&a.name, None, AccountType::User)
            .map_err(core(&root.key("accounts").idx(i)))?;
        names.accounts.insert(a.name.clone(), id);
    }
    for (i, o) in s.offerings.iter().enumerate() {
        let at = root.key("offerings").idx(i);
        let mut spec = ServiceOfferingSpec::fixed(&o.name, o.cpu, o.mhz, o.memory_mb);
        spec.offer_ha = o.ha;
        spec.storage_type = validate::storage_type(&o.storage, &at.key("storage"))?;
        spec.host_tags = o.host_tags.clone();
        spec.storage_tags = o.storage_tags.clone();
        spec.planner = o
            .planner
            .as_deref()
            .map(|p| validate::planner(p, &at.key("planner")))
            .transpose()?;
        names
            .offerings
            .insert(o.name.clone(), c.add_service_offering(spec).map_err(core(&at))?);
    }
    for (i, o) in s.disk_offerings.iter().enumerate() {
        let spec = DiskOfferingSpec {
            name: o.name.clone(),
            size: DiskSize::Fixed(gib(o.size_gib)),
            storage_tags: o.tags.clone(),
            storage_type: StorageType::Shared,
        };
        let id = c
            .add_disk_offering(spec)
            .map_err(core(&root.key("disk_offerings").idx(i)))?;
        names.disk_offerings.insert(o.name.clone(), id);
    }

    let mut namer = HostNamer::default();
    for (zi, z) in s.zones.iter().enumerate() {
        let zat = root.key("zones").idx(zi);
        let zone = c
            .add_zone(ZoneSpec {
                name: z.name.clone(),
                network_type: validate::network_type(&z.network_type, &zat.key("network_type"))?,
                dns1: parse_ip(&z.dns1, &zat.key("dns1"))?,
                internal_dns1: parse_ip(&z.internal_dns1, &zat.key("internal_dns1"))?,
                guest_cidr: z.guest_cidr.clone(),
                local_storage_enabled: z.local_storage_enabled,
                guest_vlans: None,
            })
            .map_err(core(&zat))?;
        names.zones.insert(z.name.clone(), zone);
        for (i, st) in z.image_stores.iter().enumerate() {
            let at = zat.key("image_stores").idx(i);
            let id = c
                .add_image_store(&st.name, Some(zone), &st.url, gib(st.capacity_gib))
                .map_err(core(&at))?;
            names.image_stores.insert(st.name.clone(), id);
        }
        for (i, p) in z.pools.iter().enumerate() {
            add_pool(
                &mut c,
                &mut names,
                zone,
                PoolScopeSpec::Zone,
                p,
                &zat.key("pools").idx(i),
            )?;
        }
        for (pi, p) in z.pods.iter().enumerate() {
            let pat = zat.key("pods").idx(pi);
            let pod = c
                .add_pod(PodSpec {
                    name: p.name.clone(),
                    zone,
                    gateway: parse_ip(&p.gateway, &pat.key("gateway"))?,
                    netmask: parse_ip(&p.netmask, &pat.key("netmask"))?,
                    start_ip: parse_ip(&p.start_ip, &pat.key("start_ip"))?,
                    end_ip: parse_ip(&p.end_ip, &pat.key("end_ip"))?,
                })
                .map_err(core(&pat))?;
            names.pods.insert(p.name.clone(), pod);
            for (ci, cl) in p.clusters.iter().enumerate() {
                let cat = pat.key("clusters").idx(ci);
                let hv = validate::hypervisor(&cl.hypervisor, &cat.key("hypervisor"))?;
                let cluster = c.add_cluster(&cl.name, pod, hv).map_err(core(&cat))?;
                names.clusters.insert(cl.name.clone(), cluster);
                // Before the cluster's hosts: each update refreshes every host so far.
                for e in validate::settings(&cl.settings, &cat.key("settings"), ScopeKind::Cluster)? {
                    c.update_setting(&e.name, Scope::Cluster(cluster), &e.raw)
                        .map_err(core(&e.path))?;
                }
                for (i, pl) in cl.pools.iter().enumerate() {
                    let at = cat.key("pools").idx(i);
                    add_pool(&mut c, &mut names, zone, PoolScopeSpec::Cluster(cluster), pl, &at)?;
                }
                for (gi, g) in cl.hosts.iter().enumerate() {
                    let gat = cat.key("hosts").idx(gi);
                    for name in namer.names(g) {
                        let spec = HostSpec {
                            name: name.clone(),
                            cluster,
                            cpu_cores: g.sockets.saturating_mul(g.cores),
                            cpu_mhz: g.mhz,
                            memory_bytes: gib(g.memory_gib),
                            tags: g.tags.clone(),
                        };
                        let host = c.add_host(spec).map_err(core(&gat))?;
                        names.hosts.insert(name.clone(), host);
                        if g.local_storage_gib > 0 {
                            let local = PoolSpec {
                                name: local_pool_name(&name),
                                zone,
                                scope: PoolScopeSpec::Host(host),
                                pool_type: PoolType::Filesystem,
                                capacity_bytes: gib(g.local_storage_gib),
                                tags: Vec::new(),
                            };
                            let id = c.add_pool(local).map_err(core(&gat.key("local_storage_gib")))?;
                            names.pools.insert(local_pool_name(&name), id);
                        }
                    }
                }
            }
        }
        for (i, n) in z.networks.iter().enumerate() {
            let at = zat.key("networks").idx(i);
            let spec = NetworkSpec {
                name: n.name.clone(),
                zone,
                cidr: n.cidr.clone(),
                account: n.account.as_ref().and_then(|a| names.accounts.get(a).copied()),
                vlan: None,
            };
            names
                .networks
                .insert(n.name.clone(), c.add_network(spec).map_err(core(&at))?);
        }
    }

    let zones: Vec<ZoneId> = s.zones.iter().map(|z| names.zones[&z.name]).collect();
    for (i, t) in s.templates.iter().enumerate() {
        let at = root.key("templates").idx(i);
        let format = validate::image_format(&t.format, &at.key("format"))?;
        let spec = TemplateSpec {
            name: t.name.clone(),
            format,
            size_bytes: gib(t.size_gib),
            os_type: t.os_type.clone(),
            hypervisor: validate::hypervisor(&t.hypervisor, &at.key("hypervisor"))?,
            is_iso: format == ImageFormat::Iso,
            ready_in: zones.clone(),
        };
        names
            .templates
            .insert(t.name.clone(), c.add_template(spec).map_err(core(&at))?);
    }
    Ok(Built { cloud: c, names })
}

fn add_pool(
    c: &mut Cloud,
    names: &mut NameMaps,
    zone: ZoneId,
    scope: PoolScopeSpec,
    p: &PoolDef,
    at: &FieldPath,
) -> Result<(), Problem> {
    let spec = PoolSpec {
        name: p.name.clone(),
        zone,
        scope,
        pool_type: validate::pool_type(&p.r#type, &at.key("type"))?,
        capacity_bytes: gib(p.capacity_gib),
        tags: p.tags.clone(),
    };
    names.pools.insert(p.name.clone(), c.add_pool(spec).map_err(core(at))?);
    Ok(())
}

fn parse_ip(text: &str, at: &FieldPath) -> Result<std::net::Ipv4Addr, Problem> {
    text.trim()
        .parse()
        .map_err(|_| Problem::new(at, format!("'{text}' is not an IPv4 address")))
}
