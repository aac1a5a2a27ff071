//! Volumes and snapshots: createVolume, listVolumes, attachVolume,
//! detachVolume, deleteVolume, createSnapshot, listSnapshots, deleteSnapshot.

use super::access::{ACCOUNT, DOMAINID, ISRECURSIVE, LISTALL, list_scope, listed, sees, target_account};
use super::jobs;
use super::prelude::*;
use std::time::Duration;
use stratus_core::controller::{JobStatus, Request};
use stratus_core::vm::{Snapshot, Volume, VolumeState};

pub fn snapshot_view(ctl: &Controller, id: Uuid) -> Option<Obj> {
    let cloud = ctl.cloud();
    let s = cloud.snapshot(SnapshotId(id))?;
    let inv = &cloud.inv;
    let acc = inv.account(s.account);
    let d = inv.domain(acc.domain);
    let z = inv.zone(s.zone);
    let vol_type = cloud.volume(s.volume).map_or("DATADISK", |v| {
        if v.volume_type.as_str() == "Root" {
            "ROOT"
        } else {
            "DATADISK"
        }
    });
    Some(
        Obj::new()
            .s("id", s.id.0.to_string())
            .s("name", s.name.clone())
            .s("volumeid", s.volume.0.to_string())
            .s("volumename", s.volume_name.clone())
            .s("volumetype", vol_type)
            .s("snapshottype", "MANUAL")
            .s("intervaltype", "MANUAL")
            .s("state", s.state.as_str())
            .i("physicalsize", s.size_bytes as i64)
            .s("zoneid", z.id.0.to_string())
            .s("account", acc.name.clone())
            .s("domainid", d.id.0.to_string())
            .s("domain", d.name.clone())
            .b("revertable", false)
            .date("created", s.created.0),
    )
}

/// A volume the caller may see (expunged ones are gone).
fn volume_of<'c>(c: &Ctx<'_>, ctl: &'c Controller, id: Uuid) -> Result<&'c Volume, ApiError> {
    let cloud = ctl.cloud();
    cloud
        .volume(VolumeId(id))
        .filter(|v| v.state != VolumeState::Expunged && sees(c.caller, &cloud.inv, v.account))
        .ok_or_else(|| not_found("volume", id))
}

fn vm_of(c: &Ctx<'_>, ctl: &Controller, id: Uuid) -> Result<(), ApiError> {
    let cloud = ctl.cloud();
    cloud
        .vm(VmId(id))
        .filter(|v| sees(c.caller, &cloud.inv, v.account))
        .map(|_| ())
        .ok_or_else(|| not_found("virtual machine", id))
}

fn snapshot_of<'c>(c: &Ctx<'_>, ctl: &'c Controller, id: Uuid) -> Result<&'c Snapshot, ApiError> {
    let cloud = ctl.cloud();
    cloud
        .snapshot(SnapshotId(id))
        .filter(|s| sees(c.caller, &cloud.inv, s.account))
        .ok_or_else(|| not_found("snapshot", id))
}

fn volume_type(v: &Volume) -> &'static str {
    if v.volume_type.as_str() == "Root" {
        "ROOT"
    } else {
        "DATADISK"
    }
}

fn create_volume<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        if c.p.opt_uuid("snapshotid")?.is_some() {
            return Err(ApiError::param(
                "Creating a volume from a snapshot is not supported by this cloud",
            ));
        }
        if c.p.opt_uuid("virtualmachineid")?.is_some() {
            return Err(ApiError::param(
                "virtualmachineid is not supported by createVolume here; attach the volume with attachVolume",
            ));
        }
        let name = c.p.req_str("name")?.to_string();
        let offering = c.p.opt_uuid("diskofferingid")?.ok_or_else(|| {
            ApiError::param("Either disk Offering Id or snapshot Id must be passed whilst creating volume")
        })?;
        let zone = c.p.req_uuid("zoneid")?;
        let size_gib = match c.p.opt_i64("size")? {
            None => None,
            Some(g) if g > 0 => Some(g as u64),
            Some(g) => return Err(ApiError::invalid_parameter_value(format!("Invalid size {g} GiB"))),
        };
        let account = c.api.read(|ctl| target_account(c, ctl))?;
        let req = Request::CreateVolume {
            name,
            account,
            zone: ZoneId(zone),
            disk_offering: DiskOfferingId(offering),
            size_gib,
        };
        jobs::submit(c, req, true).await
    })
}

fn list_volumes<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let admin = c.caller.is_admin();
        let id = c.p.opt_uuid("id")?;
        let vm = c.p.opt_uuid("virtualmachineid")?;
        let zone = c.p.opt_uuid("zoneid")?;
        let offering = c.p.opt_uuid("diskofferingid")?;
        // storageid is an admin parameter (ListVolumesCmdByAdmin); others' is ignored.
        let pool = if admin { c.p.opt_uuid("storageid")? } else { None };
        let kind = c.p.opt_str("type").map(str::to_ascii_uppercase);
        let name = c.p.opt_str("name");
        c.api.read(|ctl| {
            let scope = list_scope(c, ctl)?;
            let cloud = ctl.cloud();
            let inv = &cloud.inv;
            let items: Vec<&Volume> = cloud
                .volumes()
                .map(|(_, v)| v)
                .filter(|v| v.state != VolumeState::Expunged)
                .filter(|v| listed(c, &scope, inv, inv.account(v.account).id))
                .filter(|v| id.is_none_or(|i| v.id.0 == i))
                .filter(|v| vm.is_none_or(|m| v.vm.is_some_and(|i| cloud.vm_at(i).id.0 == m)))
                .filter(|v| zone.is_none_or(|z| inv.zone(v.zone).id.0 == z))
                .filter(|v| pool.is_none_or(|p| v.pool.is_some_and(|i| inv.pool(i).id.0 == p)))
                .filter(|v| offering.is_none_or(|o| v.disk_offering.is_some_and(|d| inv.disk_offering(d).id.0 == o)))
                .filter(|v| kind.as_deref().is_none_or(|k| volume_type(v) == k))
                .filter(|v| name.is_none_or(|n| v.name == n))
                .filter(|v| views::keyword_ok(c.p, &v.name))
                .collect();
            let (count, page) = views::page(items, c.p)?;
            let objs = page
                .into_iter()
                .map(|v| {
                    let mut o = views::volume(ctl, v);
                    if !admin {
                        o.0.retain(|(k, _)| k != "storageid");
                    }
                    o
                })
                .collect();
            Ok(render::list_body("volume", count, objs))
        })
    })
}

fn attach_volume<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let volume = c.p.req_uuid("id")?;
        let vm = c.p.req_uuid("virtualmachineid")?;
        // deviceid: Stratus numbers a VM's disks in attach order (root 0), so a
        // requested device id is not honoured.
        c.p.opt_i64("deviceid")?;
        c.api.read(|ctl| {
            volume_of(c, ctl, volume)?;
            vm_of(c, ctl, vm)
        })?;
        let req = Request::AttachVolume {
            volume: VolumeId(volume),
            vm: VmId(vm),
        };
        jobs::submit(c, req, false).await
    })
}

fn detach_volume<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let vm = c.p.opt_uuid("virtualmachineid")?;
        let device = c.p.opt_i64("deviceid")?;
        let volume = c.api.read(|ctl| match (id, vm, device) {
            (Some(id), _, _) => volume_of(c, ctl, id).map(|v| v.id),
            (None, Some(vm), Some(dev)) => {
                vm_of(c, ctl, vm)?;
                let cloud = ctl.cloud();
                let m = cloud.vm(VmId(vm)).ok_or_else(|| not_found("virtual machine", vm))?;
                usize::try_from(dev)
                    .ok()
                    .and_then(|d| m.volumes.get(d))
                    .map(|i| cloud.volume_at(*i).id)
                    .ok_or_else(|| ApiError::param(format!("No volume is attached to VM {vm} as device {dev}")))
            }
            _ => Err(ApiError::param(
                "Please provide either a volume id, or a tuple(device id, instance id)",
            )),
        })?;
        jobs::submit(c, Request::DetachVolume { volume }, false).await
    })
}

/// Waits for a job to leave Pending. deleteVolume is synchronous in
/// CloudStack while Stratus runs it as a job (the volume may need a driver
/// call); the longest single call times out after two minutes.
async fn finished(c: &Ctx<'_>, job: JobId) -> Result<stratus_core::controller::Job, ApiError> {
    let mut wait = Duration::from_millis(5);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let j = c.api.read(|ctl| ctl.job(job).cloned());
        match j {
            Some(j) if j.status != JobStatus::Pending => return Ok(j),
            None => return Err(ApiError::internal(format!("job {job} vanished"))),
            Some(_) if tokio::time::Instant::now() >= deadline => {
                return Err(ApiError::internal(format!("still deleting the volume as job {job}")));
            }
            Some(_) => {}
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(200));
    }
}

fn delete_volume<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        c.api.read(|ctl| volume_of(c, ctl, id).map(|_| ()))?;
        let job = c
            .api
            .submit(c.caller, Request::DeleteVolume { volume: VolumeId(id) })
            .await?;
        let j = finished(c, job).await?;
        match j.status {
            JobStatus::Succeeded => Ok(render::success_body(true, None)),
            _ => Err(ApiError::new(
                j.error_code.unwrap_or(530),
                crate::errors::cs::CLOUD_RUNTIME,
                j.error.unwrap_or_else(|| "Failed to delete volume".into()),
            )),
        }
    })
}

fn create_snapshot<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let volume = c.p.req_uuid("volumeid")?;
        // There are no recurring snapshot policies, so no policy id can be valid.
        if let Some(p) = c.p.opt_uuid("policyid")? {
            return Err(not_found("snapshot policy", p));
        }
        let name = c.p.opt_str("name").unwrap_or("").to_string();
        c.api.read(|ctl| volume_of(c, ctl, volume).map(|_| ()))?;
        let req = Request::CreateSnapshot {
            volume: VolumeId(volume),
            name,
        };
        jobs::submit(c, req, true).await
    })
}

fn list_snapshots<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let volume = c.p.opt_uuid("volumeid")?;
        let zone = c.p.opt_uuid("zoneid")?;
        let name = c.p.opt_str("name");
        // Every snapshot is a manual one.
        let manual =
            c.p.opt_str("snapshottype")
                .is_none_or(|t| t.eq_ignore_ascii_case("MANUAL"))
                && c.p
                    .opt_str("intervaltype")
                    .is_none_or(|t| t.eq_ignore_ascii_case("MANUAL"));
        c.api.read(|ctl| {
            let scope = list_scope(c, ctl)?;
            let cloud = ctl.cloud();
            let inv = &cloud.inv;
            let items: Vec<&Snapshot> = cloud
                .snapshots()
                .filter(|_| manual)
                .filter(|s| listed(c, &scope, inv, inv.account(s.account).id))
                .filter(|s| id.is_none_or(|i| s.id.0 == i))
                .filter(|s| volume.is_none_or(|v| s.volume.0 == v))
                .filter(|s| zone.is_none_or(|z| inv.zone(s.zone).id.0 == z))
                .filter(|s| name.is_none_or(|n| s.name == n))
                .filter(|s| views::keyword_ok(c.p, &s.name))
                .collect();
            let (count, page) = views::page(items, c.p)?;
            let objs = page.into_iter().filter_map(|s| snapshot_view(ctl, s.id.0)).collect();
            Ok(render::list_body("snapshot", count, objs))
        })
    })
}

fn delete_snapshot<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        c.api.read(|ctl| snapshot_of(c, ctl, id).map(|_| ()))?;
        let req = Request::DeleteSnapshot {
            snapshot: SnapshotId(id),
        };
        jobs::submit(c, req, false).await
    })
}

const VOLUME_FIELDS: &[&str] = &[
    "id",
    "name",
    "type",
    "state",
    "size",
    "zoneid",
    "zonename",
    "storagetype",
    "provisioningtype",
    "virtualmachineid",
    "vmname",
    "vmdisplayname",
    "vmstate",
    "deviceid",
    "storageid",
    "storage",
    "diskofferingid",
    "diskofferingname",
    "destroyed",
    "isextractable",
    "account",
    "domainid",
    "domain",
];

const SNAPSHOT_FIELDS: &[&str] = &[
    "id",
    "name",
    "volumeid",
    "volumename",
    "volumetype",
    "snapshottype",
    "intervaltype",
    "state",
    "physicalsize",
    "zoneid",
    "account",
    "domainid",
    "domain",
    "revertable",
    "created",
];

const SUCCESS_FIELDS: &[&str] = &["success", "displaytext"];

pub static COMMANDS: &[Command] = &[
    Command {
        name: "createVolume",
        description: "Creates a disk volume from a disk offering. This disk volume must still be attached to a virtual machine to make use of it.",
        is_async: true,
        min_role: Role::User,
        params: &[
            req("name", Ty::Str, "the name of the disk volume"),
            p("diskofferingid", Ty::Uuid, "the ID of the disk offering"),
            p(
                "size",
                Ty::Long,
                "size of the volume in GiB, for customized disk offerings",
            ),
            p("zoneid", Ty::Uuid, "the ID of the availability zone"),
            p(
                "snapshotid",
                Ty::Uuid,
                "the snapshot ID for the disk volume (not supported)",
            ),
            p(
                "virtualmachineid",
                Ty::Uuid,
                "the ID of the virtual machine to attach to (not supported; use attachVolume)",
            ),
            ACCOUNT,
            DOMAINID,
        ],
        object: "volume",
        fields: VOLUME_FIELDS,
        handler: create_volume,
    },
    Command {
        name: "listVolumes",
        description: "Lists all volumes.",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "the ID of the disk volume"),
            p("name", Ty::Str, "the name of the disk volume"),
            p("virtualmachineid", Ty::Uuid, "the ID of the virtual machine"),
            p("type", Ty::Str, "the type of disk volume (ROOT or DATADISK)"),
            p("zoneid", Ty::Uuid, "the ID of the availability zone"),
            p("diskofferingid", Ty::Uuid, "list volumes by disk offering"),
            p("storageid", Ty::Uuid, "the ID of the storage pool (admins only)"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
        ],
        object: "volume",
        fields: VOLUME_FIELDS,
        handler: list_volumes,
    },
    Command {
        name: "attachVolume",
        description: "Attaches a disk volume to a virtual machine.",
        is_async: true,
        min_role: Role::User,
        params: &[
            req("id", Ty::Uuid, "the ID of the disk volume"),
            req("virtualmachineid", Ty::Uuid, "the ID of the virtual machine"),
            p(
                "deviceid",
                Ty::Long,
                "the ID of the device (assigned in attach order here)",
            ),
        ],
        object: "volume",
        fields: VOLUME_FIELDS,
        handler: attach_volume,
    },
    Command {
        name: "detachVolume",
        description: "Detaches a disk volume from a virtual machine.",
        is_async: true,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "the ID of the disk volume"),
            p("virtualmachineid", Ty::Uuid, "the ID of the virtual machine"),
            p("deviceid", Ty::Long, "the device ID on the virtual machine"),
        ],
        object: "volume",
        fields: VOLUME_FIELDS,
        handler: detach_volume,
    },
    Command {
        name: "deleteVolume",
        description: "Deletes a detached disk volume.",
        is_async: false,
        min_role: Role::User,
        params: &[req("id", Ty::Uuid, "the ID of the disk volume")],
        object: "success",
        fields: SUCCESS_FIELDS,
        handler: delete_volume,
    },
    Command {
        name: "createSnapshot",
        description: "Creates an instant snapshot of a volume.",
        is_async: true,
        min_role: Role::User,
        params: &[
            req("volumeid", Ty::Uuid, "The ID of the disk volume"),
            p("name", Ty::Str, "the name of the snapshot"),
            p("policyid", Ty::Uuid, "policy id of the snapshot (no policies exist)"),
            p("quiescevm", Ty::Bool, "quiesce vm if true (ignored)"),
            ACCOUNT,
            DOMAINID,
        ],
        object: "snapshot",
        fields: SNAPSHOT_FIELDS,
        handler: create_snapshot,
    },
    Command {
        name: "listSnapshots",
        description: "Lists all available snapshots for the account.",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "lists snapshot by snapshot ID"),
            p("name", Ty::Str, "lists snapshot by snapshot name"),
            p("volumeid", Ty::Uuid, "the ID of the disk volume"),
            p("zoneid", Ty::Uuid, "list snapshots by zone id"),
            p("snapshottype", Ty::Str, "valid values are MANUAL or RECURRING"),
            p(
                "intervaltype",
                Ty::Str,
                "valid values are HOURLY, DAILY, WEEKLY, and MONTHLY",
            ),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
        ],
        object: "snapshot",
        fields: SNAPSHOT_FIELDS,
        handler: list_snapshots,
    },
    Command {
        name: "deleteSnapshot",
        description: "Deletes a snapshot of a disk volume.",
        is_async: true,
        min_role: Role::User,
        params: &[req("id", Ty::Uuid, "The ID of the snapshot")],
        object: "success",
        fields: SUCCESS_FIELDS,
        handler: delete_snapshot,
    },
];
