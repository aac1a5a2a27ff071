//! Service (compute) and disk offerings: create, list, update, delete.
//! Offerings are public (no domain restriction) and user-facing only
//! (`issystem=false`). Deleting one hides it and refuses new work with it;
//! VMs and volumes that use it keep it.

use super::prelude::*;
use crate::registry::Param;
use stratus_core::cloud::{DiskOfferingSpec, ServiceOfferingSpec};
use stratus_core::controller::admin::AdminChange;
use stratus_core::inventory::{CustomLimits, DiskOffering, DiskSize, PlannerKind, ServiceOffering, StorageType};

/// Limits of a customized offering when none are given (CloudStack leaves
/// these open; the core wants bounds).
const CUSTOM_CPU: (u32, u32) = (1, 128);
const CUSTOM_MEMORY_MB: (u64, u64) = (32, 1 << 21);
/// `custom.diskoffering.size.min` / `.max` defaults, GiB.
const CUSTOM_DISK_GIB: (u64, u64) = (1, 1024);

fn invalid(text: impl Into<String>) -> ApiError {
    ApiError::invalid_parameter_value(text)
}

fn storage_type(c: &Ctx<'_>) -> Result<StorageType, ApiError> {
    match c.p.opt_str("storagetype").filter(|s| !s.is_empty()) {
        None => Ok(StorageType::Shared),
        Some(s) => {
            StorageType::parse(s).ok_or_else(|| invalid(format!("Invalid storage type {s}; expected shared or local")))
        }
    }
}

fn tags(c: &Ctx<'_>, name: &str) -> Vec<String> {
    c.p.opt_list(name)
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn positive(c: &Ctx<'_>, name: &str) -> Result<Option<u64>, ApiError> {
    match c.p.opt_i64(name)? {
        Some(v) if v <= 0 => Err(invalid(format!("{name} must be positive, not {v}"))),
        Some(v) if v > i64::from(u32::MAX) => Err(invalid(format!("{name} is too large: {v}"))),
        v => Ok(v.map(|v| v as u64)),
    }
}

fn display_text(c: &Ctx<'_>, name: &str) -> String {
    // Optional since CloudStack 4.19: the name stands in.
    match c.p.opt_str("displaytext") {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => name.to_string(),
    }
}

/// Offerings are public: a domain restriction cannot be honoured, so it is refused.
fn no_domain(c: &Ctx<'_>) -> Result<(), ApiError> {
    if c.p.opt_str("domainid").is_some_and(|d| !d.is_empty()) {
        return Err(invalid(
            "Domain-specific offerings are not supported; offerings are public",
        ));
    }
    Ok(())
}

fn live_service(ctl: &Controller, id: Uuid) -> Result<&ServiceOffering, ApiError> {
    let inv = &ctl.cloud().inv;
    inv.find_service_offering(ServiceOfferingId(id))
        .filter(|_| !ctl.directory().is_removed(id))
        .map(|i| inv.service_offering(i))
        .ok_or_else(|| not_found("service offering", id))
}

fn live_disk(ctl: &Controller, id: Uuid) -> Result<&DiskOffering, ApiError> {
    let inv = &ctl.cloud().inv;
    inv.find_disk_offering(DiskOfferingId(id))
        .filter(|_| !ctl.directory().is_removed(id))
        .map(|i| inv.disk_offering(i))
        .ok_or_else(|| not_found("disk offering", id))
}

fn service_spec(c: &Ctx<'_>) -> Result<ServiceOfferingSpec, ApiError> {
    if c.p.opt_bool("issystem")? == Some(true) {
        return Err(invalid("System service offerings are not supported"));
    }
    no_domain(c)?;
    let name = c.p.req_str("name")?.to_string();
    let cpu = positive(c, "cpunumber")?;
    let speed = positive(c, "cpuspeed")?;
    let memory = positive(c, "memory")?;
    let bounds = ["mincpunumber", "maxcpunumber", "minmemory", "maxmemory"]
        .iter()
        .map(|n| positive(c, n))
        .collect::<Result<Vec<_>, _>>()?;
    // CloudStack: customized when asked, when limits are given, or when no size is.
    let custom = c.p.opt_bool("customized")?.unwrap_or(false)
        || bounds.iter().any(Option::is_some)
        || (cpu.is_none() && memory.is_none());
    let limits = custom.then(|| CustomLimits {
        min_cpu: bounds[0].map_or(CUSTOM_CPU.0, |v| v as u32),
        max_cpu: bounds[1].map_or(CUSTOM_CPU.1, |v| v as u32),
        min_memory_mb: bounds[2].unwrap_or(CUSTOM_MEMORY_MB.0),
        max_memory_mb: bounds[3].unwrap_or(CUSTOM_MEMORY_MB.1),
    });
    if !custom && (cpu.is_none() || speed.is_none() || memory.is_none()) {
        return Err(invalid(
            "cpunumber, cpuspeed and memory are required for a service offering that is not customized",
        ));
    }
    let planner = match c.p.opt_str("deploymentplanner").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(PlannerKind::parse(s).ok_or_else(|| {
            invalid(format!(
                "Invalid deploymentplanner {s}; expected FirstFitPlanner, UserDispersingPlanner or UserConcentratedPodPlanner"
            ))
        })?),
    };
    Ok(ServiceOfferingSpec {
        name,
        cpu_number: cpu.unwrap_or(0) as u32,
        cpu_speed_mhz: speed.unwrap_or(0) as u32,
        memory_mb: memory.unwrap_or(0),
        offer_ha: c.p.opt_bool("offerha")?.unwrap_or(false),
        storage_type: storage_type(c)?,
        host_tags: tags(c, "hosttags"),
        storage_tags: tags(c, "tags"),
        custom: limits,
        planner,
    })
}

fn create_service<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        // limitcpuuse is accepted and not enforced (no CPU caps on simulated hosts).
        let spec = service_spec(c)?;
        let display_text = display_text(c, &spec.name);
        let change = AdminChange::CreateServiceOffering { spec, display_text };
        let made = c.api.admin(Some(c.caller), change).await?;
        c.api.read(|ctl| {
            let o = live_service(ctl, made.id)?;
            Ok(Obj::new().obj("serviceoffering", views::service_offering(ctl, o)))
        })
    })
}

fn list_service<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        // No system offerings are listed: system VMs are not modelled.
        let system = c.p.opt_bool("issystem")?.unwrap_or(false);
        c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            check_domain(c, ctl)?;
            let id = c.p.opt_uuid("id")?;
            let name = c.p.opt_str("name").filter(|n| !n.is_empty());
            // Offerings a VM can change to: not its own, same storage type.
            let vm = match c.p.opt_uuid("virtualmachineid")? {
                None => None,
                Some(v) => {
                    let vm = ctl
                        .cloud()
                        .vm(VmId(v))
                        .filter(|x| c.caller.owns(inv, inv.account(x.account).id))
                        .ok_or_else(|| not_found("virtual machine", v))?;
                    Some((vm.offering, vm.storage_type))
                }
            };
            let items: Vec<&ServiceOffering> = inv
                .service_offerings
                .iter()
                .enumerate()
                .filter(|_| !system)
                .filter(|(_, o)| !ctl.directory().is_removed(o.id.0))
                .filter(|(_, o)| id.is_none_or(|i| o.id.0 == i))
                .filter(|(_, o)| name.is_none_or(|n| o.name == n))
                .filter(|(_, o)| keyword_ok(c, ctl, o.id.0, &o.name))
                .filter(|(i, o)| vm.is_none_or(|(cur, st)| cur.ix() != *i && o.storage_type == st))
                .map(|(_, o)| o)
                .collect();
            let (count, page) = views::page(items, c.p)?;
            let rows = page.into_iter().map(|o| views::service_offering(ctl, o)).collect();
            Ok(render::list_body("serviceoffering", count, rows))
        })
    })
}

/// `keyword` matches the name or the display text.
fn keyword_ok(c: &Ctx<'_>, ctl: &Controller, id: Uuid, name: &str) -> bool {
    views::keyword_ok(c.p, name)
        || ctl
            .directory()
            .display_text
            .get(&id)
            .is_some_and(|t| views::keyword_ok(c.p, t))
}

/// `domainid` on a list: must exist and be visible; offerings are public, so
/// it narrows nothing.
fn check_domain(c: &Ctx<'_>, ctl: &Controller) -> Result<(), ApiError> {
    if let Some(d) = c.p.opt_uuid("domainid")? {
        let inv = &ctl.cloud().inv;
        inv.find_domain(DomainId(d))
            .filter(|di| c.caller.sees_domain(&inv.domain(*di).path))
            .ok_or_else(|| not_found("domain", d))?;
    }
    Ok(())
}

/// updateXOffering: name and display text.
async fn update_offering(c: &Ctx<'_>, id: Uuid) -> Result<(), ApiError> {
    let name = c.p.opt_str("name").filter(|n| !n.is_empty()).map(String::from);
    let display_text = c.p.opt_str("displaytext").filter(|n| !n.is_empty()).map(String::from);
    if name.is_some() || display_text.is_some() {
        let change = AdminChange::UpdateOffering { id, name, display_text };
        c.api.admin(Some(c.caller), change).await?;
    }
    Ok(())
}

fn update_service<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        c.api.read(|ctl| live_service(ctl, id).map(|_| ()))?;
        update_offering(c, id).await?;
        c.api.read(|ctl| {
            let o = live_service(ctl, id)?;
            Ok(Obj::new().obj("serviceoffering", views::service_offering(ctl, o)))
        })
    })
}

fn delete_service<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        c.api.read(|ctl| live_service(ctl, id).map(|_| ()))?;
        c.api.admin(Some(c.caller), AdminChange::DeleteOffering { id }).await?;
        Ok(render::success_body(true, None))
    })
}

fn disk_spec(c: &Ctx<'_>) -> Result<DiskOfferingSpec, ApiError> {
    no_domain(c)?;
    let name = c.p.req_str("name")?.to_string();
    let custom = c.p.opt_bool("customized")?.unwrap_or(false);
    let size = match (custom, positive(c, "disksize")?) {
        (true, None) => DiskSize::Custom {
            min_bytes: CUSTOM_DISK_GIB.0 << 30,
            max_bytes: CUSTOM_DISK_GIB.1 << 30,
        },
        (true, Some(_)) => return Err(invalid("disksize cannot be given for a customized disk offering")),
        (false, Some(g)) => DiskSize::Fixed(g << 30),
        (false, None) => {
            return Err(invalid(
                "disksize is required for a disk offering that is not customized",
            ));
        }
    };
    Ok(DiskOfferingSpec {
        name,
        size,
        storage_tags: tags(c, "tags"),
        storage_type: storage_type(c)?,
    })
}

fn create_disk<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let spec = disk_spec(c)?;
        let display_text = display_text(c, &spec.name);
        let change = AdminChange::CreateDiskOffering { spec, display_text };
        let made = c.api.admin(Some(c.caller), change).await?;
        c.api.read(|ctl| {
            let o = live_disk(ctl, made.id)?;
            Ok(Obj::new().obj("diskoffering", views::disk_offering(ctl, o)))
        })
    })
}

fn list_disk<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        c.api.read(|ctl| {
            check_domain(c, ctl)?;
            let id = c.p.opt_uuid("id")?;
            let name = c.p.opt_str("name").filter(|n| !n.is_empty());
            let items: Vec<&DiskOffering> = ctl
                .cloud()
                .inv
                .disk_offerings
                .iter()
                .filter(|o| !ctl.directory().is_removed(o.id.0))
                .filter(|o| id.is_none_or(|i| o.id.0 == i))
                .filter(|o| name.is_none_or(|n| o.name == n))
                .filter(|o| keyword_ok(c, ctl, o.id.0, &o.name))
                .collect();
            let (count, page) = views::page(items, c.p)?;
            let rows = page.into_iter().map(|o| views::disk_offering(ctl, o)).collect();
            Ok(render::list_body("diskoffering", count, rows))
        })
    })
}

fn update_disk<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        c.api.read(|ctl| live_disk(ctl, id).map(|_| ()))?;
        update_offering(c, id).await?;
        c.api.read(|ctl| {
            let o = live_disk(ctl, id)?;
            Ok(Obj::new().obj("diskoffering", views::disk_offering(ctl, o)))
        })
    })
}

fn delete_disk<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        c.api.read(|ctl| live_disk(ctl, id).map(|_| ()))?;
        c.api.admin(Some(c.caller), AdminChange::DeleteOffering { id }).await?;
        Ok(render::success_body(true, None))
    })
}

const SERVICE_FIELDS: &[&str] = &[
    "id",
    "name",
    "displaytext",
    "cpunumber",
    "cpuspeed",
    "memory",
    "storagetype",
    "offerha",
    "limitcpuuse",
    "isvolatile",
    "issystem",
    "defaultuse",
    "iscustomized",
    "provisioningtype",
    "hosttags",
    "tags",
    "deploymentplanner",
    "created",
];

const DISK_FIELDS: &[&str] = &[
    "id",
    "name",
    "displaytext",
    "disksize",
    "iscustomized",
    "storagetype",
    "provisioningtype",
    "displayoffering",
    "tags",
    "created",
];

const OFFERING_ID: Param = req("id", Ty::Uuid, "the ID of the offering");
const NAME: Param = p("name", Ty::Str, "the name of the offering");
const DISPLAY_TEXT: Param = p("displaytext", Ty::Str, "the display text of the offering");
const DOMAIN: Param = p("domainid", Ty::Uuid, "the ID of the domain (offerings are public)");

pub static COMMANDS: &[Command] = &[
    Command {
        name: "createServiceOffering",
        description: "Creates a service offering.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            req("name", Ty::Str, "the name of the service offering"),
            p(
                "displaytext",
                Ty::Str,
                "the display text of the service offering (default: the name)",
            ),
            p("cpunumber", Ty::Int, "the CPU number of the service offering"),
            p("cpuspeed", Ty::Int, "the CPU speed of the service offering in MHz"),
            p("memory", Ty::Int, "the total memory of the service offering in MB"),
            p("offerha", Ty::Bool, "the HA for the service offering"),
            p(
                "storagetype",
                Ty::Str,
                "the storage type of the service offering: shared or local",
            ),
            p("hosttags", Ty::Str, "the host tag for this service offering"),
            p("tags", Ty::Str, "the tags for this service offering (storage tags)"),
            p(
                "customized",
                Ty::Bool,
                "whether the offering is customized (sizes given at deploy)",
            ),
            p(
                "mincpunumber",
                Ty::Int,
                "the minimum number of CPUs of a customized offering",
            ),
            p(
                "maxcpunumber",
                Ty::Int,
                "the maximum number of CPUs of a customized offering",
            ),
            p("minmemory", Ty::Int, "the minimum memory of a customized offering, MB"),
            p("maxmemory", Ty::Int, "the maximum memory of a customized offering, MB"),
            p(
                "deploymentplanner",
                Ty::Str,
                "the deployment planner heuristics used to deploy a VM",
            ),
            p(
                "limitcpuuse",
                Ty::Bool,
                "restrict the CPU usage to committed service offering (not enforced)",
            ),
            p(
                "issystem",
                Ty::Bool,
                "is this a system vm offering (only false is supported)",
            ),
            DOMAIN,
        ],
        object: "serviceoffering",
        fields: SERVICE_FIELDS,
        handler: create_service,
    },
    Command {
        name: "listServiceOfferings",
        description: "Lists all available service offerings.",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "ID of the service offering"),
            NAME,
            p("issystem", Ty::Bool, "is this a system vm offering"),
            p(
                "virtualmachineid",
                Ty::Uuid,
                "list the offerings this virtual machine can change to",
            ),
            DOMAIN,
            p("isrecursive", Ty::Bool, "accepted; offerings are public"),
            p("listall", Ty::Bool, "accepted; offerings are public"),
        ],
        object: "serviceoffering",
        fields: SERVICE_FIELDS,
        handler: list_service,
    },
    Command {
        name: "updateServiceOffering",
        description: "Updates a service offering.",
        is_async: false,
        min_role: Role::Admin,
        params: &[OFFERING_ID, NAME, DISPLAY_TEXT],
        object: "serviceoffering",
        fields: SERVICE_FIELDS,
        handler: update_service,
    },
    Command {
        name: "deleteServiceOffering",
        description: "Deletes a service offering.",
        is_async: false,
        min_role: Role::Admin,
        params: &[OFFERING_ID],
        object: "success",
        fields: &["success", "displaytext"],
        handler: delete_service,
    },
    Command {
        name: "createDiskOffering",
        description: "Creates a disk offering.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            req("name", Ty::Str, "name of the disk offering"),
            p(
                "displaytext",
                Ty::Str,
                "display text of the disk offering (default: the name)",
            ),
            p(
                "disksize",
                Ty::Long,
                "size of the disk offering in GB (1GB = 1,073,741,824 bytes)",
            ),
            p("customized", Ty::Bool, "whether disk offering size is custom or not"),
            p(
                "storagetype",
                Ty::Str,
                "the storage type of the disk offering: shared or local",
            ),
            p("tags", Ty::Str, "tags for the disk offering"),
            DOMAIN,
        ],
        object: "diskoffering",
        fields: DISK_FIELDS,
        handler: create_disk,
    },
    Command {
        name: "listDiskOfferings",
        description: "Lists all available disk offerings.",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "ID of the disk offering"),
            NAME,
            DOMAIN,
            p("isrecursive", Ty::Bool, "accepted; offerings are public"),
            p("listall", Ty::Bool, "accepted; offerings are public"),
        ],
        object: "diskoffering",
        fields: DISK_FIELDS,
        handler: list_disk,
    },
    Command {
        name: "updateDiskOffering",
        description: "Updates a disk offering.",
        is_async: false,
        min_role: Role::Admin,
        params: &[OFFERING_ID, NAME, DISPLAY_TEXT],
        object: "diskoffering",
        fields: DISK_FIELDS,
        handler: update_disk,
    },
    Command {
        name: "deleteDiskOffering",
        description: "Deletes a disk offering.",
        is_async: false,
        min_role: Role::Admin,
        params: &[OFFERING_ID],
        object: "success",
        fields: &["success", "displaytext"],
        handler: delete_disk,
    },
];
