//! Taking infrastructure out: deleteHost, deleteCluster, deletePod (root admin
//! only). CloudStack's rules: a host is deleted from Maintenance (or with
//! `forced`), a cluster only without hosts, a pod only without clusters.
//! Stratus adds one rule of its own: a host that VMs or volumes still use is
//! refused even when forced (CloudStack would stop them or hand them to HA as
//! a side effect; here moving VMs is the operator's explicit step), so no VM
//! ever references a gone host. Refusals are CloudStack's
//! CloudRuntimeException (530 / 4250) naming what remains; unknown ids 431;
//! nothing changes on any error. A deleted KVM host's agent secret and
//! tokens are forgotten, so its agent cannot reconnect; a deleted Simulator
//! host's agent stops and leaves the simulated world.

use super::prelude::*;
use stratus_core::controller::admin::AdminChange;

fn delete_host<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let host = HostId(c.p.req_uuid("id")?);
        let forced = c.p.opt_bool("forced")?.unwrap_or(false);
        // Accepted for CloudStack clients; volumes on local storage refuse the
        // delete whatever it says (see the module comment).
        let _ = c.p.opt_bool("forcedestroylocalstorage")?;
        c.api.read(|ctl| {
            ctl.cloud()
                .inv
                .find_host(host)
                .map(|_| ())
                .ok_or_else(|| not_found("host", host.0))
        })?;
        c.api
            .admin(Some(c.caller), AdminChange::DeleteHost { host, forced })
            .await?;
        if let Err(e) = c.api.gw.forget_host(host).await {
            // The delete is durable; the gateway also refuses agents of hosts
            // that are not in the inventory, so this only leaves a stale row.
            tracing::warn!(%host, error = %e, "deleteHost: could not forget the agent's credentials");
        }
        if let Some(sim) = &c.api.sim {
            sim.host_removed(host);
        }
        Ok(render::success_body(true, None))
    })
}

fn delete_cluster<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let cluster = ClusterId(c.p.req_uuid("id")?);
        c.api.read(|ctl| {
            ctl.cloud()
                .inv
                .find_cluster(cluster)
                .map(|_| ())
                .ok_or_else(|| not_found("cluster", cluster.0))
        })?;
        c.api
            .admin(Some(c.caller), AdminChange::DeleteCluster { cluster })
            .await?;
        Ok(render::success_body(true, None))
    })
}

fn delete_pod<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let pod = PodId(c.p.req_uuid("id")?);
        c.api.read(|ctl| {
            ctl.cloud()
                .inv
                .find_pod(pod)
                .map(|_| ())
                .ok_or_else(|| not_found("pod", pod.0))
        })?;
        c.api.admin(Some(c.caller), AdminChange::DeletePod { pod }).await?;
        Ok(render::success_body(true, None))
    })
}

const SUCCESS: &[&str] = &["success", "displaytext"];

pub static COMMANDS: &[Command] = &[
    Command {
        name: "deleteHost",
        description: "Deletes a host. It must be in Maintenance unless forced; a host that VMs or volumes still use is refused even when forced.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            req("id", Ty::Uuid, "the host ID"),
            p(
                "forced",
                Ty::Bool,
                "delete a host that is not in Maintenance (it must still hold no VMs or volumes)",
            ),
            p(
                "forcedestroylocalstorage",
                Ty::Bool,
                "accepted for compatibility: volumes on the host's local storage always refuse the delete; its empty local pools go with it",
            ),
        ],
        object: "success",
        fields: SUCCESS,
        handler: delete_host,
    },
    Command {
        name: "deleteCluster",
        description: "Deletes a cluster without hosts; its empty cluster-wide primary storage goes with it.",
        is_async: false,
        min_role: Role::Admin,
        params: &[req("id", Ty::Uuid, "the cluster ID")],
        object: "success",
        fields: SUCCESS,
        handler: delete_cluster,
    },
    Command {
        name: "deletePod",
        description: "Deletes a pod without clusters.",
        is_async: false,
        min_role: Role::Admin,
        params: &[req("id", Ty::Uuid, "the ID of the Pod")],
        object: "success",
        fields: SUCCESS,
        handler: delete_pod,
    },
];
