//! Async jobs: submitting (the `{jobid}` / `{id, jobid}` answers),
//! queryAsyncJobResult and listAsyncJobs.

use super::prelude::*;
use stratus_core::controller::{Command as Cmd, Job, JobStatus, Request};

/// Submits `req` as the caller; answers once it is durable. Create-style
/// commands (deploy, createVolume, createSnapshot) also carry the new id.
pub async fn submit(c: &Ctx<'_>, req: Request, create: bool) -> Result<Obj, ApiError> {
    let job = c.api.submit(c.caller, req).await?;
    let jobid = job.to_string();
    if !create {
        return Ok(render::async_body(&jobid));
    }
    let id = c.api.read(|ctl| ctl.job(job).and_then(instance_of));
    Ok(match id {
        Some(id) => render::async_create_body(&id.to_string(), &jobid),
        None => render::async_body(&jobid),
    })
}

/// The entity a job works on.
fn instance_of(j: &Job) -> Option<Uuid> {
    match j.command {
        Cmd::CreateSnapshot | Cmd::DeleteSnapshot => j.instance,
        _ => j.vm.map(|v| v.0).or(j.volume.map(|v| v.0)).or(j.instance),
    }
}

fn instance_type(c: Cmd) -> &'static str {
    match c {
        Cmd::CreateVolume | Cmd::AttachVolume | Cmd::DetachVolume | Cmd::DeleteVolume => "Volume",
        Cmd::CreateSnapshot | Cmd::DeleteSnapshot => "Snapshot",
        Cmd::AssociateIpAddress | Cmd::DisassociateIpAddress => "IpAddress",
        Cmd::PrepareHostForMaintenance | Cmd::CancelHostMaintenance => "Host",
        Cmd::RunWhatIf => "None",
        _ => "VirtualMachine",
    }
}

/// CloudStack's command class names (`cmd`), close enough for clients that print them.
fn class_name(c: Cmd) -> String {
    let (pkg, class) = match c {
        Cmd::DeployVirtualMachine => ("user.vm", "DeployVMCmd"),
        Cmd::StartVirtualMachine => ("user.vm", "StartVMCmd"),
        Cmd::StopVirtualMachine => ("user.vm", "StopVMCmd"),
        Cmd::RebootVirtualMachine => ("user.vm", "RebootVMCmd"),
        Cmd::DestroyVirtualMachine => ("user.vm", "DestroyVMCmd"),
        Cmd::RecoverVirtualMachine => ("user.vm", "RecoverVMCmd"),
        Cmd::ExpungeVirtualMachine => ("admin.vm", "ExpungeVMCmd"),
        Cmd::MigrateVirtualMachine => ("admin.vm", "MigrateVMCmd"),
        Cmd::ChangeServiceForVirtualMachine => ("user.vm", "UpgradeVMCmd"),
        Cmd::HaRestartVirtualMachine => ("admin.vm", "HaRestartVMCmd"),
        Cmd::CreateVolume => ("user.volume", "CreateVolumeCmd"),
        Cmd::AttachVolume => ("user.volume", "AttachVolumeCmd"),
        Cmd::DetachVolume => ("user.volume", "DetachVolumeCmd"),
        Cmd::DeleteVolume => ("user.volume", "DeleteVolumeCmd"),
        Cmd::CreateSnapshot => ("user.snapshot", "CreateSnapshotCmd"),
        Cmd::DeleteSnapshot => ("user.snapshot", "DeleteSnapshotCmd"),
        Cmd::AssociateIpAddress => ("user.address", "AssociateIPAddrCmd"),
        Cmd::DisassociateIpAddress => ("user.address", "DisassociateIPAddrCmd"),
        Cmd::PrepareHostForMaintenance => ("admin.host", "PrepareForMaintenanceCmd"),
        Cmd::CancelHostMaintenance => ("admin.host", "CancelMaintenanceCmd"),
        Cmd::RunWhatIf => ("admin.capacity", "RunWhatIfCmd"),
    };
    format!("org.apache.cloudstack.api.command.{pkg}.{class}")
}

/// The account a job belongs to: its submitter's, else its VM's or volume's.
pub fn job_account(ctl: &Controller, j: &Job) -> Option<AccountId> {
    if let Some(u) = j.user.and_then(|u| ctl.directory().user(u)) {
        return Some(u.account);
    }
    let cloud = ctl.cloud();
    let inv = &cloud.inv;
    let a =
        j.vm.and_then(|v| cloud.vm(v))
            .map(|v| v.account)
            .or_else(|| j.volume.and_then(|v| cloud.volume(v)).map(|v| v.account))?;
    Some(inv.account(a).id)
}

fn result_obj(ctl: &Controller, j: &Job, admin: bool) -> Option<Obj> {
    let cloud = ctl.cloud();
    Some(match j.command {
        Cmd::ExpungeVirtualMachine | Cmd::DeleteVolume | Cmd::DeleteSnapshot | Cmd::DisassociateIpAddress => {
            render::success_body(true, None)
        }
        Cmd::CreateVolume | Cmd::AttachVolume | Cmd::DetachVolume => {
            let v = cloud.volume(j.volume?)?;
            Obj::new().obj("volume", views::volume(ctl, v))
        }
        Cmd::CreateSnapshot => Obj::new().obj("snapshot", super::storage::snapshot_view(ctl, j.instance?)?),
        Cmd::AssociateIpAddress => Obj::new().obj("ipaddress", super::network::ip_view(ctl, j.instance?)?),
        Cmd::PrepareHostForMaintenance | Cmd::CancelHostMaintenance => {
            let h = cloud.inv.find_host(HostId(j.instance?))?;
            Obj::new().obj("host", views::host(ctl, h))
        }
        Cmd::RunWhatIf => super::whatif::job_result(j.result.as_deref()?)?,
        _ => {
            let vm = j.vm?;
            match cloud.vm(vm) {
                Some(v) => Obj::new().obj("virtualmachine", views::vm(ctl, v, admin)),
                // Expunged since: what is left to say about it.
                None => Obj::new().obj(
                    "virtualmachine",
                    Obj::new().s("id", vm.0.to_string()).s("state", "Expunging"),
                ),
            }
        }
    })
}

pub fn job_view(ctl: &Controller, j: &Job, admin: bool) -> Obj {
    let account = job_account(ctl, j);
    let mut o = Obj::new()
        .s("jobid", j.id.to_string())
        .opt_s("accountid", account.map(|a| a.0.to_string()))
        .opt_s("userid", j.user.map(|u| u.to_string()))
        .s("cmd", class_name(j.command))
        .i("jobprocstatus", 0)
        .s("jobinstancetype", instance_type(j.command))
        .opt_s("jobinstanceid", instance_of(j).map(|u| u.to_string()))
        .date("created", j.created.0);
    match j.status {
        JobStatus::Pending => o = o.i("jobstatus", 0).i("jobresultcode", 0),
        JobStatus::Succeeded => {
            o = o.i("jobstatus", 1).i("jobresultcode", 0).s("jobresulttype", "object");
            if let Some(r) = result_obj(ctl, j, admin) {
                o = o.obj("jobresult", r);
            }
        }
        JobStatus::Failed => {
            let code = j.error_code.unwrap_or(530);
            let text = j.error.clone().unwrap_or_else(|| "the job failed".into());
            o = o
                .i("jobstatus", 2)
                .i("jobresultcode", i64::from(code))
                .s("jobresulttype", "object")
                .obj(
                    "jobresult",
                    Obj::new().i("errorcode", i64::from(code)).s("errortext", text),
                );
        }
    }
    o.opt_date("completed", j.completed.map(|m| m.0))
}

fn visible(c: &Ctx<'_>, ctl: &Controller, j: &Job) -> bool {
    if c.caller.is_admin() || j.user == Some(c.caller.user) {
        return true;
    }
    job_account(ctl, j).is_some_and(|a| c.caller.owns(&ctl.cloud().inv, a))
}

fn query_async_job_result<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("jobid")?;
        c.api.read(|ctl| {
            let j = ctl
                .job(JobId(id))
                .filter(|j| visible(c, ctl, j))
                .ok_or_else(|| ApiError::param(format!("Unable to find job by id {id}")))?;
            Ok(job_view(ctl, j, c.caller.is_admin()))
        })
    })
}

fn list_async_jobs<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        c.api.read(|ctl| {
            let scope = Scope::from_params(c.caller, ctl, c.p)?;
            let inv = &ctl.cloud().inv;
            let start = c.p.opt_str("startdate").and_then(crate::sign::parse_expires);
            let jobs: Vec<&Job> = ctl
                .jobs()
                .iter()
                .filter(|j| j.user.is_some() || c.caller.is_admin())
                .filter(|j| job_account(ctl, j).is_some_and(|a| scope.covers(inv, a) && c.caller.owns(inv, a)))
                .filter(|j| start.is_none_or(|s| j.created.0 as i64 >= s))
                .collect();
            let (count, page) = views::page(jobs, c.p)?;
            let items = page
                .into_iter()
                .map(|j| job_view(ctl, j, c.caller.is_admin()))
                .collect();
            Ok(render::list_body("asyncjobs", count, items))
        })
    })
}

const JOB_FIELDS: &[&str] = &[
    "accountid",
    "userid",
    "cmd",
    "jobstatus",
    "jobprocstatus",
    "jobresultcode",
    "jobresulttype",
    "jobresult",
    "jobinstancetype",
    "jobinstanceid",
    "created",
    "completed",
    "jobid",
];

pub static COMMANDS: &[Command] = &[
    Command {
        name: "queryAsyncJobResult",
        description: "Retrieves the current status of an asynchronous job.",
        is_async: false,
        min_role: Role::User,
        params: &[req("jobid", Ty::Uuid, "the ID of the asynchronous job")],
        object: "asyncjobs",
        fields: JOB_FIELDS,
        handler: query_async_job_result,
    },
    Command {
        name: "listAsyncJobs",
        description: "Lists all pending asynchronous jobs for the account.",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("account", Ty::Str, "list resources by account"),
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
            p("startdate", Ty::Date, "the start date of the async job"),
        ],
        object: "asyncjobs",
        fields: JOB_FIELDS,
        handler: list_async_jobs,
    },
];
