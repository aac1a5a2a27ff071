//! Capacity what-if for root admins: `exportInventory` (the inventory JSON,
//! as `stratus export` prints it) and `runWhatIf` (an async job whose result
//! is `jobresult.whatif`, the report `stratus whatif --format json` prints,
//! and `jobresult.html`, the page `--format html` writes).
//!
//! A what-if runs on a copy of the cloud taken under the read lock, on a
//! blocking thread; its job lives in the API's memory (`WhatIfJobs`), not in
//! the controller's journal (it changes nothing), so it is forgotten by a
//! restart, like a session.

use super::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use stratus_core::controller::directory::UserId;
use stratus_core::whatif::{self, AddHosts, Options};

#[derive(Debug, Clone)]
enum State {
    Pending,
    /// The report as JSON, and as the self-contained HTML page
    /// (`stratus whatif --format html`) for clients that show it.
    Done(Arc<serde_json::Value>, Arc<String>),
    Failed(String),
}

#[derive(Debug, Clone)]
struct WhatIfJob {
    user: UserId,
    created_ms: u64,
    completed_ms: Option<u64>,
    state: State,
}

/// The what-if jobs of this server process.
#[derive(Debug, Default, Clone)]
pub struct WhatIfJobs(Arc<Mutex<BTreeMap<Uuid, WhatIfJob>>>);

impl WhatIfJobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Uuid, WhatIfJob>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn finish(&self, id: Uuid, state: State) {
        if let Some(j) = self.lock().get_mut(&id) {
            j.state = state;
            j.completed_ms = Some(now_ms());
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// queryAsyncJobResult for a what-if job (root admins only), if `id` is one.
pub fn job_view(c: &Ctx<'_>, id: Uuid) -> Option<Obj> {
    if !c.caller.is_admin() {
        return None;
    }
    let j = c.api.whatif_jobs.lock().get(&id).cloned()?;
    let mut o = Obj::new()
        .s("jobid", id.to_string())
        .s("userid", j.user.to_string())
        .s("cmd", "org.apache.cloudstack.api.command.admin.capacity.RunWhatIfCmd")
        .i("jobprocstatus", 0)
        .date("created", j.created_ms);
    o = match j.state {
        State::Pending => o.i("jobstatus", 0).i("jobresultcode", 0),
        State::Done(v, html) => o
            .i("jobstatus", 1)
            .i("jobresultcode", 0)
            .s("jobresulttype", "object")
            .obj(
                "jobresult",
                Obj::new().val("whatif", render::Val::Json(v)).s("html", html.as_str()),
            ),
        State::Failed(text) => o
            .i("jobstatus", 2)
            .i("jobresultcode", 530)
            .s("jobresulttype", "object")
            .obj("jobresult", Obj::new().i("errorcode", 530).s("errortext", text)),
    };
    Some(o.opt_date("completed", j.completed_ms))
}

fn export_inventory<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let v = c
            .api
            .read(|ctl| whatif::export::to_value(ctl.cloud()))
            .map_err(ApiError::internal)?;
        Ok(Obj::new().val("inventory", render::Val::Json(Arc::new(v))))
    })
}

fn uuids(c: &Ctx<'_>, name: &str) -> Result<Vec<String>, ApiError> {
    Ok(c.p
        .opt_uuid_list(name)?
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.to_string())
        .collect())
}

fn options(c: &Ctx<'_>) -> Result<Options, ApiError> {
    let mut o = Options::new();
    o.fail_hosts = uuids(c, "failhostids")?;
    o.drain_hosts = uuids(c, "drainhostids")?;
    o.remove_hosts = uuids(c, "removehostids")?;
    o.remove_clusters = uuids(c, "removeclusterids")?;
    o.fail_clusters =
        c.p.opt_uuid("failclusterid")?
            .map(|u| u.to_string())
            .into_iter()
            .collect();
    o.fail_pods = c.p.opt_uuid("failpodid")?.map(|u| u.to_string()).into_iter().collect();
    for a in c.p.opt_list("addhosts").unwrap_or_default() {
        o.add_hosts.push(AddHosts::parse(a).map_err(crate::api::core_error)?);
    }
    let grow = c.p.opt_str("grow").map(|g| {
        g.parse::<f64>()
            .map_err(|_| ApiError::param(format!("Invalid parameter grow: '{g}' is not a percentage")))
    });
    let months = c.p.opt_i64("months")?;
    match (grow, months) {
        (Some(g), Some(m)) => {
            let m = u32::try_from(m).map_err(|_| ApiError::param("Invalid parameter months: must be 0..600"))?;
            o.grow = Some((g?, m));
        }
        (None, None) => {}
        _ => return Err(ApiError::param("Invalid parameter grow: grow and months go together")),
    }
    for entry in c.p.map("settings")? {
        let (Some(name), Some(value)) = (entry.get("name"), entry.get("value")) else {
            return Err(ApiError::param(
                "Invalid parameter settings: each entry needs name and value",
            ));
        };
        o.settings.push((name.clone(), value.clone()));
    }
    if let Some(b) = c.p.opt_i64("exactbudget")? {
        o.exact_budget = u64::try_from(b)
            .map_err(|_| ApiError::param("Invalid parameter exactbudget: must be >= 0"))?
            .min(100_000);
    }
    Ok(o)
}

fn run_what_if<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let opts = options(c)?;
        // Bad input is refused now, with nothing started.
        let mut cloud = c
            .api
            .read(|ctl| whatif::validate(ctl.cloud(), &opts).map(|_| ctl.cloud().clone()))
            .map_err(crate::api::core_error)?;
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|e| ApiError::internal(e.to_string()))?;
        let id = uuid::Builder::from_random_bytes(b).into_uuid();
        let jobs = c.api.whatif_jobs.clone();
        jobs.lock().insert(
            id,
            WhatIfJob {
                user: c.caller.user,
                created_ms: now_ms(),
                completed_ms: None,
                state: State::Pending,
            },
        );
        tracing::info!(job = %id, "whatif.start");
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let state = match whatif::run(&mut cloud, &opts, &mut |_, _, _| {}) {
                Ok(r) => match serde_json::to_value(&r) {
                    Ok(v) => State::Done(Arc::new(v), Arc::new(crate::whatif_html::render(&r))),
                    Err(e) => State::Failed(e.to_string()),
                },
                Err(e) => State::Failed(e.to_string()),
            };
            tracing::info!(job = %id, ms = started.elapsed().as_millis() as u64, "whatif.done");
            jobs.finish(id, state);
        });
        Ok(render::async_body(&id.to_string()))
    })
}

pub static COMMANDS: &[Command] = &[
    Command {
        name: "exportInventory",
        description: "Exports the whole inventory (zones to VMs, settings, capacity) as JSON for capacity what-if analysis.",
        is_async: false,
        min_role: Role::Admin,
        params: &[],
        object: "inventory",
        fields: &["format", "cloud"],
        handler: export_inventory,
    },
    Command {
        name: "runWhatIf",
        description: "Capacity what-if: fails or drains hosts, adds hosts, changes settings, projects growth; the report is the job result 'whatif'.",
        is_async: true,
        min_role: Role::Admin,
        params: &[
            p("failhostids", Ty::List, "hosts to fail (comma-separated ids)"),
            p("failclusterid", Ty::Uuid, "fail every host of this cluster"),
            p("failpodid", Ty::Uuid, "fail every host of this pod"),
            p(
                "drainhostids",
                Ty::List,
                "hosts to put into maintenance (comma-separated ids)",
            ),
            p(
                "removehostids",
                Ty::List,
                "hosts to remove (decommission: VMs migrated by plan, then the capacity is gone; comma-separated ids)",
            ),
            p(
                "removeclusterids",
                Ty::List,
                "clusters to remove with all their hosts (comma-separated ids)",
            ),
            p(
                "addhosts",
                Ty::List,
                "hosts to add: CLUSTER:N:SHAPE, SHAPE = CORESxMHZ/MEMG or a host name (comma-separated)",
            ),
            p("grow", Ty::Str, "workload growth in percent per month (with months)"),
            p("months", Ty::Int, "months of growth to project (with grow)"),
            p(
                "settings",
                Ty::Map,
                "global settings to change first: settings[0].name=...&settings[0].value=...",
            ),
            p(
                "exactbudget",
                Ty::Long,
                "most host subsets simulated per cluster and k for failures tolerated (default 256)",
            ),
        ],
        object: "whatif",
        fields: &[
            "schema",
            "inventory",
            "hypotheticals",
            "replacement",
            "clusters",
            "n_minus_1",
            "fit_now",
            "growth",
        ],
        handler: run_what_if,
    },
];
