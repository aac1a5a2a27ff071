//! What the allocator would do, shown before an operator acts:
//! findHostsForMigration (every other host of the VM's zone, suitable or not,
//! with the allocator's reason) and planHostMaintenance (a Stratus addition:
//! the evacuation plan prepareHostForMaintenance would make now). Both read
//! only; nothing changes.

use super::prelude::*;
use crate::api::core_error;

fn find_hosts_for_migration<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let vm = c.p.req_uuid("virtualmachineid")?;
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            if cloud.vm(VmId(vm)).is_none() {
                return Err(not_found("virtual machine", vm));
            }
            let found = cloud.migration_candidates(VmId(vm)).map_err(core_error)?;
            let inv = &cloud.inv;
            let objs: Vec<Obj> = found
                .into_iter()
                .filter_map(|m| {
                    let h = inv.find_host(m.host)?;
                    let o = views::host(ctl, h)
                        .b("suitableformigration", m.refusal.is_none())
                        .b("requiresStorageMotion", false)
                        .opt_s("notsuitablereason", m.refusal);
                    views::keyword_ok(c.p, &inv.host(h).name).then_some(o)
                })
                .collect();
            let (count, page) = views::page(objs, c.p)?;
            Ok(render::list_body("host", count, page))
        })
    })
}

fn plan_host_maintenance<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let h = cloud.inv.find_host(HostId(id)).ok_or_else(|| not_found("host", id))?;
            let plan = ctl.evacuation_preview(HostId(id)).map_err(core_error)?;
            let moves: Vec<Obj> = plan
                .into_iter()
                .map(|m| {
                    let (dest, why) = match m.destination {
                        Ok(d) => (Some(d), None),
                        Err(e) => (None, Some(e)),
                    };
                    Obj::new()
                        .s("virtualmachineid", m.vm.0.to_string())
                        .s("virtualmachinename", m.vm_name)
                        .opt_s("destinationhostname", dest)
                        .opt_s("reason", why)
                })
                .collect();
            let host = cloud.inv.host(h);
            let body = Obj::new()
                .s("id", host.id.0.to_string())
                .s("name", host.name.clone())
                .s("resourcestate", host.resource_state.as_str())
                .i("count", moves.len() as i64)
                .list("move", moves);
            Ok(Obj::new().obj("maintenanceplan", body))
        })
    })
}

pub static COMMANDS: &[Command] = &[
    Command {
        name: "findHostsForMigration",
        description: "Find hosts suitable for migrating a virtual machine (with the allocator's reason for each unsuitable one).",
        is_async: false,
        min_role: Role::Admin,
        params: &[req(
            "virtualmachineid",
            Ty::Uuid,
            "find hosts to which this VM can be migrated",
        )],
        object: "host",
        fields: &[
            "id",
            "name",
            "state",
            "resourcestate",
            "clustername",
            "cpuallocated",
            "memoryallocated",
            "suitableformigration",
            "requiresStorageMotion",
            "notsuitablereason",
        ],
        handler: find_hosts_for_migration,
    },
    Command {
        name: "planHostMaintenance",
        description: "Shows the evacuation plan prepareHostForMaintenance would make now (each VM's destination or why none); changes nothing.",
        is_async: false,
        min_role: Role::Admin,
        params: &[req("id", Ty::Uuid, "the host ID")],
        object: "maintenanceplan",
        fields: &["id", "name", "resourcestate", "count", "move"],
        handler: plan_host_maintenance,
    },
];
