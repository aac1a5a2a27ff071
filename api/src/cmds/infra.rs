//! Infrastructure: zones, pods, clusters, primary and secondary storage,
//! capacity and hypervisor capabilities (hosts are in `hosts.rs`).

use super::prelude::*;
use std::net::Ipv4Addr;
use stratus_core::cloud::{PodSpec, ZoneSpec};
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
                .filter(|p| !p.removed)
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
                .filter(|x| !x.removed)
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
pub(super) const fn admin_cmd(
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
];
