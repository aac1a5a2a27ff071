//! Infrastructure drill-down: zones → pods → clusters → hosts, primary and
//! secondary storage; per host its status, resource state and the evidence
//! behind them; maintenance with the evacuation plan shown before confirming.

use crate::client::Json;
use crate::jobs::start_job;
use crate::view::{Bar, Cell, Section, Table, link, post_button, state, text};
use crate::{Fields, bytes, page, refused, session};
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
        .route("/client/infra", get(zones))
        .route("/client/zones/{id}", get(zone))
        .route("/client/pods/{id}", get(pod))
        .route("/client/clusters/{id}", get(cluster))
        .route("/client/hosts", get(hosts))
        .route("/client/hosts/{id}", get(host))
        .route("/client/hosts/{id}/maintenance", get(plan).post(confirm_maintenance))
        .route("/client/hosts/{id}/cancel", post(cancel_maintenance))
}

const CURRENT: &str = "/client/infra";

macro_rules! sess {
    ($api:expr, $headers:expr) => {
        match session(&$api, &$headers) {
            Ok(s) => s,
            Err(r) => return r,
        }
    };
}

macro_rules! get_or_refuse {
    ($s:expr, $title:expr, $pairs:expr) => {
        match $s.get($pairs).await {
            Ok(v) => v,
            Err(e) => return refused(&$s, CURRENT, $title, e),
        }
    };
}

async fn zones(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let s = sess!(api, headers);
    let v = get_or_refuse!(s, "Infrastructure", &[("command", "listZones")]);
    let mut t = Table::new("Zones", &["Zone", "Network type", "Allocation state", "Guest CIDR"]);
    for z in v.list("zone") {
        t.rows.push(vec![
            Cell::Link(z.s("name"), format!("/client/zones/{}", z.s("id"))),
            text(z.s("networktype")),
            state(&z.s("allocationstate")),
            text(z.s("guestcidraddress")),
        ]);
    }
    t.empty = "No zones yet: run the zone wizard.".into();
    let sections = vec![
        Section::Links(vec![
            link("All hosts", "/client/hosts"),
            link("Add a zone (wizard)", "/client/wizard"),
        ]),
        Section::Table(t),
    ];
    page(&s, CURRENT, "Infrastructure", sections).into_response()
}

async fn zone(State(api): State<Arc<Api>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = sess!(api, headers);
    let z = get_or_refuse!(s, "Zone", &[("command", "listZones"), ("id", &id)]);
    let name = z.list("zone").first().map(|z| z.s("name")).unwrap_or_default();
    let pods = get_or_refuse!(s, "Zone", &[("command", "listPods"), ("zoneid", &id)]);
    let mut pt = Table::new(
        "Pods",
        &["Pod", "Gateway", "Netmask", "Management IP range", "Allocation state"],
    );
    for p in pods.list("pod") {
        pt.rows.push(vec![
            Cell::Link(p.s("name"), format!("/client/pods/{}", p.s("id"))),
            text(p.s("gateway")),
            text(p.s("netmask")),
            text(format!("{} – {}", p.s("startip"), p.s("endip"))),
            state(&p.s("allocationstate")),
        ]);
    }
    let pools = get_or_refuse!(s, "Zone", &[("command", "listStoragePools"), ("zoneid", &id)]);
    let stores = get_or_refuse!(s, "Zone", &[("command", "listImageStores"), ("zoneid", &id)]);
    let sections = vec![
        Section::Links(vec![link(
            format!("Hosts of {name}"),
            format!("/client/hosts?zoneid={id}"),
        )]),
        Section::Table(pt),
        Section::Table(pool_table(&pools)),
        Section::Table(store_table(&stores)),
    ];
    page(&s, CURRENT, format!("Zone {name}"), sections).into_response()
}

fn pool_table(v: &Value) -> Table {
    let mut t = Table::new(
        "Primary storage",
        &[
            "Name",
            "Scope",
            "Cluster",
            "Type",
            "State",
            "Allocated",
            "Used",
            "Total",
        ],
    );
    for p in v.list("storagepool") {
        t.rows.push(vec![
            text(p.s("name")),
            text(p.s("scope")),
            text(p.s("clustername")),
            text(p.s("type")),
            state(&p.s("state")),
            text(bytes(p.n("disksizeallocated"))),
            text(bytes(p.n("disksizeused"))),
            text(bytes(p.n("disksizetotal"))),
        ]);
    }
    t.empty = "No primary storage.".into();
    t
}

fn store_table(v: &Value) -> Table {
    let mut t = Table::new("Secondary storage", &["Name", "Protocol", "URL", "Provider"]);
    for i in v.list("imagestore") {
        t.rows.push(vec![
            text(i.s("name")),
            text(i.s("protocol")),
            text(i.s("url")),
            text(i.s("providername")),
        ]);
    }
    t.empty = "No secondary storage.".into();
    t
}

async fn pod(State(api): State<Arc<Api>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = sess!(api, headers);
    let p = get_or_refuse!(s, "Pod", &[("command", "listPods"), ("id", &id)]);
    let name = p.list("pod").first().map(|p| p.s("name")).unwrap_or_default();
    let cl = get_or_refuse!(s, "Pod", &[("command", "listClusters"), ("podid", &id)]);
    let mut t = Table::new(
        "Clusters",
        &[
            "Cluster",
            "Hypervisor",
            "Type",
            "Allocation state",
            "CPU overcommit",
            "Memory overcommit",
        ],
    );
    for c in cl.list("cluster") {
        t.rows.push(vec![
            Cell::Link(c.s("name"), format!("/client/clusters/{}", c.s("id"))),
            text(c.s("hypervisortype")),
            text(c.s("clustertype")),
            state(&c.s("allocationstate")),
            text(c.s("cpuovercommitratio")),
            text(c.s("memoryovercommitratio")),
        ]);
    }
    page(&s, CURRENT, format!("Pod {name}"), vec![Section::Table(t)]).into_response()
}

async fn cluster(State(api): State<Arc<Api>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = sess!(api, headers);
    let c = get_or_refuse!(s, "Cluster", &[("command", "listClusters"), ("id", &id)]);
    let name = c.list("cluster").first().map(|c| c.s("name")).unwrap_or_default();
    let caps = get_or_refuse!(s, "Cluster", &[("command", "listCapacity"), ("clusterid", &id)]);
    let mut bars = Vec::new();
    for cap in caps.list("capacity") {
        let ty = cap.s("type");
        let (label, is_bytes) = match ty.as_str() {
            "0" => ("Memory", true),
            "1" => ("CPU (MHz)", false),
            "3" => ("Primary storage (allocated)", true),
            _ => continue,
        };
        let fmt = |x: f64| if is_bytes { bytes(x) } else { format!("{x:.0} MHz") };
        let (u, t) = (cap.n("capacityused"), cap.n("capacitytotal"));
        bars.push(Bar::new(label, fmt(u), fmt(t), cap.n("percentused"), None, None));
    }
    let hosts = get_or_refuse!(s, "Cluster", &[("command", "listHosts"), ("clusterid", &id)]);
    let pools = get_or_refuse!(s, "Cluster", &[("command", "listStoragePools"), ("clusterid", &id)]);
    let sections = vec![
        Section::Bars(bars),
        Section::Table(host_table(&hosts)),
        Section::Table(pool_table(&pools)),
    ];
    page(&s, CURRENT, format!("Cluster {name}"), sections).into_response()
}

fn host_table(v: &Value) -> Table {
    let mut t = Table::new(
        "Hosts",
        &[
            "Host",
            "Status",
            "Resource state",
            "Cluster",
            "CPU",
            "CPU allocated",
            "Memory allocated",
        ],
    );
    for h in v.list("host") {
        t.rows.push(vec![
            Cell::Link(h.s("name"), format!("/client/hosts/{}", h.s("id"))),
            state(&h.s("state")),
            state(&h.s("resourcestate")),
            text(h.s("clustername")),
            text(format!("{} × {} MHz", h.s("cpunumber"), h.s("cpuspeed"))),
            text(h.s("cpuallocated")),
            text(format!(
                "{} of {}",
                bytes(h.n("memoryallocated")),
                bytes(h.n("memorytotal"))
            )),
        ]);
    }
    t.empty = "No hosts.".into();
    t
}

async fn hosts(State(api): State<Arc<Api>>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let s = sess!(api, headers);
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let (zone, st, pg) = (get("zoneid"), get("state"), get("page"));
    let pg = if pg.is_empty() { "1".to_string() } else { pg };
    let v = get_or_refuse!(
        s,
        "Hosts",
        &[
            ("command", "listHosts"),
            ("zoneid", &zone),
            ("state", &st),
            ("page", &pg),
            ("pagesize", "50")
        ]
    );
    let mut t = host_table(&v);
    t.pager = crate::instances::pager(
        "/client/hosts",
        &[("zoneid", &zone), ("state", &st)],
        &pg,
        50,
        v.n("count") as usize,
    );
    page(&s, CURRENT, "Hosts", vec![Section::Table(t)]).into_response()
}

async fn host(State(api): State<Arc<Api>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = sess!(api, headers);
    let v = get_or_refuse!(
        s,
        "Host",
        &[("command", "listHosts"), ("id", &id), ("details", "evidence")]
    );
    let Some(h) = v.list("host").into_iter().next() else {
        let e = crate::client::ApiErr {
            code: 431,
            text: format!("Unable to find host by id {id}"),
        };
        return refused(&s, CURRENT, "Host", e);
    };
    let kv = vec![
        ("Status".to_string(), h.s("state")),
        ("Resource state".into(), h.s("resourcestate")),
        ("Last ping".into(), h.s("lastpinged")),
        ("Down since".into(), h.s("downsince")),
        (
            "Fenced".into(),
            if h.s("fenced").is_empty() {
                "no".into()
            } else {
                h.s("fenced")
            },
        ),
        (
            "Zone / pod / cluster".into(),
            format!("{} / {} / {}", h.s("zonename"), h.s("podname"), h.s("clustername")),
        ),
        ("Hypervisor".into(), h.s("hypervisor")),
        (
            "CPU".into(),
            format!(
                "{} × {} MHz, {} allocated",
                h.s("cpunumber"),
                h.s("cpuspeed"),
                h.s("cpuallocated")
            ),
        ),
        (
            "Memory".into(),
            format!("{} of {}", bytes(h.n("memoryallocated")), bytes(h.n("memorytotal"))),
        ),
        ("Host tags".into(), h.s("hosttags")),
        ("IP address".into(), h.s("ipaddress")),
    ];
    let mut ev = Table::new(
        "Evidence behind the status (heartbeats, lease reads, neighbour pings, fencing), newest last",
        &["When", "Source", "Sign", "Detail"],
    );
    for e in h.list("evidence") {
        let sign = e.s("sign");
        ev.rows.push(vec![
            text(e.s("at")),
            text(e.s("source")),
            crate::view::Cell::State(
                sign.clone(),
                match sign.as_str() {
                    "Alive" => "good",
                    "Dead" => "bad",
                    _ => "warn",
                },
            ),
            text(e.s("detail")),
        ]);
    }
    ev.empty = "No investigation so far: the host has answered every heartbeat.".into();
    let mut actions = Table::new("Maintenance", &["Actions"]);
    let mut buttons = Vec::new();
    match h.s("resourcestate").as_str() {
        "Enabled" | "Disabled" | "ErrorInPrepareForMaintenance" => {
            buttons.push(crate::view::link_button(
                "Prepare for maintenance…",
                format!("/client/hosts/{id}/maintenance"),
            ));
        }
        _ => {}
    }
    if matches!(
        h.s("resourcestate").as_str(),
        "PrepareForMaintenance" | "Maintenance" | "ErrorInPrepareForMaintenance"
    ) {
        buttons.push(post_button(
            "Cancel maintenance",
            format!("/client/hosts/{id}/cancel"),
            &s.key,
            "secondary",
        ));
    }
    actions.rows.push(vec![Cell::Actions(buttons)]);
    let vms = s
        .get(&[("command", "listVirtualMachines"), ("hostid", &id), ("listall", "true")])
        .await
        .unwrap_or_default();
    let mut vt = Table::new("Instances on this host", &["Name", "State", "Account"]);
    for vm in vms.list("virtualmachine") {
        vt.rows.push(vec![
            Cell::Link(vm.s("name"), format!("/client/vm/{}", vm.s("id"))),
            state(&vm.s("state")),
            text(vm.s("account")),
        ]);
    }
    vt.empty = "No instances run here.".into();
    let sections = vec![
        Section::Kv(kv),
        Section::Table(actions),
        Section::Table(ev),
        Section::Table(vt),
    ];
    page(&s, CURRENT, format!("Host {}", h.s("name")), sections).into_response()
}

/// The evacuation plan, shown before the operator confirms.
async fn plan(State(api): State<Arc<Api>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = sess!(api, headers);
    let v = get_or_refuse!(
        s,
        "Prepare for maintenance",
        &[("command", "planHostMaintenance"), ("id", &id)]
    );
    let p = v.get("maintenanceplan").cloned().unwrap_or_default();
    let mut t = Table::new(
        format!(
            "Evacuation plan for host {}: each running instance and where it would go",
            p.s("name")
        ),
        &["Instance", "Destination", "Why none"],
    );
    let mut stuck = 0;
    for m in p.list("move") {
        let dest = m.s("destinationhostname");
        if dest.is_empty() {
            stuck += 1;
        }
        t.rows.push(vec![
            Cell::Link(
                m.s("virtualmachinename"),
                format!("/client/vm/{}", m.s("virtualmachineid")),
            ),
            if dest.is_empty() { state("none") } else { text(dest) },
            text(m.s("reason")),
        ]);
    }
    t.empty = "Nothing runs on this host: it goes straight to Maintenance.".into();
    let mut confirm = Table::new("Confirm", &["Action"]);
    confirm.rows.push(vec![Cell::Actions(vec![
        post_button(
            "Confirm: prepare for maintenance",
            format!("/client/hosts/{id}/maintenance"),
            &s.key,
            "danger",
        ),
        crate::view::link_button("Back to the host", format!("/client/hosts/{id}")),
    ])]);
    let mut sections = vec![Section::Table(t)];
    if stuck > 0 {
        sections.push(Section::Text(format!(
            "{stuck} instance(s) have no destination now; the host would end in ErrorInPrepareForMaintenance unless capacity frees up."
        )));
    }
    sections.push(Section::Table(confirm));
    page(&s, CURRENT, "Prepare for maintenance", sections).into_response()
}

async fn confirm_maintenance(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    FormData(f): FormData<Fields>,
) -> Response {
    let s = sess!(api, headers);
    start_job(
        &s,
        &f,
        &[("command", "prepareHostForMaintenance"), ("id", &id)],
        "Maintenance refused",
    )
    .await
}

async fn cancel_maintenance(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    FormData(f): FormData<Fields>,
) -> Response {
    let s = sess!(api, headers);
    start_job(
        &s,
        &f,
        &[("command", "cancelHostMaintenance"), ("id", &id)],
        "Cancel refused",
    )
    .await
}
