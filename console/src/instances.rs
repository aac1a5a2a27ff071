//! Instances: list with filters and paging, deploy (zone, offering, template,
//! network), start/stop/reboot/destroy/recover, and migrate with the
//! allocator's candidate list and reasons (findHostsForMigration).

use crate::client::{Json, Session};
use crate::jobs::start_job;
use crate::view::{Cell, Field, Form, Group, Pager, Section, Table, link_button, post_button, state, text};
use crate::{Fields, page, q, refused, session};
use axum::Router;
use axum::extract::{Form as FormData, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use stratus_api::Api;

pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/client/instances", get(list))
        .route("/client/instances/deploy", get(deploy_form).post(deploy))
        .route("/client/vm/{id}", get(detail))
        .route("/client/vm/{id}/migrate", get(migrate_form))
        .route("/client/vm/{id}/{action}", post(action))
}

pub const PAGE_SIZE: usize = 20;

/// Previous/next links keeping the filters.
pub(crate) fn pager(base: &str, keep: &[(&str, &str)], page: &str, size: usize, count: usize) -> Option<Pager> {
    let pages = count.div_ceil(size).max(1);
    let page = page.parse::<usize>().unwrap_or(1).clamp(1, pages);
    let mut qs = String::new();
    for (k, v) in keep.iter().filter(|(_, v)| !v.is_empty()) {
        qs.push_str(&format!("{k}={}&", q(v)));
    }
    let url = |p: usize| format!("{base}?{qs}page={p}");
    Some(Pager {
        page,
        pages,
        count,
        prev: (page > 1).then(|| url(page - 1)),
        next: (page < pages).then(|| url(page + 1)),
    })
}

/// The instances table (also what `stratus bench console` times).
pub async fn instances_page(s: &Session, f: &HashMap<String, String>) -> Response {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (keyword, st, zone, pg) = (get("keyword"), get("state"), get("zoneid"), get("page"));
    let pg = if pg.is_empty() { "1".to_string() } else { pg };
    let size = PAGE_SIZE.to_string();
    let v = match s
        .get(&[
            ("command", "listVirtualMachines"),
            ("listall", "true"),
            ("keyword", &keyword),
            ("state", &st),
            ("zoneid", &zone),
            ("page", &pg),
            ("pagesize", &size),
        ])
        .await
    {
        Ok(v) => v,
        Err(e) => return refused(s, "/client/instances", "Instances", e),
    };
    let zones = s.get(&[("command", "listZones")]).await.unwrap_or_default();
    let mut headers = vec!["Name", "State", "Zone", "Offering", "IP address", "Account"];
    if s.admin {
        headers.insert(3, "Host");
    }
    headers.push("Actions");
    let mut t = Table::new("Instances", &headers);
    for vm in v.list("virtualmachine") {
        let id = vm.s("id");
        let ip = vm.list("nic").first().map(|n| n.s("ipaddress")).unwrap_or_default();
        let mut row = vec![
            Cell::Link(vm.s("name"), format!("/client/vm/{id}")),
            state(&vm.s("state")),
            text(vm.s("zonename")),
            text(vm.s("serviceofferingname")),
            text(ip),
            text(vm.s("account")),
        ];
        if s.admin {
            row.insert(3, text(vm.s("hostname")));
        }
        row.push(Cell::Actions(vm_actions(s, &vm)));
        t.rows.push(row);
    }
    t.empty = "No instances match.".into();
    t.filter_action = "/client/instances".into();
    let mut zone_opts = vec![(String::new(), "all zones".to_string())];
    zone_opts.extend(zones.list("zone").iter().map(|z| (z.s("id"), z.s("name"))));
    let states = [
        "",
        "Running",
        "Stopped",
        "Starting",
        "Stopping",
        "Migrating",
        "Error",
        "Destroyed",
    ];
    t.filters = vec![
        Field::text("keyword", "Search by name", false).value(keyword.clone()),
        Field::select(
            "state",
            "State",
            states
                .iter()
                .map(|x| (x.to_string(), if x.is_empty() { "any".into() } else { x.to_string() }))
                .collect(),
        )
        .value(st.clone()),
        Field::select("zoneid", "Zone", zone_opts).value(zone.clone()),
    ];
    t.pager = pager(
        "/client/instances",
        &[("keyword", &keyword), ("state", &st), ("zoneid", &zone)],
        &pg,
        PAGE_SIZE,
        v.n("count") as usize,
    );
    let sections = vec![
        Section::Links(vec![crate::view::link(
            "Deploy an instance",
            "/client/instances/deploy",
        )]),
        Section::Table(t),
    ];
    page(s, "/client/instances", "Instances", sections).into_response()
}

fn vm_actions(s: &Session, vm: &Value) -> Vec<crate::view::Button> {
    let id = vm.s("id");
    let k = &s.key;
    let mut b = Vec::new();
    let act = |a: &str| format!("/client/vm/{id}/{a}");
    match vm.s("state").as_str() {
        "Running" => {
            b.push(post_button("Stop", act("stop"), k, "secondary"));
            b.push(post_button("Reboot", act("reboot"), k, "secondary"));
            if s.admin {
                b.push(link_button("Migrate", format!("/client/vm/{id}/migrate")));
            }
            b.push(post_button("Destroy", act("destroy"), k, "danger"));
        }
        "Stopped" => {
            b.push(post_button("Start", act("start"), k, ""));
            b.push(post_button("Destroy", act("destroy"), k, "danger"));
        }
        "Destroyed" => b.push(post_button("Recover", act("recover"), k, "")),
        "Error" => b.push(post_button("Destroy", act("destroy"), k, "danger")),
        _ => {}
    }
    b
}

async fn list(State(api): State<Arc<Api>>, headers: HeaderMap, Query(f): Query<HashMap<String, String>>) -> Response {
    match session(&api, &headers) {
        Ok(s) => instances_page(&s, &f).await,
        Err(r) => r,
    }
}

async fn detail(State(api): State<Arc<Api>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let v = match s
        .get(&[("command", "listVirtualMachines"), ("id", &id), ("listall", "true")])
        .await
    {
        Ok(v) => v,
        Err(e) => return refused(&s, "/client/instances", "Instance", e),
    };
    let Some(vm) = v.list("virtualmachine").into_iter().next() else {
        let e = crate::client::ApiErr {
            code: 431,
            text: format!("Unable to find virtual machine by id {id}"),
        };
        return refused(&s, "/client/instances", "Instance", e);
    };
    let mut kv = vec![
        ("State".to_string(), vm.s("state")),
        ("Zone".into(), vm.s("zonename")),
        ("Service offering".into(), vm.s("serviceofferingname")),
        (
            "CPU".into(),
            format!("{} × {} MHz", vm.s("cpunumber"), vm.s("cpuspeed")),
        ),
        ("Memory".into(), format!("{} MiB", vm.s("memory"))),
        ("Template".into(), vm.s("templatename")),
        ("Account".into(), vm.s("account")),
        ("HA enabled".into(), vm.s("haenable")),
        ("Created".into(), vm.s("created")),
    ];
    if s.admin {
        kv.insert(1, ("Host".into(), vm.s("hostname")));
        kv.push(("Instance name".into(), vm.s("instancename")));
    }
    for n in vm.list("nic") {
        kv.push((
            format!("NIC on {}", n.s("networkname")),
            format!("{} ({})", n.s("ipaddress"), n.s("macaddress")),
        ));
    }
    let mut t = Table::new("Actions", &["Available actions"]);
    t.rows.push(vec![Cell::Actions(vm_actions(&s, &vm))]);
    let sections = vec![Section::Kv(kv), Section::Table(t)];
    page(&s, "/client/instances", format!("Instance {}", vm.s("name")), sections).into_response()
}

async fn action(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    FormData(f): FormData<Fields>,
) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let host = f.get("hostid").cloned().unwrap_or_default();
    let pairs: Vec<(&str, &str)> = match action.as_str() {
        "start" => vec![("command", "startVirtualMachine"), ("id", &id)],
        "stop" => vec![("command", "stopVirtualMachine"), ("id", &id)],
        "reboot" => vec![("command", "rebootVirtualMachine"), ("id", &id)],
        "destroy" => vec![("command", "destroyVirtualMachine"), ("id", &id)],
        "migrate" => vec![
            ("command", "migrateVirtualMachine"),
            ("virtualmachineid", &id),
            ("hostid", &host),
        ],
        "recover" => {
            // recoverVirtualMachine is synchronous: back to the instance.
            let key = f.get("sessionkey").map(String::as_str).unwrap_or("");
            return match s.post(key, &[("command", "recoverVirtualMachine"), ("id", &id)]).await {
                Ok(_) => axum::response::Redirect::to(&format!("/client/vm/{id}")).into_response(),
                Err(e) => refused(&s, "/client/instances", "Recover instance", e),
            };
        }
        _ => return axum::http::StatusCode::NOT_FOUND.into_response(),
    };
    start_job(&s, &f, &pairs, "Instance action refused").await
}

async fn migrate_form(State(api): State<Arc<Api>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let v = match s
        .get(&[("command", "findHostsForMigration"), ("virtualmachineid", &id)])
        .await
    {
        Ok(v) => v,
        Err(e) => return refused(&s, "/client/instances", "Migrate instance", e),
    };
    let mut t = Table::new(
        "Candidate hosts (the allocator's verdict for each)",
        &[
            "Host",
            "Cluster",
            "Status",
            "CPU allocated",
            "Memory allocated",
            "Suitable",
            "Why not",
            "Action",
        ],
    );
    for h in v.list("host") {
        let ok = h.get("suitableformigration").and_then(Value::as_bool).unwrap_or(false);
        let mut btn = post_button("Migrate here", format!("/client/vm/{id}/migrate"), &s.key, "");
        btn.hidden.push(("hostid".into(), h.s("id")));
        t.rows.push(vec![
            Cell::Link(h.s("name"), format!("/client/hosts/{}", h.s("id"))),
            text(h.s("clustername")),
            state(&h.s("state")),
            text(h.s("cpuallocated")),
            text(crate::bytes(h.n("memoryallocated"))),
            state(if ok { "Suitable" } else { "Not suitable" }),
            text(h.s("notsuitablereason")),
            Cell::Actions(if ok { vec![btn] } else { Vec::new() }),
        ]);
    }
    t.empty = "No other host in this zone.".into();
    let mut auto = post_button(
        "Let the allocator choose",
        format!("/client/vm/{id}/migrate"),
        &s.key,
        "",
    );
    auto.hidden.push(("hostid".into(), String::new()));
    let mut a = Table::new("Or", &["Automatic placement"]);
    a.rows.push(vec![Cell::Actions(vec![auto])]);
    page(
        &s,
        "/client/instances",
        "Migrate instance",
        vec![Section::Table(t), Section::Table(a)],
    )
    .into_response()
}

async fn deploy_form(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    deploy_page(&s, &Fields::new(), None, None).await
}

async fn deploy_page(
    s: &Session,
    f: &Fields,
    field_error: Option<(&str, String)>,
    flash: Option<crate::client::ApiErr>,
) -> Response {
    let opts = |v: &Value, list: &str, extra: &dyn Fn(&Value) -> String| -> Vec<(String, String)> {
        v.list(list)
            .iter()
            .map(|x| (x.s("id"), format!("{}{}", x.s("name"), extra(x))))
            .collect()
    };
    let zones = s
        .get(&[("command", "listZones"), ("available", "true")])
        .await
        .unwrap_or_default();
    let offerings = s.get(&[("command", "listServiceOfferings")]).await.unwrap_or_default();
    let templates = s
        .get(&[("command", "listTemplates"), ("templatefilter", "executable")])
        .await
        .unwrap_or_default();
    let networks = s.get(&[("command", "listNetworks")]).await.unwrap_or_default();
    let mut net_opts = vec![(
        String::new(),
        "the account's default network (created if missing)".to_string(),
    )];
    net_opts.extend(opts(&networks, "network", &|n| format!(" ({})", n.s("cidr"))));
    let val = |k: &str| f.get(k).cloned().unwrap_or_default();
    let mut fields = vec![
        Field::text("name", "Name", false)
            .value(val("name"))
            .help("Letters, digits and hyphens; empty for a generated name"),
        Field::select("zoneid", "Zone", opts(&zones, "zone", &|_| String::new())).value(val("zoneid")),
        Field::select(
            "serviceofferingid",
            "Compute offering",
            opts(&offerings, "serviceoffering", &|o| {
                format!(
                    " ({} × {} MHz, {} MiB)",
                    o.s("cpunumber"),
                    o.s("cpuspeed"),
                    o.s("memory")
                )
            }),
        )
        .value(val("serviceofferingid")),
        Field::select(
            "templateid",
            "Template",
            opts(&templates, "template", &|t| {
                if t.get("isready").and_then(Value::as_bool) == Some(false) {
                    " (not ready)".into()
                } else {
                    String::new()
                }
            }),
        )
        .value(val("templateid")),
        Field::select("networkids", "Network", net_opts).value(val("networkids")),
    ];
    if let Some((name, e)) = field_error {
        for x in fields.iter_mut().filter(|x| x.name == name) {
            x.error = Some(e.clone());
        }
    }
    let form = Form {
        id: "deploy".into(),
        action: "/client/instances/deploy".into(),
        sessionkey: s.key.clone(),
        hidden: Vec::new(),
        groups: vec![Group {
            legend: "New instance".into(),
            fields,
        }],
        submit: "Deploy".into(),
    };
    let mut p = page(s, "/client/instances", "Deploy an instance", vec![Section::Form(form)]);
    if let Some(e) = flash {
        p.flashes.push(crate::error_flash(&e));
    }
    p.into_response()
}

async fn deploy(State(api): State<Arc<Api>>, headers: HeaderMap, FormData(f): FormData<Fields>) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let name = get("name");
    if !name.is_empty() && !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        let e = "only letters, digits and hyphens".to_string();
        return deploy_page(&s, &f, Some(("name", e)), None).await;
    }
    for (k, label) in [
        ("zoneid", "a zone"),
        ("serviceofferingid", "an offering"),
        ("templateid", "a template"),
    ] {
        if get(k).is_empty() {
            return deploy_page(&s, &f, Some((k, format!("choose {label}"))), None).await;
        }
    }
    let (z, so, t, n) = (
        get("zoneid"),
        get("serviceofferingid"),
        get("templateid"),
        get("networkids"),
    );
    let pairs = [
        ("command", "deployVirtualMachine"),
        ("zoneid", z.as_str()),
        ("serviceofferingid", so.as_str()),
        ("templateid", t.as_str()),
        ("networkids", n.as_str()),
        ("name", name.as_str()),
        ("displayname", name.as_str()),
    ];
    let key = get("sessionkey");
    match s.post(&key, &pairs).await {
        Ok(v) => axum::response::Redirect::to(&format!("/client/jobs/{}", v.s("jobid"))).into_response(),
        Err(e) if e.session_gone() => axum::response::Redirect::to("/client/login").into_response(),
        Err(e) => deploy_page(&s, &f, None, Some(e)).await,
    }
}
