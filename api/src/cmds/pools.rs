//! Primary and secondary storage, capacity and hypervisor capabilities.

use super::infra::admin_cmd;
use super::prelude::*;
use stratus_core::capacity::CapacityType;
use stratus_core::cloud::{CapacityScope, PoolScopeSpec, PoolSpec};
use stratus_core::controller::admin::AdminChange;
use stratus_core::inventory::*;

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
                    !p.removed
                        && id.is_none_or(|x| p.id.0 == x)
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

pub static COMMANDS: &[Command] = &[
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
