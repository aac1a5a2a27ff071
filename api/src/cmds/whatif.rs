//! Capacity what-if for root admins: `exportInventory` (the inventory JSON,
//! as `stratus export` prints it) and `runWhatIf` (an async job whose result
//! is `jobresult.whatif`, the report `stratus whatif --format json` prints,
//! and `jobresult.html`, the page `--format html` writes).
//!
//! A what-if runs on a copy of the cloud taken under the read lock, on a
//! blocking thread. Its job is an ordinary async job in the controller's job
//! table (`BeginExternalJob` / `EndExternalJob` admin changes, journaled like
//! every change): listAsyncJobs and queryAsyncJobResult show it, before and
//! after a restart. A restart while it runs fails it ("run it again").

use super::prelude::*;
use std::sync::Arc;
use stratus_core::controller::Command as Cmd;
use stratus_core::controller::admin::AdminChange;
use stratus_core::controller::input::{Input, Reply};
use stratus_core::whatif::{self, AddHosts, Options, Report};

/// `jobresult` of a finished what-if: the report, and the HTML page made
/// from it (rendered when asked, not stored twice).
pub fn job_result(json: &str) -> Option<Obj> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let report: Report = serde_json::from_value(v.clone()).ok()?;
    let html = crate::whatif_html::render(&report);
    Some(Obj::new().val("whatif", render::Val::Json(Arc::new(v))).s("html", html))
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
        let started = c
            .api
            .admin(
                Some(c.caller),
                AdminChange::BeginExternalJob {
                    command: Cmd::RunWhatIf,
                },
            )
            .await?;
        let job = started.job.ok_or_else(|| ApiError::internal("no job recorded"))?;
        let gw = c.api.gw.clone();
        tracing::info!(job = %job.0, "whatif.start");
        tokio::spawn(async move {
            let t0 = std::time::Instant::now();
            let outcome = tokio::task::spawn_blocking(move || {
                whatif::run(&mut cloud, &opts, &mut |_, _, _| {})
                    .map_err(|e| e.to_string())
                    .and_then(|r| serde_json::to_string(&r).map_err(|e| e.to_string()))
            })
            .await
            .unwrap_or_else(|e| Err(format!("the what-if stopped: {e}")));
            let ok = outcome.is_ok();
            let end = Input::Admin {
                change: AdminChange::EndExternalJob { job, outcome },
                by: None,
            };
            match gw.input(end).await {
                Ok(Reply::Created(Ok(_))) => {
                    tracing::info!(job = %job.0, ok, ms = t0.elapsed().as_millis() as u64, "whatif.done");
                }
                other => tracing::warn!(job = %job.0, ?other, "whatif.done not recorded"),
            }
        });
        Ok(render::async_body(&job.0.to_string()))
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
