//! Virtual machines: deploy, list, the lifecycle jobs (start, stop, reboot,
//! destroy, expunge, migrate) and the commands CloudStack runs synchronously
//! (recoverVirtualMachine, changeServiceForVirtualMachine, updateVirtualMachine).
//!
//! Every command on one VM first checks that the caller may act on it; a VM of
//! another tenant answers exactly like a missing one (431 "Unable to find
//! virtual machine by id"), so ids cannot be probed.

use super::jobs;
use super::prelude::*;
use super::vm_spec::{custom_size, deploy_spec, display_name};
use crate::registry::Param;
use crate::render::Val;
use std::time::Duration;
use stratus_core::controller::admin::AdminChange;
use stratus_core::controller::{JobStatus, Request};
use stratus_core::inventory::Inventory;
use stratus_core::settings::Scope as At;
use stratus_core::vm::{Vm, VmState};

fn owner_of(inv: &Inventory, v: &Vm) -> AccountId {
    inv.account(v.account).id
}

/// The VM `id` if the caller may act on it.
fn visible_vm(c: &Ctx<'_>, ctl: &Controller, id: Uuid) -> Result<VmId, ApiError> {
    let cloud = ctl.cloud();
    cloud
        .vm(VmId(id))
        .filter(|v| c.caller.owns(&cloud.inv, owner_of(&cloud.inv, v)))
        .map(|v| v.id)
        .ok_or_else(|| not_found("virtual machine", id))
}

/// A parameter only the root admin may pass. CloudStack ignores parameters a
/// role is not authorized for rather than refusing the call.
pub(super) fn admin_uuid(c: &Ctx<'_>, name: &str) -> Result<Option<Uuid>, ApiError> {
    if c.caller.is_admin() {
        c.p.opt_uuid(name)
    } else {
        Ok(None)
    }
}

/// Expunge and recover: admins (root or domain), or users of an account with
/// `allow.user.expunge.recover.vm`.
fn may_expunge(c: &Ctx<'_>, ctl: &Controller) -> bool {
    c.caller.role != Role::User
        || ctl
            .cloud()
            .settings
            .bool("allow.user.expunge.recover.vm", At::Account(c.caller.account))
}

fn expunge_denied(what: &str) -> ApiError {
    ApiError::permission_denied(format!(
        "{what} can be done by an Admin only, or when the allow.user.expunge.recover.vm key is set"
    ))
}

fn vm_obj(c: &Ctx<'_>, ctl: &Controller, vm: VmId) -> Result<Obj, ApiError> {
    let v = ctl.cloud().vm(vm).ok_or_else(|| not_found("virtual machine", vm.0))?;
    Ok(Obj::new().obj("virtualmachine", views::vm(ctl, v, c.caller.is_admin())))
}

/// Submits a job on a VM the caller may act on; answers `{jobid}`.
async fn vm_job(
    c: &Ctx<'_>,
    id_param: &str,
    check: impl FnOnce(&Controller) -> Result<(), ApiError>,
    make: impl FnOnce(VmId) -> Request,
) -> Result<Obj, ApiError> {
    let id = c.p.req_uuid(id_param)?;
    let vm = c.api.read(|ctl| {
        let vm = visible_vm(c, ctl, id)?;
        check(ctl)?;
        Ok::<_, ApiError>(vm)
    })?;
    jobs::submit(c, make(vm), false).await
}

/// Runs a request CloudStack answers synchronously. Our core does these
/// without driver calls, so the job is done when the submission returns; the
/// short bounded wait only guards against that ever changing.
async fn run_sync(c: &Ctx<'_>, req: Request) -> Result<VmId, ApiError> {
    let job = c.api.submit(c.caller, req).await?;
    for _ in 0..500 {
        let state = c
            .api
            .read(|ctl| ctl.job(job).map(|j| (j.status, j.vm, j.error_code, j.error.clone())));
        match state {
            Some((JobStatus::Succeeded, Some(vm), _, _)) => return Ok(vm),
            Some((JobStatus::Failed, _, code, err)) => {
                let code = code.unwrap_or(530);
                let cs = match code {
                    533 => crate::errors::cs::INSUFFICIENT_CAPACITY,
                    _ => crate::errors::cs::CLOUD_RUNTIME,
                };
                return Err(ApiError::new(
                    code,
                    cs,
                    err.unwrap_or_else(|| "the operation failed".into()),
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    Err(ApiError::internal(format!("job {job} did not finish in time")))
}

fn deploy<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let mut spec = c.api.read(|ctl| deploy_spec(c, ctl))?;
        let display = display_name(c)?;
        if spec.network.is_none() {
            spec.network = super::network::default_network(c, &spec).await?;
        }
        // keypair and userdata are accepted and not kept: there is no guest agent.
        let out = jobs::submit(c, Request::Deploy(spec), true).await?;
        // The core names a new VM's display name after the VM; a requested one is
        // set right after (validated above, so this does not fail in practice).
        if let (Some(d), Some(Val::Str(id))) = (display, out.get("id"))
            && let Ok(id) = Uuid::parse_str(id)
        {
            let change = AdminChange::UpdateVm {
                vm: VmId(id),
                display_name: Some(d),
                ha: None,
            };
            c.api.admin(Some(c.caller), change).await?;
        }
        Ok(out)
    })
}

const DETAILS: &[&str] = &[
    "all", "group", "nics", "stats", "secgrp", "tmpl", "servoff", "diskoff", "backoff", "iso", "volume", "min",
    "affgrp",
];

fn list<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        for d in c.p.opt_list("details").unwrap_or_default() {
            if !DETAILS.iter().any(|x| x.eq_ignore_ascii_case(d.trim())) {
                return Err(ApiError::invalid_parameter_value(format!(
                    "Invalid details value {d}; valid values are {}",
                    DETAILS.join(", ")
                )));
            }
        }
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let inv = &cloud.inv;
            let id = c.p.opt_uuid("id")?;
            let ids = c.p.opt_uuid_list("ids")?;
            let scoped = ["account", "domainid", "listall", "isrecursive"]
                .iter()
                .any(|n| c.p.contains(n));
            // By id, CloudStack looks across every account the caller manages.
            let scope = if (id.is_some() || ids.is_some()) && !scoped {
                Scope::Everything
            } else {
                Scope::from_params(c.caller, ctl, c.p)?
            };
            let show_destroyed = c.caller.role != Role::User
                || cloud
                    .settings
                    .bool("allow.user.view.destroyed.vm", At::Account(c.caller.account));
            let uuid = |n: &str| c.p.opt_uuid(n);
            let (zone, tpl, so) = (uuid("zoneid")?, uuid("templateid")?, uuid("serviceofferingid")?);
            let host = admin_uuid(c, "hostid")?;
            let state = c.p.opt_str("state").filter(|s| !s.is_empty());
            let name = c.p.opt_str("name").filter(|s| !s.is_empty());
            // Looked up once, not per VM (the filters below run over every VM).
            let keyword = c.p.opt_str("keyword").map(str::to_lowercase);
            let keyword_ok = |s: &str| keyword.as_ref().is_none_or(|k| s.to_lowercase().contains(k.as_str()));
            let vms: Vec<&Vm> = cloud
                .vms()
                .map(|(_, v)| v)
                .filter(|v| {
                    let owner = owner_of(inv, v);
                    c.caller.owns(inv, owner) && scope.covers(inv, owner)
                })
                .filter(|v| show_destroyed || !matches!(v.state, VmState::Destroyed | VmState::Expunging))
                .filter(|v| id.is_none_or(|i| v.id.0 == i))
                .filter(|v| ids.as_ref().is_none_or(|l| l.contains(&v.id.0)))
                .filter(|v| name.is_none_or(|n| v.name == n))
                .filter(|v| state.is_none_or(|s| v.state.as_str().eq_ignore_ascii_case(s)))
                .filter(|v| zone.is_none_or(|z| inv.zone(v.zone).id.0 == z))
                .filter(|v| tpl.is_none_or(|t| inv.template(v.template).id.0 == t))
                .filter(|v| so.is_none_or(|o| inv.service_offering(v.offering).id.0 == o))
                .filter(|v| host.is_none_or(|h| v.host.is_some_and(|x| inv.host(x).id.0 == h)))
                .filter(|v| keyword_ok(&v.name) || keyword_ok(&v.display_name) || keyword_ok(v.state.as_str()))
                .collect();
            let (count, page) = views::page_sorted(vms, c.p, |v| (v.created.0, v.id.0))?;
            let admin = c.caller.is_admin();
            let items = page.into_iter().map(|v| views::vm(ctl, v, admin)).collect();
            Ok(render::list_body("virtualmachine", count, items))
        })
    })
}

fn start<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let host = admin_uuid(c, "hostid")?.map(HostId);
        vm_job(c, "id", |_| Ok(()), |vm| Request::Start { vm, host }).await
    })
}

fn stop<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let forced = c.p.opt_bool("forced")?.unwrap_or(false);
        vm_job(c, "id", |_| Ok(()), |vm| Request::Stop { vm, forced }).await
    })
}

fn reboot<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move { vm_job(c, "id", |_| Ok(()), |vm| Request::Reboot { vm }).await })
}

fn destroy<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let expunge = c.p.opt_bool("expunge")?.unwrap_or(false);
        let check = |ctl: &Controller| {
            if expunge && !may_expunge(c, ctl) {
                return Err(expunge_denied("Expunging a VM"));
            }
            Ok(())
        };
        vm_job(c, "id", check, |vm| Request::Destroy { vm, expunge }).await
    })
}

fn expunge<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let check = |ctl: &Controller| {
            if may_expunge(c, ctl) {
                Ok(())
            } else {
                Err(expunge_denied("Expunging a VM"))
            }
        };
        vm_job(c, "id", check, |vm| Request::Expunge { vm }).await
    })
}

fn recover<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        let vm = c.api.read(|ctl| {
            let vm = visible_vm(c, ctl, id)?;
            if !may_expunge(c, ctl) {
                return Err(expunge_denied("Recovering a VM"));
            }
            Ok(vm)
        })?;
        let vm = run_sync(c, Request::Recover { vm }).await?;
        c.api.read(|ctl| vm_obj(c, ctl, vm))
    })
}

fn migrate<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let host = c.p.opt_uuid("hostid")?.map(HostId);
        let storage = c.p.opt_uuid("storageid")?;
        let check = |ctl: &Controller| {
            let Some(pool) = storage else { return Ok(()) };
            // Only "stay where you are" is accepted: storage migration is not modelled.
            let cloud = ctl.cloud();
            let vm = cloud.vm(VmId(c.p.req_uuid("virtualmachineid")?));
            let stays = vm.is_some_and(|v| {
                v.volumes
                    .iter()
                    .all(|i| cloud.volume_at(*i).pool.is_some_and(|p| cloud.inv.pool(p).id.0 == pool))
            });
            if stays {
                Ok(())
            } else {
                Err(ApiError::invalid_parameter_value(
                    "Migrating volumes to another storage pool (storageid) is not supported",
                ))
            }
        };
        vm_job(c, "virtualmachineid", check, |vm| Request::Migrate { vm, host }).await
    })
}

fn change_service<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        let so = c.p.req_uuid("serviceofferingid")?;
        let vm = c.api.read(|ctl| {
            let vm = visible_vm(c, ctl, id)?;
            let inv = &ctl.cloud().inv;
            if inv.find_service_offering(ServiceOfferingId(so)).is_none() || ctl.directory().is_removed(so) {
                return Err(not_found("service offering", so));
            }
            // A parameter problem in CloudStack (431), not a failed operation.
            let v = ctl.cloud().vm(vm).expect("visible");
            if v.state != VmState::Stopped {
                return Err(ApiError::invalid_parameter_value(format!(
                    "Unable to change the service offering of VM {}: it is {}; stop it first",
                    v.name, v.state
                )));
            }
            Ok(vm)
        })?;
        let size = custom_size(c)?;
        let req = Request::ChangeOffering {
            vm,
            offering: ServiceOfferingId(so),
            cpu: size.cpu,
            memory_mb: size.memory_mb,
        };
        let vm = run_sync(c, req).await?;
        c.api.read(|ctl| vm_obj(c, ctl, vm))
    })
}

fn update<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        let display = display_name(c)?;
        let ha = c.p.opt_bool("haenable")?;
        let vm = c.api.read(|ctl| {
            let vm = visible_vm(c, ctl, id)?;
            let current = &ctl.cloud().vm(vm).expect("visible").name;
            // Renaming the host name is not supported; the same name is a no-op.
            if let Some(n) = c.p.opt_str("name").filter(|n| !n.is_empty() && n != current) {
                return Err(ApiError::invalid_parameter_value(format!(
                    "Changing the name of a VM (to {n}) is not supported; use displayname"
                )));
            }
            Ok(vm)
        })?;
        if display.is_some() || ha.is_some() {
            let change = AdminChange::UpdateVm {
                vm,
                display_name: display,
                ha,
            };
            c.api.admin(Some(c.caller), change).await?;
        }
        c.api.read(|ctl| vm_obj(c, ctl, vm))
    })
}

/// Fields of the VM object, for listApis.
pub const VM_FIELDS: &[&str] = &[
    "id",
    "name",
    "displayname",
    "state",
    "zoneid",
    "zonename",
    "templateid",
    "templatename",
    "templatedisplaytext",
    "serviceofferingid",
    "serviceofferingname",
    "cpunumber",
    "cpuspeed",
    "memory",
    "haenable",
    "passwordenabled",
    "isdynamicallyscalable",
    "hypervisor",
    "guestosid",
    "ostypeid",
    "rootdevicetype",
    "rootdeviceid",
    "created",
    "account",
    "domainid",
    "domain",
    "hostid",
    "hostname",
    "instancename",
    "nic",
    "securitygroup",
    "affinitygroup",
    "tags",
];

const ID: Param = req("id", Ty::Uuid, "The ID of the virtual machine");

pub static COMMANDS: &[Command] = &[
    Command {
        name: "deployVirtualMachine",
        description: "Creates and automatically starts a virtual machine based on a service offering, disk offering, and template.",
        is_async: true,
        min_role: Role::User,
        params: &[
            req(
                "serviceofferingid",
                Ty::Uuid,
                "the ID of the service offering for the virtual machine",
            ),
            req("templateid", Ty::Uuid, "the ID of the template for the virtual machine"),
            req("zoneid", Ty::Uuid, "availability zone for the virtual machine"),
            p("name", Ty::Str, "host name for the virtual machine"),
            p(
                "displayname",
                Ty::Str,
                "an optional user generated name for the virtual machine",
            ),
            p(
                "account",
                Ty::Str,
                "an optional account for the virtual machine; must be used with domainId",
            ),
            p(
                "domainid",
                Ty::Uuid,
                "an optional domainId for the virtual machine; must be used with account",
            ),
            p(
                "diskofferingid",
                Ty::Uuid,
                "the ID of the disk offering for an additional data disk",
            ),
            p("size", Ty::Long, "the size of a custom data disk, GiB"),
            p("rootdisksize", Ty::Long, "the size of the root disk, GiB"),
            p("hostid", Ty::Uuid, "destination host (root admin only)"),
            p(
                "networkids",
                Ty::List,
                "list of network ids used by the virtual machine (the first one is used)",
            ),
            p(
                "details",
                Ty::Map,
                "cpuNumber, cpuSpeed and memory for custom offerings",
            ),
            p(
                "startvm",
                Ty::Bool,
                "true by default; false creates the VM without starting it",
            ),
            p("keypair", Ty::Str, "name of the ssh key pair (accepted, not used)"),
            p("userdata", Ty::Str, "user data (accepted, not used)"),
            p(
                "affinitygroupids",
                Ty::List,
                "comma separated list of affinity group ids",
            ),
            p(
                "hypervisor",
                Ty::Str,
                "the hypervisor on which to deploy the virtual machine",
            ),
        ],
        object: "virtualmachine",
        fields: VM_FIELDS,
        handler: deploy,
    },
    Command {
        name: "listVirtualMachines",
        description: "List the virtual machines owned by the account.",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "the ID of the virtual machine"),
            p("ids", Ty::List, "the IDs of the virtual machines"),
            p("name", Ty::Str, "name of the virtual machine"),
            p("state", Ty::Str, "state of the virtual machine"),
            p("zoneid", Ty::Uuid, "the availability zone ID"),
            p("hostid", Ty::Uuid, "the host ID (root admin only)"),
            p("templateid", Ty::Uuid, "list by the template ID"),
            p("serviceofferingid", Ty::Uuid, "list by the service offering"),
            p(
                "details",
                Ty::List,
                "comma separated list of details to return (all returned)",
            ),
            p(
                "account",
                Ty::Str,
                "list resources by account; must be used with domainId",
            ),
            p(
                "domainid",
                Ty::Uuid,
                "list only resources belonging to the domain specified",
            ),
            p(
                "isrecursive",
                Ty::Bool,
                "defaults to false; true lists the domain's subdomains too",
            ),
            p("listall", Ty::Bool, "list everything the caller may see"),
        ],
        object: "virtualmachine",
        fields: VM_FIELDS,
        handler: list,
    },
    Command {
        name: "startVirtualMachine",
        description: "Starts a virtual machine.",
        is_async: true,
        min_role: Role::User,
        params: &[ID, p("hostid", Ty::Uuid, "destination host (root admin only)")],
        object: "virtualmachine",
        fields: VM_FIELDS,
        handler: start,
    },
    Command {
        name: "stopVirtualMachine",
        description: "Stops a virtual machine.",
        is_async: true,
        min_role: Role::User,
        params: &[ID, p("forced", Ty::Bool, "force stop the VM")],
        object: "virtualmachine",
        fields: VM_FIELDS,
        handler: stop,
    },
    Command {
        name: "rebootVirtualMachine",
        description: "Reboots a virtual machine.",
        is_async: true,
        min_role: Role::User,
        params: &[ID],
        object: "virtualmachine",
        fields: VM_FIELDS,
        handler: reboot,
    },
    Command {
        name: "destroyVirtualMachine",
        description: "Destroys a virtual machine.",
        is_async: true,
        min_role: Role::User,
        params: &[ID, p("expunge", Ty::Bool, "expunge the VM at once (admins)")],
        object: "virtualmachine",
        fields: VM_FIELDS,
        handler: destroy,
    },
    Command {
        name: "recoverVirtualMachine",
        description: "Recovers a virtual machine.",
        is_async: false,
        min_role: Role::User,
        params: &[ID],
        object: "virtualmachine",
        fields: VM_FIELDS,
        handler: recover,
    },
    Command {
        name: "expungeVirtualMachine",
        description: "Expunge a virtual machine. Once expunged, it cannot be recoverd.",
        is_async: true,
        min_role: Role::User,
        params: &[ID],
        object: "success",
        fields: &["success", "displaytext"],
        handler: expunge,
    },
    Command {
        name: "migrateVirtualMachine",
        description: "Attempts Migration of a VM to a different host or Root volume of the vm to a different storage pool",
        is_async: true,
        min_role: Role::Admin,
        params: &[
            req("virtualmachineid", Ty::Uuid, "the ID of the virtual machine"),
            p(
                "hostid",
                Ty::Uuid,
                "destination host; the allocator picks one when absent",
            ),
            p(
                "storageid",
                Ty::Uuid,
                "destination storage pool (only the current one is accepted)",
            ),
        ],
        object: "virtualmachine",
        fields: VM_FIELDS,
        handler: migrate,
    },
    Command {
        name: "changeServiceForVirtualMachine",
        description: "Changes the service offering for a virtual machine. The virtual machine must be in a Stopped state.",
        is_async: false,
        min_role: Role::User,
        params: &[
            ID,
            req(
                "serviceofferingid",
                Ty::Uuid,
                "the service offering ID to apply to the virtual machine",
            ),
            p("details", Ty::Map, "cpuNumber and memory for custom offerings"),
        ],
        object: "virtualmachine",
        fields: VM_FIELDS,
        handler: change_service,
    },
    Command {
        name: "updateVirtualMachine",
        description: "Updates properties of a virtual machine.",
        is_async: false,
        min_role: Role::User,
        params: &[
            ID,
            p("displayname", Ty::Str, "user generated name"),
            p(
                "haenable",
                Ty::Bool,
                "true if high-availability is enabled for the virtual machine",
            ),
            p("name", Ty::Str, "host name (changing it is not supported)"),
            p("group", Ty::Str, "group of the virtual machine (accepted, not kept)"),
            p("userdata", Ty::Str, "user data (accepted, not kept)"),
        ],
        object: "virtualmachine",
        fields: VM_FIELDS,
        handler: update,
    },
];
