//! listEvents (the audit trail and async jobs as CloudStack events) and
//! listAlerts (hosts declared Down, HA outcomes, capacity alerts).

use super::access::{ACCOUNT, DOMAINID, ISRECURSIVE, LISTALL, list_scope, listed};
use super::jobs::job_account;
use super::prelude::*;
use stratus_core::controller::directory::UserId;
use stratus_core::controller::{Command as Cmd, Job, JobStatus};

/// CloudStack's event type for a job's command. Jobs whose admin change is
/// already in the audit trail (IP and maintenance) have none here.
fn event_type(c: Cmd) -> Option<&'static str> {
    Some(match c {
        Cmd::DeployVirtualMachine => "VM.CREATE",
        Cmd::StartVirtualMachine | Cmd::HaRestartVirtualMachine => "VM.START",
        Cmd::StopVirtualMachine => "VM.STOP",
        Cmd::RebootVirtualMachine => "VM.REBOOT",
        Cmd::DestroyVirtualMachine => "VM.DESTROY",
        Cmd::RecoverVirtualMachine => "VM.RECOVER",
        Cmd::ExpungeVirtualMachine => "VM.EXPUNGE",
        Cmd::MigrateVirtualMachine => "VM.MIGRATE",
        Cmd::ChangeServiceForVirtualMachine => "VM.UPGRADE",
        Cmd::CreateVolume => "VOLUME.CREATE",
        Cmd::AttachVolume => "VOLUME.ATTACH",
        Cmd::DetachVolume => "VOLUME.DETACH",
        Cmd::DeleteVolume => "VOLUME.DELETE",
        Cmd::CreateSnapshot => "SNAPSHOT.CREATE",
        Cmd::DeleteSnapshot => "SNAPSHOT.DELETE",
        Cmd::AssociateIpAddress
        | Cmd::DisassociateIpAddress
        | Cmd::PrepareHostForMaintenance
        | Cmd::CancelHostMaintenance
        | Cmd::RunWhatIf => return None,
    })
}

struct Ev {
    id: Uuid,
    kind: String,
    level: &'static str,
    state: &'static str,
    description: String,
    account: Option<AccountId>,
    user: Option<UserId>,
    at: u64,
    parent: Option<Uuid>,
    /// Generation order, to keep events of the same millisecond in order.
    seq: usize,
}

/// What a job worked on, for its description.
fn subject(ctl: &Controller, j: &Job) -> String {
    if let Some(vm) = j.vm {
        return format!("VM {}", ctl.vm_label(vm));
    }
    if let Some(v) = j.volume {
        let name = ctl.cloud().volume(v).map(|x| x.name.clone());
        return format!("volume {}", name.unwrap_or_else(|| v.to_string()));
    }
    j.instance.map_or_else(String::new, |i| i.to_string())
}

/// A job as two events: Scheduled when submitted, Completed (INFO, or ERROR
/// when it failed) when it finished. Their ids derive from the job's.
fn job_events(ctl: &Controller, j: &Job, out: &mut Vec<Ev>) {
    let Some(kind) = event_type(j.command) else { return };
    let account = job_account(ctl, j);
    let what = format!("{} of {}", j.command, subject(ctl, j));
    let scheduled = Uuid::from_u128(j.id.0.as_u128() ^ 0x5c4e_d01e);
    out.push(Ev {
        id: scheduled,
        kind: kind.into(),
        level: "INFO",
        state: "Scheduled",
        description: format!("Scheduled async job {}: {what}", j.id),
        account,
        user: j.user,
        at: j.created.0,
        parent: None,
        seq: out.len(),
    });
    let Some(done) = j.completed else { return };
    let (level, description) = match j.status {
        JobStatus::Failed => {
            let why = j.error.as_deref().unwrap_or("").lines().next().unwrap_or("");
            ("ERROR", format!("Error while {what}: {why}"))
        }
        _ => ("INFO", format!("Successfully completed {what}")),
    };
    out.push(Ev {
        id: Uuid::from_u128(j.id.0.as_u128() ^ 0xc0_4d1e7e),
        kind: kind.into(),
        level,
        state: "Completed",
        description,
        account,
        user: j.user,
        at: done.0,
        parent: Some(scheduled),
        seq: out.len(),
    });
}

/// `startdate`/`enddate`: `yyyy-MM-dd`, `yyyy-MM-dd HH:mm:ss` (CloudStack's
/// forms) or an ISO date-time; a bare end date covers its whole day.
fn date_param(c: &Ctx<'_>, name: &str, end: bool) -> Result<Option<u64>, ApiError> {
    let Some(v) = c.p.opt_str(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let v = v.trim();
    let parsed = if v.len() == 10 {
        crate::sign::parse_expires(&format!("{v}T00:00:00Z")).map(|ms| if end { ms + 86_399_999 } else { ms })
    } else if v.len() == 19 && v.as_bytes()[10] == b' ' {
        crate::sign::parse_expires(&format!("{}T{}Z", &v[..10], &v[11..]))
    } else {
        crate::sign::parse_expires(v)
    };
    parsed
        .and_then(|ms| u64::try_from(ms).ok())
        .map(Some)
        .ok_or_else(|| c.p.invalid(name, v))
}

fn list_events<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let kind = c.p.opt_str("type");
        let level = c.p.opt_str("level");
        let start = date_param(c, "startdate", false)?;
        let end = date_param(c, "enddate", true)?;
        let keyword = c.p.opt_str("keyword").map(str::to_lowercase);
        c.api.read(|ctl| {
            let scope = list_scope(c, ctl)?;
            let cloud = ctl.cloud();
            let inv = &cloud.inv;
            let dir = ctl.directory();
            let mut all: Vec<Ev> = dir
                .audit
                .iter()
                .enumerate()
                .map(|(seq, a)| Ev {
                    id: a.id.0,
                    kind: a.kind.clone(),
                    level: "INFO",
                    state: "Completed",
                    description: a.description.clone(),
                    account: a.account,
                    user: a.user,
                    at: a.at.0,
                    parent: None,
                    seq,
                })
                .collect();
            for j in ctl.jobs() {
                job_events(ctl, j, &mut all);
            }
            let mut items: Vec<Ev> = all
                .into_iter()
                // Events of no account (the operator's tools, the system) are the root admin's.
                .filter(|e| match e.account {
                    Some(a) => listed(c, &scope, inv, a),
                    None => match scope {
                        Scope::Everything => c.caller.is_admin(),
                        Scope::Account(a) => c.caller.is_admin() && a == c.caller.account,
                        Scope::Domain { .. } => false,
                    },
                })
                .filter(|e| id.is_none_or(|i| e.id == i))
                .filter(|e| kind.is_none_or(|k| e.kind.eq_ignore_ascii_case(k)))
                .filter(|e| level.is_none_or(|l| e.level.eq_ignore_ascii_case(l)))
                .filter(|e| start.is_none_or(|s| e.at >= s) && end.is_none_or(|x| e.at <= x))
                .filter(|e| {
                    keyword
                        .as_deref()
                        .is_none_or(|k| e.description.to_lowercase().contains(k) || e.kind.to_lowercase().contains(k))
                })
                .collect();
            // Newest first, as CloudStack lists them.
            items.sort_by_key(|e| std::cmp::Reverse((e.at, e.seq)));
            let (count, page) = views::page(items, c.p)?;
            let objs = page
                .into_iter()
                .map(|e| {
                    let acc = e.account.and_then(|a| inv.find_account(a)).map(|a| inv.account(a));
                    let dom = acc.map(|a| inv.domain(a.domain));
                    let username = e.user.and_then(|u| dir.user(u)).map(|u| u.username.clone());
                    Obj::new()
                        .s("id", e.id.to_string())
                        .s("type", e.kind)
                        .s("level", e.level)
                        .s("state", e.state)
                        .s("description", e.description)
                        .date("created", e.at)
                        .opt_s("username", username)
                        .opt_s("account", acc.map(|a| a.name.clone()))
                        .opt_s("domainid", dom.map(|d| d.id.0.to_string()))
                        .opt_s("domain", dom.map(|d| d.name.clone()))
                        .opt_s("parentid", e.parent.map(|p| p.to_string()))
                })
                .collect();
            Ok(render::list_body("event", count, objs))
        })
    })
}

/// CloudStack's alert name of a type number.
fn alert_name(t: u32) -> &'static str {
    match t {
        0 => "ALERT.MEMORY",
        1 => "ALERT.CPU",
        2 => "ALERT.STORAGE",
        3 => "ALERT.STORAGE.ALLOCATED",
        6 => "ALERT.STORAGE.SECONDARY",
        7 => "ALERT.COMPUTE.HOST",
        8 => "ALERT.USERVM",
        25 => "ALERT.STORAGE.LOCAL",
        _ => "ALERT.UNKNOWN",
    }
}

struct Alert {
    id: Uuid,
    kind: u32,
    description: String,
    sent: u64,
}

fn alerts(ctl: &Controller) -> Vec<Alert> {
    let cloud = ctl.cloud();
    let inv = &cloud.inv;
    let host_name = |h: HostId| {
        inv.find_host(h)
            .map_or_else(|| h.to_string(), |i| inv.host(i).name.clone())
    };
    let mut out = Vec::new();
    for (h, at) in ctl.host_downs() {
        out.push(Alert {
            id: crate::ostypes::id_of(&format!("alert:host-down:{h}:{}", at.0)),
            kind: 7,
            description: format!("Host is down, name: {} (id: {h})", host_name(*h)),
            sent: at.0,
        });
    }
    for o in ctl.ha_log() {
        let lost = o.host.map_or_else(|| "its host".to_string(), &host_name);
        let vm = ctl.vm_label(o.vm);
        let description = match o.recovered_at {
            Some(_) => format!("VM {vm} lost with {lost} was restarted by HA ({})", o.reason),
            None => format!("VM {vm} lost with {lost} is not running: {}", o.reason),
        };
        out.push(Alert {
            id: crate::ostypes::id_of(&format!("alert:ha:{}:{}", o.vm, o.lost_at.0)),
            kind: 8,
            description,
            sent: o.recovered_at.unwrap_or(o.lost_at).0,
        });
    }
    // Capacity alerts: the core keeps only which are active, not since when.
    for (code, subject) in cloud.active_alerts() {
        // The core uses capacity type codes; CloudStack's local storage alert is 25.
        let kind = if code == 9 { 25 } else { code };
        let name = inv
            .clusters
            .iter()
            .map(|x| (x.id.to_string(), format!("cluster {}", x.name)))
            .chain(
                inv.pools
                    .iter()
                    .map(|x| (x.id.to_string(), format!("storage pool {}", x.name))),
            )
            .chain(inv.zones.iter().map(|x| (x.id.to_string(), format!("zone {}", x.name))))
            .find(|(id, _)| *id == subject)
            .map_or_else(|| subject.clone(), |(_, n)| n);
        out.push(Alert {
            id: crate::ostypes::id_of(&format!("alert:capacity:{code}:{subject}")),
            kind,
            description: format!(
                "System Alert: {} capacity of {name} is above its notification threshold",
                alert_name(kind).trim_start_matches("ALERT.")
            ),
            sent: ctl.now().0,
        });
    }
    out
}

fn list_alerts<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let kind = c.p.opt_i64("type")?;
        let name = c.p.opt_str("name");
        c.api.read(|ctl| {
            let mut items: Vec<Alert> = alerts(ctl)
                .into_iter()
                .filter(|a| id.is_none_or(|i| a.id == i))
                .filter(|a| kind.is_none_or(|k| i64::from(a.kind) == k))
                .filter(|a| name.is_none_or(|n| alert_name(a.kind).eq_ignore_ascii_case(n)))
                .filter(|a| views::keyword_ok(c.p, &a.description))
                .collect();
            items.sort_by(|a, b| b.sent.cmp(&a.sent).then(b.id.cmp(&a.id)));
            let (count, page) = views::page(items, c.p)?;
            let objs = page
                .into_iter()
                .map(|a| {
                    Obj::new()
                        .s("id", a.id.to_string())
                        .i("type", i64::from(a.kind))
                        .s("name", alert_name(a.kind))
                        .s("description", a.description)
                        .date("sent", a.sent)
                })
                .collect();
            Ok(render::list_body("alert", count, objs))
        })
    })
}

pub static COMMANDS: &[Command] = &[
    Command {
        name: "listEvents",
        description: "A command to list events.",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "the ID of the event"),
            p("type", Ty::Str, "the event type (see event types)"),
            p("level", Ty::Str, "the event level (INFO, WARN, ERROR)"),
            p(
                "startdate",
                Ty::Date,
                "the start date range of the list you want to retrieve",
            ),
            p(
                "enddate",
                Ty::Date,
                "the end date range of the list you want to retrieve",
            ),
            p("duration", Ty::Int, "the duration of the event (ignored)"),
            p("entrytime", Ty::Int, "the time the event was entered (ignored)"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
        ],
        object: "event",
        fields: &[
            "id",
            "type",
            "level",
            "state",
            "description",
            "created",
            "username",
            "account",
            "domainid",
            "domain",
            "parentid",
        ],
        handler: list_events,
    },
    Command {
        name: "listAlerts",
        description: "Lists all alerts.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            p("id", Ty::Uuid, "the ID of the alert"),
            p("type", Ty::Int, "list by alert type"),
            p("name", Ty::Str, "list by alert name"),
        ],
        object: "alert",
        fields: &["id", "type", "name", "description", "sent"],
        handler: list_alerts,
    },
];
