//! Offerings, templates and ISOs (register by URL, readiness), accounts and
//! users (API keys), global settings with their scope.

use crate::client::{ApiErr, Json, Session};
use crate::view::{Cell, Field, FieldKind, Flash, Form, Group, InlineForm, Section, Table, post_button, state, text};
use crate::{Fields, bytes, page, refused, session};
use axum::Router;
use axum::extract::{Form as FormData, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use stratus_api::Api;

pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/client/offerings", get(offerings_get).post(offerings_post))
        .route("/client/templates", get(templates_get).post(templates_post))
        .route("/client/accounts", get(accounts_get).post(accounts_post))
        .route("/client/users/{id}/keys", post(user_keys))
        .route("/client/settings", get(settings_get).post(settings_post))
}

macro_rules! sess {
    ($api:expr, $headers:expr) => {
        match session(&$api, &$headers) {
            Ok(s) => s,
            Err(r) => return r,
        }
    };
}

fn form(s: &Session, id: &str, action: &str, legend: &str, fields: Vec<Field>, submit: &str) -> Section {
    Section::Form(Form {
        id: id.into(),
        action: action.into(),
        sessionkey: s.key.clone(),
        hidden: Vec::new(),
        groups: vec![Group {
            legend: legend.into(),
            fields,
        }],
        submit: submit.into(),
    })
}

/// Sends a form's command; on success back to `back`, else the page again
/// with CloudStack's error text on top.
async fn submit(s: &Session, f: &Fields, pairs: &[(&str, &str)]) -> Result<Value, ApiErr> {
    let key = f.get("sessionkey").map(String::as_str).unwrap_or("");
    s.post(key, pairs).await
}

fn with_error(mut r: Response, e: Option<ApiErr>) -> Response {
    if e.is_some() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

// ---------- offerings ----------

async fn offerings_get(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let s = sess!(api, headers);
    offerings_page(&s, &Fields::new(), None).await
}

async fn offerings_page(s: &Session, f: &Fields, err: Option<ApiErr>) -> Response {
    let so = match s.get(&[("command", "listServiceOfferings")]).await {
        Ok(v) => v,
        Err(e) => return refused(s, "/client/offerings", "Offerings", e),
    };
    let mut t = Table::new(
        "Compute offerings",
        &["Name", "CPU", "Memory", "HA", "Host tags", "Planner"],
    );
    for o in so.list("serviceoffering") {
        t.rows.push(vec![
            text(o.s("name")),
            text(format!("{} × {} MHz", o.s("cpunumber"), o.s("cpuspeed"))),
            text(format!("{} MiB", o.s("memory"))),
            text(o.s("offerha")),
            text(o.s("hosttags")),
            text(o.s("deploymentplanner")),
        ]);
    }
    let dk = s.get(&[("command", "listDiskOfferings")]).await.unwrap_or_default();
    let mut d = Table::new("Disk offerings", &["Name", "Size", "Storage type", "Custom size"]);
    for o in dk.list("diskoffering") {
        d.rows.push(vec![
            text(o.s("name")),
            text(format!("{} GiB", o.s("disksize"))),
            text(o.s("storagetype")),
            text(o.s("iscustomized")),
        ]);
    }
    let mut sections = vec![Section::Table(t), Section::Table(d)];
    if s.admin {
        let v = |k: &str| f.get(k).cloned().unwrap_or_default();
        sections.push(form(
            s,
            "offering",
            "/client/offerings",
            "Add a compute offering",
            vec![
                Field::text("name", "Name", true).value(v("name")),
                Field::text("cpunumber", "CPU cores", true).value(v("cpunumber")),
                Field::text("cpuspeed", "CPU speed (MHz)", true).value(v("cpuspeed")),
                Field::text("memory", "Memory (MiB)", true).value(v("memory")),
                Field {
                    kind: FieldKind::Checkbox,
                    ..Field::text("offerha", "Offer HA", false).value(v("offerha"))
                },
            ],
            "Add offering",
        ));
    }
    let mut p = page(s, "/client/offerings", "Offerings", sections);
    if let Some(e) = &err {
        p.flashes.push(crate::error_flash(e));
    }
    with_error(p.into_response(), err)
}

async fn offerings_post(State(api): State<Arc<Api>>, headers: HeaderMap, FormData(f): FormData<Fields>) -> Response {
    let s = sess!(api, headers);
    let v = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (name, cpu, speed, mem, ha) = (v("name"), v("cpunumber"), v("cpuspeed"), v("memory"), v("offerha"));
    let pairs = [
        ("command", "createServiceOffering"),
        ("name", name.as_str()),
        ("displaytext", name.as_str()),
        ("cpunumber", cpu.as_str()),
        ("cpuspeed", speed.as_str()),
        ("memory", mem.as_str()),
        ("offerha", ha.as_str()),
    ];
    match submit(&s, &f, &pairs).await {
        Ok(_) => Redirect::to("/client/offerings").into_response(),
        Err(e) => offerings_page(&s, &f, Some(e)).await,
    }
}

// ---------- templates and ISOs ----------

async fn templates_get(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let s = sess!(api, headers);
    templates_page(&s, &Fields::new(), None).await
}

async fn templates_page(s: &Session, f: &Fields, err: Option<ApiErr>) -> Response {
    let filter = if s.admin { "all" } else { "executable" };
    let tv = match s.get(&[("command", "listTemplates"), ("templatefilter", filter)]).await {
        Ok(v) => v,
        Err(e) => return refused(s, "/client/templates", "Templates & ISOs", e),
    };
    let mut t = Table::new(
        "Templates",
        &["Name", "Zone", "Format", "Hypervisor", "Size", "Ready", "Status"],
    );
    for x in tv.list("template") {
        let ready = x.get("isready").and_then(Value::as_bool).unwrap_or(false);
        t.rows.push(vec![
            text(x.s("name")),
            text(x.s("zonename")),
            text(x.s("format")),
            text(x.s("hypervisor")),
            text(bytes(x.n("size"))),
            state(if ready { "Ready" } else { "Not ready" }),
            text(x.s("status")),
        ]);
    }
    let iv = s
        .get(&[("command", "listIsos"), ("isofilter", filter)])
        .await
        .unwrap_or_default();
    let mut i = Table::new("ISOs", &["Name", "Zone", "Bootable", "Ready", "Status"]);
    for x in iv.list("iso") {
        let ready = x.get("isready").and_then(Value::as_bool).unwrap_or(false);
        i.rows.push(vec![
            text(x.s("name")),
            text(x.s("zonename")),
            text(x.s("bootable")),
            state(if ready { "Ready" } else { "Not ready" }),
            text(x.s("status")),
        ]);
    }
    let mut sections = vec![Section::Table(t), Section::Table(i)];
    if s.admin {
        let zones = s.get(&[("command", "listZones")]).await.unwrap_or_default();
        let mut zone_opts = vec![("-1".to_string(), "all zones".to_string())];
        zone_opts.extend(zones.list("zone").iter().map(|z| (z.s("id"), z.s("name"))));
        let os = s.get(&[("command", "listOsTypes")]).await.unwrap_or_default();
        let os_opts: Vec<(String, String)> = os
            .list("ostype")
            .iter()
            .map(|o| (o.s("id"), o.s("description")))
            .collect();
        let v = |k: &str| f.get(k).cloned().unwrap_or_default();
        let kinds = vec![
            ("template".to_string(), "Template".to_string()),
            ("iso".to_string(), "ISO".to_string()),
        ];
        let formats = ["QCOW2", "RAW", "VHD", "OVA"]
            .iter()
            .map(|x| (x.to_string(), x.to_string()))
            .collect();
        let hvs = ["Simulator", "KVM"]
            .iter()
            .map(|x| (x.to_string(), x.to_string()))
            .collect();
        sections.push(form(
            s,
            "register",
            "/client/templates",
            "Register a template or ISO from a URL",
            vec![
                Field::select("kind", "Kind", kinds).value(v("kind")),
                Field::text("name", "Name", true).value(v("name")),
                Field::text("url", "URL", true)
                    .value(v("url"))
                    .help("http(s):// URL of the image"),
                Field::select("zoneid", "Zone", zone_opts).value(v("zoneid")),
                Field::select("format", "Format (templates)", formats).value(v("format")),
                Field::select("hypervisor", "Hypervisor (templates)", hvs).value(v("hypervisor")),
                Field::select("ostypeid", "OS type", os_opts).value(v("ostypeid")),
            ],
            "Register",
        ));
    }
    let mut p = page(s, "/client/templates", "Templates & ISOs", sections);
    if let Some(e) = &err {
        p.flashes.push(crate::error_flash(e));
    }
    with_error(p.into_response(), err)
}

async fn templates_post(State(api): State<Arc<Api>>, headers: HeaderMap, FormData(f): FormData<Fields>) -> Response {
    let s = sess!(api, headers);
    let v = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (name, url, zone, format, hv, os) = (
        v("name"),
        v("url"),
        v("zoneid"),
        v("format"),
        v("hypervisor"),
        v("ostypeid"),
    );
    let pairs: Vec<(&str, &str)> = if v("kind") == "iso" {
        vec![
            ("command", "registerIso"),
            ("name", &name),
            ("displaytext", &name),
            ("url", &url),
            ("zoneid", &zone),
            ("ostypeid", &os),
        ]
    } else {
        vec![
            ("command", "registerTemplate"),
            ("name", &name),
            ("displaytext", &name),
            ("url", &url),
            ("zoneid", &zone),
            ("format", &format),
            ("hypervisor", &hv),
            ("ostypeid", &os),
        ]
    };
    match submit(&s, &f, &pairs).await {
        Ok(_) => Redirect::to("/client/templates").into_response(),
        Err(e) => templates_page(&s, &f, Some(e)).await,
    }
}

// ---------- accounts and users ----------

async fn accounts_get(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let s = sess!(api, headers);
    accounts_page(&s, &Fields::new(), None, Vec::new()).await
}

async fn accounts_page(s: &Session, f: &Fields, err: Option<ApiErr>, extra: Vec<Section>) -> Response {
    let mut sections = extra;
    if s.admin {
        let a = match s.get(&[("command", "listAccounts"), ("listall", "true")]).await {
            Ok(v) => v,
            Err(e) => return refused(s, "/client/accounts", "Accounts & users", e),
        };
        let mut t = Table::new("Accounts", &["Account", "Role", "Domain", "State", "VMs", "Running"]);
        for x in a.list("account") {
            t.rows.push(vec![
                text(x.s("name")),
                text(x.s("roletype")),
                text(x.s("domain")),
                state(&x.s("state")),
                text(x.s("vmtotal")),
                text(x.s("vmrunning")),
            ]);
        }
        sections.push(Section::Table(t));
    }
    let users = s
        .get(&[("command", "listUsers"), ("listall", "true")])
        .await
        .unwrap_or_default();
    let mut u = Table::new("Users", &["Username", "Account", "Role", "State", "API key", "Keys"]);
    for x in users.list("user") {
        u.rows.push(vec![
            text(x.s("username")),
            text(x.s("account")),
            text(x.s("roletype")),
            state(&x.s("state")),
            text(if x.s("apikey").is_empty() {
                "none".into()
            } else {
                x.s("apikey")
            }),
            Cell::Actions(vec![post_button(
                "Generate new keys",
                format!("/client/users/{}/keys", x.s("id")),
                &s.key,
                "secondary",
            )]),
        ]);
    }
    sections.push(Section::Table(u));
    if s.admin {
        let v = |k: &str| f.get(k).cloned().unwrap_or_default();
        let roles = [
            ("User", "User"),
            ("DomainAdmin", "Domain admin"),
            ("Admin", "Root admin"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        sections.push(form(
            s,
            "account",
            "/client/accounts",
            "Add an account",
            vec![
                Field::text("username", "Username", true).value(v("username")),
                Field::password("password", "Password"),
                Field::text("email", "Email", true).value(v("email")),
                Field::text("firstname", "First name", true).value(v("firstname")),
                Field::text("lastname", "Last name", true).value(v("lastname")),
                Field::text("account", "Account name", false)
                    .value(v("account"))
                    .help("defaults to the username"),
                Field::select("roletype", "Role", roles).value(v("roletype")),
            ],
            "Add account",
        ));
    }
    let title = if s.admin { "Accounts & users" } else { "My keys" };
    let mut p = page(s, "/client/accounts", title, sections);
    if let Some(e) = &err {
        p.flashes.push(crate::error_flash(e));
    }
    with_error(p.into_response(), err)
}

async fn accounts_post(State(api): State<Arc<Api>>, headers: HeaderMap, FormData(f): FormData<Fields>) -> Response {
    let s = sess!(api, headers);
    let v = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (u, pw, em, fname, lname, acc, role) = (
        v("username"),
        v("password"),
        v("email"),
        v("firstname"),
        v("lastname"),
        v("account"),
        v("roletype"),
    );
    let pairs = [
        ("command", "createAccount"),
        ("username", u.as_str()),
        ("password", pw.as_str()),
        ("email", em.as_str()),
        ("firstname", fname.as_str()),
        ("lastname", lname.as_str()),
        ("account", acc.as_str()),
        ("roletype", role.as_str()),
    ];
    match submit(&s, &f, &pairs).await {
        Ok(_) => Redirect::to("/client/accounts").into_response(),
        Err(e) => accounts_page(&s, &f, Some(e), Vec::new()).await,
    }
}

/// registerUserKeys, then the secret shown once on this page.
async fn user_keys(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    FormData(f): FormData<Fields>,
) -> Response {
    let s = sess!(api, headers);
    match submit(&s, &f, &[("command", "registerUserKeys"), ("id", &id)]).await {
        Ok(v) => {
            let k = v.get("userkeys").cloned().unwrap_or_default();
            let kv = vec![
                ("API key".to_string(), k.s("apikey")),
                ("Secret key".into(), k.s("secretkey")),
            ];
            let mut r = accounts_page(&s, &Fields::new(), None, vec![Section::Kv(kv)]).await;
            r.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(e) => accounts_page(&s, &Fields::new(), Some(e), Vec::new()).await,
    }
}

// ---------- settings ----------

const SCOPES: &[(&str, &str, &str)] = &[
    ("global", "Global", ""),
    ("zone", "Zone", "zoneid"),
    ("cluster", "Cluster", "clusterid"),
    ("storage", "Primary storage", "storageid"),
    ("account", "Account", "accountid"),
];

async fn scope_options(s: &Session, scope: &str) -> Vec<(String, String)> {
    let (cmd, list) = match scope {
        "zone" => ("listZones", "zone"),
        "cluster" => ("listClusters", "cluster"),
        "storage" => ("listStoragePools", "storagepool"),
        "account" => ("listAccounts", "account"),
        _ => return Vec::new(),
    };
    let v = s
        .get(&[("command", cmd), ("listall", "true")])
        .await
        .unwrap_or_default();
    v.list(list).iter().map(|x| (x.s("id"), x.s("name"))).collect()
}

async fn settings_get(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = sess!(api, headers);
    settings_page(&s, &q, None, None).await
}

async fn settings_page(s: &Session, qy: &HashMap<String, String>, err: Option<ApiErr>, ok: Option<String>) -> Response {
    let g = |k: &str| qy.get(k).cloned().unwrap_or_default();
    let (scope, scopeid, keyword, pg) = (g("scope"), g("scopeid"), g("keyword"), g("page"));
    let scope = if scope.is_empty() { "global".to_string() } else { scope };
    let pg = if pg.is_empty() { "1".to_string() } else { pg };
    let param = SCOPES.iter().find(|x| x.0 == scope).map(|x| x.2).unwrap_or("");
    let opts = scope_options(s, &scope).await;
    let scopeid = if scopeid.is_empty() && !param.is_empty() {
        opts.first().map(|o| o.0.clone()).unwrap_or_default()
    } else {
        scopeid
    };
    let mut pairs = vec![
        ("command", "listConfigurations"),
        ("keyword", keyword.as_str()),
        ("page", pg.as_str()),
        ("pagesize", "50"),
    ];
    if !param.is_empty() {
        pairs.push((param, scopeid.as_str()));
    }
    let v = match s.get(&pairs).await {
        Ok(v) => v,
        Err(e) => return refused(s, "/client/settings", "Global settings", e),
    };
    let mut t = Table::new(
        format!("Settings at {scope} scope"),
        &["Name", "Value", "Default", "Scope", "Description", "Change"],
    );
    for (n, c) in v.list("configuration").iter().enumerate() {
        let mut hidden = vec![
            ("sessionkey".to_string(), s.key.clone()),
            ("name".to_string(), c.s("name")),
            ("scope".to_string(), scope.clone()),
            ("scopeid".to_string(), scopeid.clone()),
            ("keyword".to_string(), keyword.clone()),
        ];
        hidden.retain(|(_, v)| !v.is_empty());
        t.rows.push(vec![
            text(c.s("name")),
            text(c.s("value")),
            text(c.s("defaultvalue")),
            text(c.s("scope")),
            text(c.s("description")),
            Cell::Form(InlineForm {
                id: format!("setting-{n}"),
                action: "/client/settings".into(),
                hidden,
                label: format!("New value of {}", c.s("name")),
                name: "value".into(),
                value: c.s("value"),
                submit: "Save".into(),
            }),
        ]);
    }
    t.filter_action = "/client/settings".into();
    let mut filters = vec![
        Field::select(
            "scope",
            "Scope",
            SCOPES.iter().map(|x| (x.0.to_string(), x.1.to_string())).collect(),
        )
        .value(scope.clone()),
    ];
    if !param.is_empty() {
        filters.push(Field::select("scopeid", "Which", opts).value(scopeid.clone()));
    }
    filters.push(Field::text("keyword", "Name contains", false).value(keyword.clone()));
    t.filters = filters;
    t.pager = crate::instances::pager(
        "/client/settings",
        &[("scope", &scope), ("scopeid", &scopeid), ("keyword", &keyword)],
        &pg,
        50,
        v.n("count") as usize,
    );
    let mut p = page(s, "/client/settings", "Global settings", vec![Section::Table(t)]);
    if let Some(e) = &err {
        p.flashes.push(crate::error_flash(e));
    }
    if let Some(m) = ok {
        p.flashes.push(Flash { kind: "ok", text: m });
    }
    with_error(p.into_response(), err)
}

async fn settings_post(State(api): State<Arc<Api>>, headers: HeaderMap, FormData(f): FormData<Fields>) -> Response {
    let s = sess!(api, headers);
    let v = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (name, value, scope, scopeid) = (v("name"), v("value"), v("scope"), v("scopeid"));
    let param = SCOPES.iter().find(|x| x.0 == scope).map(|x| x.2).unwrap_or("");
    let mut pairs = vec![
        ("command", "updateConfiguration"),
        ("name", name.as_str()),
        ("value", value.as_str()),
    ];
    if !param.is_empty() {
        pairs.push((param, scopeid.as_str()));
    }
    let mut qy: HashMap<String, String> = HashMap::new();
    for k in ["scope", "scopeid", "keyword"] {
        qy.insert(k.into(), v(k));
    }
    match submit(&s, &f, &pairs).await {
        Ok(_) => settings_page(&s, &qy, None, Some(format!("{name} is now {value}"))).await,
        Err(e) => settings_page(&s, &qy, Some(e), None).await,
    }
}
