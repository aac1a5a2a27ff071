//! Infrastructure: zones, pods, clusters, primary and secondary storage,
//! capacity and hypervisor capabilities (hosts are in `hosts.rs`).

use super::prelude::*;
use std::net::Ipv4Addr;
use stratus_core::capacity::CapacityType;
use stratus_core::cloud::{CapacityScope, PodSpec, PoolScopeSpec, PoolSpec, ZoneSpec};
use stratus_core::controller::admin::AdminChange;
use stratus_core::inventory::*;

pub fn ip(p: &crate::params::Params, name: &str) -> Result<Option<Ipv4Addr>, ApiError> {
    p.opt_str(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| ApiError::param(format!("{name}: '{v}' is not an IPv4 address")))
        })
        .transpose()
}

fn req_ip(p: &crate::params::Params, name: &str) -> Result<Ipv4Addr, ApiError> {
    ip(p, name)?.ok_or_else(|| p.missing(name))
}

fn allocation(p: &crate::params::Params) -> Result<Option<AllocationState>, ApiError> {
    p.opt_str("allocationstate")
        .map(|s| {
            AllocationState::parse(s)
                .ok_or_else(|| ApiError::param(format!("allocationstate: '{s}' is not Enabled or Disabled")))
        })
        .transpose()
}

fn zone_obj(c: &Ctx<'_>, id: Uuid) -> Result<Obj, ApiError> {
    c.api.read(|ctl| {
        let inv = &ctl.cloud().inv;
        let z = inv.find_zone(ZoneId(id)).ok_or_else(|| not_found("zone", id))?;
        Ok(views::zone(ctl, inv.zone(z)))
    })
}

fn create_zone<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let nt = c.p.req_str("networktype")?;
        let network_type = NetworkType::parse(nt)
            .ok_or_else(|| ApiError::param(format!("networktype: '{nt}' is not Basic or Advanced")))?;
        let spec = ZoneSpec {
            name: c.p.req_str("name")?.to_string(),
            network_type,
            dns1: req_ip(c.p, "dns1")?,
            internal_dns1: req_ip(c.p, "internaldns1")?,
            guest_cidr: c.p.opt_str("guestcidraddress").map(str::to_string),
            local_storage_enabled: c.p.opt_bool("localstorageenabled")?.unwrap_or(false),
        };
        let alloc = allocation(c.p)?;
        let created = c.api.admin(Some(c.caller), AdminChange::CreateZone { spec }).await?;
        if let Some(a) = alloc.filter(|a| *a != AllocationState::Enabled) {
            let change = AdminChange::UpdateZone {
                zone: ZoneId(created.id),
                name: None,
                allocation: Some(a),
                dns1: None,
                internal_dns1: None,
            };
            c.api.admin(Some(c.caller), change).await?;
        }
        Ok(Obj::new().obj("zone", zone_obj(c, created.id)?))
    })
}

fn update_zone<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        let change = AdminChange::UpdateZone {
            zone: ZoneId(id),
            name: c.p.opt_str("name").map(str::to_string),
            allocation: allocation(c.p)?,
            dns1: ip(c.p, "dns1")?,
            internal_dns1: ip(c.p, "internaldns1")?,
        };
        c.api.admin(Some(c.caller), change).await?;
        Ok(Obj::new().obj("zone", zone_obj(c, id)?))
    })
}

fn list_zones<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let name = c.p.opt_str("name");
        let nt = c.p.opt_str("networktype");
        let available = c.p.opt_bool("available")?.unwrap_or(false);
        c.api.read(|ctl| {
            let zones: Vec<_> = ctl
                .cloud()
                .inv
                .zones
                .iter()
                .filter(|z| id.is_none_or(|i| z.id.0 == i))
                .filter(|z| name.is_none_or(|n| z.name == n))
                .filter(|z| nt.is_none_or(|n| z.network_type.as_str().eq_ignore_ascii_case(n)))
                // Users see enabled zones only (CloudStack hides disabled ones from them).
                .filter(|z| (c.caller.is_admin() && !available) || z.allocation_state == AllocationState::Enabled)
                .filter(|z| views::keyword_ok(c.p, &z.name))
                .collect();
            let (count, page) = views::page(zones, c.p)?;
            Ok(render::list_body(
                "zone",
                count,
                page.into_iter().map(|z| views::zone(ctl, z)).collect(),
            ))
        })
    })
}

fn create_pod<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let start = req_ip(c.p, "startip")?;
        let spec = PodSpec {
            name: c.p.req_str("name")?.to_string(),
            zone: ZoneId(c.p.req_uuid("zoneid")?),
            gateway: req_ip(c.p, "gateway")?,
            netmask: req_ip(c.p, "netmask")?,
            start_ip: start,
            end_ip: ip(c.p, "endip")?.unwrap_or(start),
        };
        if u32::from(spec.end_ip) < u32::from(spec.start_ip) {
            return Err(ApiError::param("endip is below startip"));
        }
        let created = c.api.admin(Some(c.caller), AdminChange::CreatePod { spec }).await?;
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let p = cloud
                .inv
                .find_pod(PodId(created.id))
                .ok_or_else(|| not_found("pod", created.id))?;
            Ok(Obj::new().obj("pod", views::pod(cloud, cloud.inv.pod(p))))
        })
    })
}

fn list_pods<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let zone = c.p.opt_uuid("zoneid")?;
        let name = c.p.opt_str("name");
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let inv = &cloud.inv;
            let pods: Vec<_> = inv
                .pods
                .iter()
                .filter(|p| id.is_none_or(|i| p.id.0 == i))
                .filter(|p| zone.is_none_or(|z| inv.zone(p.zone).id.0 == z))
                .filter(|p| name.is_none_or(|n| p.name == n))
                .filter(|p| views::keyword_ok(c.p, &p.name))
                .collect();
            let (count, page) = views::page(pods, c.p)?;
            Ok(render::list_body(
                "pod",
                count,
                page.into_iter().map(|p| views::pod(cloud, p)).collect(),
            ))
        })
    })
}

fn add_cluster<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let hv = c.p.req_str("hypervisor")?;
        let hypervisor = Hypervisor::parse(hv)
            .ok_or_else(|| ApiError::param(format!("hypervisor: '{hv}' is not supported (Simulator, KVM)")))?;
        let ct = c.p.req_str("clustertype")?;
        if ClusterType::parse(ct) != Some(ClusterType::CloudManaged) {
            return Err(ApiError::param(format!(
                "clustertype: '{ct}' is not supported (CloudManaged)"
            )));
        }
        let pod = PodId(c.p.req_uuid("podid")?);
        let zone = ZoneId(c.p.req_uuid("zoneid")?);
        c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            match inv.find_pod(pod) {
                Some(p) if inv.zone(inv.pod(p).zone).id == zone => Ok(()),
                Some(_) => Err(ApiError::param("the pod is not in that zone")),
                None => Err(not_found("pod", pod.0)),
            }
        })?;
        let change = AdminChange::AddCluster {
            name: c.p.req_str("clustername")?.to_string(),
            pod,
            hypervisor,
        };
        let created = c.api.admin(Some(c.caller), change).await?;
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let i = cloud
                .inv
                .find_cluster(ClusterId(created.id))
                .ok_or_else(|| not_found("cluster", created.id))?;
            Ok(render::list_body(
                "cluster",
                1,
                vec![views::cluster(cloud, cloud.inv.cluster(i))],
            ))
        })
    })
}

fn list_clusters<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let zone = c.p.opt_uuid("zoneid")?;
        let pod = c.p.opt_uuid("podid")?;
        let name = c.p.opt_str("name");
        let hv = c.p.opt_str("hypervisor");
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let inv = &cloud.inv;
            let list: Vec<_> = inv
                .clusters
                .iter()
                .filter(|x| id.is_none_or(|i| x.id.0 == i))
                .filter(|x| zone.is_none_or(|z| inv.zone(x.zone).id.0 == z))
                .filter(|x| pod.is_none_or(|p| inv.pod(x.pod).id.0 == p))
                .filter(|x| name.is_none_or(|n| x.name == n))
                .filter(|x| hv.is_none_or(|h| x.hypervisor.as_str().eq_ignore_ascii_case(h)))
                .filter(|x| views::keyword_ok(c.p, &x.name))
                .collect();
            let (count, page) = views::page(list, c.p)?;
            Ok(render::list_body(
                "cluster",
                count,
                page.into_iter().map(|x| views::cluster(cloud, x)).collect(),
            ))
        })
    })
}

/// `nfs://server/path`, `gluster://…`, `filesystem://…` → the pool type.
fn pool_type(url: &str) -> Result<PoolType, ApiError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("nfs") => Ok(PoolType::NetworkFilesystem),
        Some("gluster") => Ok(PoolType::Gluster),
        Some("filesystem") | Some("file") => Ok(PoolType::Filesystem),
        _ => Err(ApiError::param(format!(
            "url: '{url}' is not nfs://, gluster:// or filesystem://"
        ))),
    }
}

fn create_storage_pool<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let url = c.p.req_str("url")?;
        let zone = ZoneId(c.p.req_uuid("zoneid")?);
        let scope = match (
            c.p.opt_str("scope").map(str::to_ascii_lowercase).as_deref(),
            c.p.opt_uuid("clusterid")?,
        ) {
            (Some("zone"), _) => PoolScopeSpec::Zone,
            (Some("cluster") | None, Some(cl)) => PoolScopeSpec::Cluster(ClusterId(cl)),
            (None, None) => PoolScopeSpec::Zone,
            (Some("cluster"), None) => return Err(c.p.missing("clusterid")),
            (Some(s), _) => return Err(ApiError::param(format!("scope: '{s}' is not zone or cluster"))),
        };
        let capacity = c.p.opt_i64("capacitybytes")?.unwrap_or(2 << 40);
        if capacity <= 0 {
            return Err(ApiError::param("capacitybytes must be above zero"));
        }
        let spec = PoolSpec {
            name: c.p.req_str("name")?.to_string(),
            zone,
            scope,
            pool_type: pool_type(url)?,
            capacity_bytes: capacity as u64,
            tags: c
                .p
                .opt_list("tags")
                .unwrap_or_default()
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        let created = c.api.admin(Some(c.caller), AdminChange::CreatePool { spec }).await?;
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let i = cloud
                .inv
                .find_pool(PoolId(created.id))
                .ok_or_else(|| not_found("storage pool", created.id))?;
            Ok(Obj::new().obj("storagepool", views::pool(cloud, i.ix())))
        })
    })
}

fn list_storage_pools<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let zone = c.p.opt_uuid("zoneid")?;
        let cluster = c.p.opt_uuid("clusterid")?;
        let name = c.p.opt_str("name");
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let inv = &cloud.inv;
            let list: Vec<usize> = (0..inv.pools.len())
                .filter(|i| {
                    let p = &inv.pools[*i];
                    id.is_none_or(|x| p.id.0 == x)
                        && zone.is_none_or(|z| inv.zone(p.zone).id.0 == z)
                        && name.is_none_or(|n| p.name == n)
                        && cluster
                            .is_none_or(|cl| matches!(p.scope, PoolScope::Cluster(x) if inv.cluster(x).id.0 == cl))
                        && views::keyword_ok(c.p, &p.name)
                })
                .collect();
            let (count, page) = views::page(list, c.p)?;
            Ok(render::list_body(
                "storagepool",
                count,
                page.into_iter().map(|i| views::pool(cloud, i)).collect(),
            ))
        })
    })
}

fn add_image_store<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let provider = c.p.req_str("provider")?;
        if !provider.eq_ignore_ascii_case("NFS") {
            return Err(ApiError::param(format!(
                "provider: '{provider}' is not supported (NFS)"
            )));
        }
        let url = c.p.req_str("url")?.to_string();
        let change = AdminChange::AddImageStore {
            name: c.p.opt_str("name").map_or_else(|| url.clone(), str::to_string),
            zone: c.p.opt_uuid("zoneid")?.map(ZoneId),
            url,
            capacity_bytes: 2 << 40,
        };
        let created = c.api.admin(Some(c.caller), change).await?;
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let s = cloud
                .inv
                .image_stores
                .iter()
                .find(|s| s.id.0 == created.id)
                .ok_or_else(|| not_found("image store", created.id))?;
            Ok(Obj::new().obj("imagestore", views::image_store(cloud, s)))
        })
    })
}

fn list_image_stores<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let zone = c.p.opt_uuid("zoneid")?;
        let name = c.p.opt_str("name");
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let inv = &cloud.inv;
            let list: Vec<_> = inv
                .image_stores
                .iter()
                .filter(|s| id.is_none_or(|x| s.id.0 == x))
                .filter(|s| zone.is_none_or(|z| s.zone.is_some_and(|sz| inv.zone(sz).id.0 == z)))
                .filter(|s| name.is_none_or(|n| s.name == n))
                .filter(|s| views::keyword_ok(c.p, &s.name))
                .collect();
            let (count, page) = views::page(list, c.p)?;
            Ok(render::list_body(
                "imagestore",
                count,
                page.into_iter().map(|s| views::image_store(cloud, s)).collect(),
            ))
        })
    })
}

fn list_capacity<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let zone = c.p.opt_uuid("zoneid")?;
        let pod = c.p.opt_uuid("podid")?;
        let cluster = c.p.opt_uuid("clusterid")?;
        let ty = match c.p.opt_i64("type")? {
            Some(t) => Some(
                CapacityType::from_code(t as u32)
                    .ok_or_else(|| ApiError::param(format!("type: {t} is not a capacity type Stratus tracks")))?,
            ),
            None => None,
        };
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let inv = &cloud.inv;
            let scopes: Vec<CapacityScope> = if let Some(cl) = cluster {
                vec![CapacityScope::Cluster(
                    inv.find_cluster(ClusterId(cl))
                        .ok_or_else(|| not_found("cluster", cl))?,
                )]
            } else if let Some(p) = pod {
                vec![CapacityScope::Pod(
                    inv.find_pod(PodId(p)).ok_or_else(|| not_found("pod", p))?,
                )]
            } else if let Some(z) = zone {
                vec![CapacityScope::Zone(
                    inv.find_zone(ZoneId(z)).ok_or_else(|| not_found("zone", z))?,
                )]
            } else {
                (0..inv.zones.len())
                    .map(|z| CapacityScope::Zone(ZoneIdx(z as u32)))
                    .collect()
            };
            let mut rows: Vec<_> = scopes.into_iter().flat_map(|s| cloud.capacity(s, ty)).collect();
            if c.p.opt_str("sortby").is_some_and(|s| s.eq_ignore_ascii_case("usage")) {
                rows.sort_by(|a, b| {
                    b.percentused
                        .partial_cmp(&a.percentused)
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            }
            let (count, page) = views::page(rows, c.p)?;
            Ok(render::list_body(
                "capacity",
                count,
                page.iter().map(views::capacity).collect(),
            ))
        })
    })
}

fn list_hypervisor_capabilities<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let hv = c.p.opt_str("hypervisor");
        c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            let rows: Vec<Obj> = Hypervisor::ALL
                .iter()
                .filter(|h| hv.is_none_or(|x| h.as_str().eq_ignore_ascii_case(x)))
                .map(|h| {
                    let cap = inv.capability(*h);
                    Obj::new()
                        .s(
                            "id",
                            crate::ostypes::id_of(&format!("hvcap:{}", h.as_str())).to_string(),
                        )
                        .s("hypervisor", h.as_str())
                        .s("hypervisorversion", "default")
                        .i("maxguestslimit", i64::from(cap.max_guests))
                        .i("maxdatavolumeslimit", i64::from(cap.max_data_volumes))
                        .i("maxhostspercluster", i64::from(cap.max_hosts_per_cluster))
                        .b("securitygroupenabled", false)
                        .b("storagemotionenabled", false)
                })
                .collect();
            let (count, page) = views::page(rows, c.p)?;
            Ok(render::list_body("hypervisorCapabilities", count, page))
        })
    })
}

const ZONE: &[&str] = &[
    "id",
    "name",
    "networktype",
    "dns1",
    "internaldns1",
    "guestcidraddress",
    "allocationstate",
    "localstorageenabled",
    "securitygroupsenabled",
];
const POD: &[&str] = &[
    "id",
    "name",
    "zoneid",
    "zonename",
    "gateway",
    "netmask",
    "startip",
    "endip",
    "allocationstate",
];
const CLUSTER: &[&str] = &[
    "id",
    "name",
    "podid",
    "podname",
    "zoneid",
    "zonename",
    "hypervisortype",
    "clustertype",
    "allocationstate",
    "managedstate",
    "cpuovercommitratio",
    "memoryovercommitratio",
];
const POOL: &[&str] = &[
    "id",
    "name",
    "zoneid",
    "zonename",
    "podid",
    "podname",
    "clusterid",
    "clustername",
    "scope",
    "type",
    "state",
    "disksizetotal",
    "disksizeallocated",
    "disksizeused",
    "overprovisionfactor",
    "tags",
    "hypervisor",
];
const STORE: &[&str] = &[
    "id",
    "name",
    "url",
    "protocol",
    "providername",
    "scope",
    "zoneid",
    "zonename",
];
const CAPACITY: &[&str] = &[
    "type",
    "name",
    "zoneid",
    "zonename",
    "podid",
    "podname",
    "clusterid",
    "clustername",
    "capacitytotal",
    "capacityused",
    "capacityallocated",
    "percentused",
];
const HVCAP: &[&str] = &[
    "id",
    "hypervisor",
    "hypervisorversion",
    "maxguestslimit",
    "maxdatavolumeslimit",
    "maxhostspercluster",
    "securitygroupenabled",
    "storagemotionenabled",
];

const fn admin_cmd(
    name: &'static str,
    description: &'static str,
    params: &'static [crate::registry::Param],
    object: &'static str,
    fields: &'static [&'static str],
    handler: crate::registry::Handler,
) -> Command {
    Command {
        name,
        description,
        is_async: false,
        min_role: Role::Admin,
        params,
        object,
        fields,
        handler,
    }
}

pub static COMMANDS: &[Command] = &[
    admin_cmd(
        "createZone",
        "Creates a Zone.",
        &[
            req("name", Ty::Str, "the name of the Zone"),
            req("networktype", Ty::Str, "network type of the zone, Basic or Advanced"),
            req("dns1", Ty::Str, "the first DNS for the Zone"),
            req("internaldns1", Ty::Str, "the first internal DNS for the Zone"),
            p("guestcidraddress", Ty::Str, "the guest CIDR address for the Zone"),
            p(
                "localstorageenabled",
                Ty::Bool,
                "true if local storage offering enabled, false otherwise",
            ),
            p(
                "allocationstate",
                Ty::Str,
                "Allocation state of this Zone for allocation of new resources",
            ),
        ],
        "zone",
        ZONE,
        create_zone,
    ),
    admin_cmd(
        "updateZone",
        "Updates a Zone.",
        &[
            req("id", Ty::Uuid, "the ID of the Zone"),
            p("name", Ty::Str, "the name of the Zone"),
            p(
                "allocationstate",
                Ty::Str,
                "Allocation state of this cluster for allocation of new resources",
            ),
            p("dns1", Ty::Str, "the first DNS for the Zone"),
            p("internaldns1", Ty::Str, "the first internal DNS for the Zone"),
        ],
        "zone",
        ZONE,
        update_zone,
    ),
    Command {
        name: "listZones",
        description: "Lists zones",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "the ID of the zone"),
            p("name", Ty::Str, "the name of the zone"),
            p("available", Ty::Bool, "true: only zones the caller may deploy to"),
            p(
                "networktype",
                Ty::Str,
                "the network type of the zone that the virtual machine belongs to",
            ),
            p("domainid", Ty::Uuid, "the ID of the domain associated with the zone"),
            p("showcapacities", Ty::Bool, "flag to display the capacity of the zones"),
        ],
        object: "zone",
        fields: ZONE,
        handler: list_zones,
    },
    admin_cmd(
        "createPod",
        "Creates a new Pod.",
        &[
            req("name", Ty::Str, "the name of the Pod"),
            req("zoneid", Ty::Uuid, "the Zone ID in which the Pod will be created"),
            req("gateway", Ty::Str, "the gateway for the Pod"),
            req("netmask", Ty::Str, "the netmask for the Pod"),
            req("startip", Ty::Str, "the starting IP address for the Pod"),
            p("endip", Ty::Str, "the ending IP address for the Pod"),
            p(
                "allocationstate",
                Ty::Str,
                "Allocation state of this Pod for allocation of new resources",
            ),
        ],
        "pod",
        POD,
        create_pod,
    ),
    admin_cmd(
        "listPods",
        "Lists all Pods.",
        &[
            p("id", Ty::Uuid, "list Pods by ID"),
            p("name", Ty::Str, "list Pods by name"),
            p("zoneid", Ty::Uuid, "list Pods by Zone ID"),
            p("allocationstate", Ty::Str, "list pods by allocation state"),
        ],
        "pod",
        POD,
        list_pods,
    ),
    admin_cmd(
        "addCluster",
        "Adds a new cluster",
        &[
            req("clustername", Ty::Str, "the cluster name"),
            req(
                "clustertype",
                Ty::Str,
                "type of the cluster: CloudManaged, ExternalManaged",
            ),
            req("hypervisor", Ty::Str, "hypervisor type of the cluster: Simulator, KVM"),
            req("podid", Ty::Uuid, "the Pod ID for the host"),
            req("zoneid", Ty::Uuid, "the Zone ID for the cluster"),
            p(
                "allocationstate",
                Ty::Str,
                "Allocation state of this cluster for allocation of new resources",
            ),
            p("url", Ty::Str, "the URL"),
            p("username", Ty::Str, "the username for the cluster"),
            p("password", Ty::Str, "the password for the host"),
        ],
        "cluster",
        CLUSTER,
        add_cluster,
    ),
    admin_cmd(
        "listClusters",
        "Lists clusters.",
        &[
            p("id", Ty::Uuid, "lists clusters by the cluster ID"),
            p("name", Ty::Str, "lists clusters by the cluster name"),
            p("podid", Ty::Uuid, "lists clusters by Pod ID"),
            p("zoneid", Ty::Uuid, "lists clusters by Zone ID"),
            p("hypervisor", Ty::Str, "lists clusters by hypervisor type"),
            p(
                "showcapacities",
                Ty::Bool,
                "flag to display the capacity of the clusters",
            ),
        ],
        "cluster",
        CLUSTER,
        list_clusters,
    ),
    admin_cmd(
        "createStoragePool",
        "Creates a storage pool.",
        &[
            req("name", Ty::Str, "the name for the storage pool"),
            req("url", Ty::Str, "the URL of the storage pool"),
            req("zoneid", Ty::Uuid, "the Zone ID for the storage pool"),
            p("clusterid", Ty::Uuid, "the cluster ID for the storage pool"),
            p("podid", Ty::Uuid, "the Pod ID for the storage pool"),
            p("scope", Ty::Str, "the scope of the storage: cluster or zone"),
            p(
                "capacitybytes",
                Ty::Long,
                "bytes CloudStack can provision from this storage pool",
            ),
            p("tags", Ty::Str, "the tags for the storage pool"),
            p(
                "hypervisor",
                Ty::Str,
                "hypervisor type of the hosts in zone that will be attached to this storage pool",
            ),
            p("provider", Ty::Str, "the storage provider name"),
        ],
        "storagepool",
        POOL,
        create_storage_pool,
    ),
    admin_cmd(
        "listStoragePools",
        "Lists storage pools.",
        &[
            p("id", Ty::Uuid, "the ID of the storage pool"),
            p("name", Ty::Str, "the name of the storage pool"),
            p("zoneid", Ty::Uuid, "the Zone ID for the storage pool"),
            p(
                "clusterid",
                Ty::Uuid,
                "list storage pools belongig to the specific cluster",
            ),
            p("podid", Ty::Uuid, "the Pod ID for the storage pool"),
            p("scope", Ty::Str, "the scope of the storage pool"),
        ],
        "storagepool",
        POOL,
        list_storage_pools,
    ),
    admin_cmd(
        "addImageStore",
        "Adds backup image store.",
        &[
            req("provider", Ty::Str, "the image store provider name"),
            p("name", Ty::Str, "the name for the image store"),
            p("url", Ty::Str, "the URL for the image store"),
            p("zoneid", Ty::Uuid, "the Zone ID for the image store"),
            p("details", Ty::Map, "the details for the image store"),
        ],
        "imagestore",
        STORE,
        add_image_store,
    ),
    admin_cmd(
        "listImageStores",
        "Lists image stores.",
        &[
            p("id", Ty::Uuid, "the ID of the storage pool"),
            p("name", Ty::Str, "the name of the image store"),
            p("zoneid", Ty::Uuid, "the Zone ID for the image store"),
            p("provider", Ty::Str, "the image store provider"),
            p("protocol", Ty::Str, "the image store protocol"),
        ],
        "imagestore",
        STORE,
        list_image_stores,
    ),
    admin_cmd(
        "listCapacity",
        "Lists all the system wide capacities.",
        &[
            p("zoneid", Ty::Uuid, "lists capacity by the Zone ID"),
            p("podid", Ty::Uuid, "lists capacity by the Pod ID"),
            p("clusterid", Ty::Uuid, "lists capacity by the Cluster ID"),
            p("type", Ty::Int, "lists capacity by type"),
            p("sortby", Ty::Str, "Sort the results. Available values: Usage"),
            p("fetchlatest", Ty::Bool, "recalculate capacities and fetch the latest"),
        ],
        "capacity",
        CAPACITY,
        list_capacity,
    ),
    admin_cmd(
        "listHypervisorCapabilities",
        "Lists all hypervisor capabilities.",
        &[
            p("id", Ty::Uuid, "ID of the hypervisor capability"),
            p("hypervisor", Ty::Str, "the hypervisor for which to restrict the search"),
        ],
        "hypervisorCapabilities",
        HVCAP,
        list_hypervisor_capabilities,
    ),
];
