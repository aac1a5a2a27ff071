//! Dashboard (zone capacity against thresholds, alerts, recent events, host
//! states), events and alerts.

use crate::client::{Json, Session};
use crate::view::{Bar, Section, Table, link, state, text};
use crate::{bytes, page, refused, session};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use stratus_api::Api;

pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/client/dashboard", get(dashboard))
        .route("/client/events", get(events))
        .route("/client/alerts", get(alerts))
}

/// A global setting's value as a fraction (thresholds), if the server has it.
async fn setting(s: &Session, name: &str) -> Option<f64> {
    let v = s.get(&[("command", "listConfigurations"), ("name", name)]).await.ok()?;
    v.list("configuration").first().and_then(|c| c.s("value").parse().ok())
}

async fn dashboard(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut sections = Vec::new();
    if s.admin {
        match capacity_sections(&s).await {
            Ok(mut x) => sections.append(&mut x),
            Err(e) => return refused(&s, "/client/dashboard", "Dashboard", e),
        }
    } else {
        let vms = s
            .get(&[("command", "listVirtualMachines"), ("pagesize", "1"), ("page", "1")])
            .await
            .map(|v| v.n("count") as u64)
            .unwrap_or(0);
        sections.push(Section::Text(format!("Your account has {vms} instances.")));
        sections.push(Section::Links(vec![
            link("Instances", "/client/instances"),
            link("Deploy an instance", "/client/instances/deploy"),
        ]));
    }
    if s.admin {
        let alerts = s
            .get(&[("command", "listAlerts"), ("pagesize", "8"), ("page", "1")])
            .await
            .unwrap_or_default();
        sections.push(Section::Table(alert_table("Recent alerts", &alerts)));
    }
    let ev = s
        .get(&[
            ("command", "listEvents"),
            ("pagesize", "10"),
            ("page", "1"),
            ("listall", "true"),
        ])
        .await
        .unwrap_or_default();
    sections.push(Section::Table(event_table("Recent events", &ev)));
    page(&s, "/client/dashboard", "Dashboard", sections).into_response()
}

async fn capacity_sections(s: &Session) -> Result<Vec<Section>, crate::client::ApiErr> {
    let mut out = Vec::new();
    let zones = s.get(&[("command", "listZones")]).await?;
    let thresholds = [
        (
            setting(s, "cluster.cpu.allocated.capacity.notificationthreshold").await,
            setting(s, "cluster.cpu.allocated.capacity.disablethreshold").await,
        ),
        (
            setting(s, "cluster.memory.allocated.capacity.notificationthreshold").await,
            setting(s, "cluster.memory.allocated.capacity.disablethreshold").await,
        ),
        (
            setting(s, "cluster.storage.allocated.capacity.notificationthreshold").await,
            setting(s, "pool.storage.allocated.capacity.disablethreshold").await,
        ),
    ];
    let zl = zones.list("zone");
    if zl.is_empty() {
        out.push(Section::Text(
            "No zone yet: the zone wizard creates the first one.".into(),
        ));
        out.push(Section::Links(vec![link("Open the zone wizard", "/client/wizard")]));
    }
    for z in &zl {
        let id = z.s("id");
        out.push(Section::Heading(format!(
            "Zone {} ({})",
            z.s("name"),
            z.s("allocationstate")
        )));
        let caps = s.get(&[("command", "listCapacity"), ("zoneid", &id)]).await?;
        let mut bars = Vec::new();
        for (code, label, th, is_bytes) in [
            ("1", "CPU (allocated MHz)", thresholds[0], false),
            ("0", "Memory (allocated)", thresholds[1], true),
            ("3", "Primary storage (allocated)", thresholds[2], true),
        ] {
            if let Some(c) = caps.list("capacity").into_iter().find(|c| c.s("type") == code) {
                let (used, total) = (c.n("capacityused"), c.n("capacitytotal"));
                let fmt = |x: f64| if is_bytes { bytes(x) } else { format!("{x:.0} MHz") };
                bars.push(Bar::new(label, fmt(used), fmt(total), c.n("percentused"), th.0, th.1));
            }
        }
        let (ips_used, ips_total) = public_ips(s, &id).await;
        let pct = if ips_total > 0 {
            ips_used as f64 * 100.0 / ips_total as f64
        } else {
            0.0
        };
        let mut ip_bar = Bar::new(
            "Public IP addresses",
            ips_used.to_string(),
            ips_total.to_string(),
            pct,
            None,
            None,
        );
        ip_bar.note = "this server has no public-IP threshold settings".into();
        bars.push(ip_bar);
        out.push(Section::Bars(bars));
        let hosts = s.get(&[("command", "listHosts"), ("zoneid", &id)]).await?;
        let mut by_state: BTreeMap<(String, String), u32> = BTreeMap::new();
        for h in hosts.list("host") {
            *by_state.entry((h.s("state"), h.s("resourcestate"))).or_default() += 1;
        }
        let mut t = Table::new(
            format!("Hosts of zone {} by state", z.s("name")),
            &["Status", "Resource state", "Hosts"],
        );
        for ((st, rs), n) in by_state {
            let href = format!("/client/hosts?zoneid={id}&state={st}");
            t.rows.push(vec![
                state(&st),
                state(&rs),
                crate::view::Cell::Link(n.to_string(), href),
            ]);
        }
        t.empty = "No hosts in this zone.".into();
        out.push(Section::Table(t));
    }
    Ok(out)
}

/// (allocated, total) public addresses of a zone, from its VLAN IP ranges.
async fn public_ips(s: &Session, zone: &str) -> (u64, u64) {
    let ranges = s
        .get(&[("command", "listVlanIpRanges"), ("zoneid", zone)])
        .await
        .unwrap_or_default();
    let total: u64 = ranges
        .list("vlaniprange")
        .iter()
        .filter_map(|r| {
            let a: std::net::Ipv4Addr = r.s("startip").parse().ok()?;
            let b: std::net::Ipv4Addr = r.s("endip").parse().ok()?;
            Some(u64::from(u32::from(b)).saturating_sub(u64::from(u32::from(a))) + 1)
        })
        .sum();
    let used = s
        .get(&[
            ("command", "listPublicIpAddresses"),
            ("zoneid", zone),
            ("listall", "true"),
            ("pagesize", "1"),
            ("page", "1"),
        ])
        .await
        .map(|v| v.n("count") as u64)
        .unwrap_or(0);
    (used, total)
}

pub(crate) fn event_table(caption: &str, v: &Value) -> Table {
    let mut t = Table::new(caption, &["When", "Level", "Type", "Description", "Account"]);
    for e in v.list("event") {
        t.rows.push(vec![
            text(e.s("created")),
            state_level(&e.s("level")),
            text(e.s("type")),
            text(e.s("description")),
            text(e.s("account")),
        ]);
    }
    t.empty = "No events.".into();
    t
}

fn state_level(l: &str) -> crate::view::Cell {
    crate::view::Cell::State(
        l.to_string(),
        match l {
            "ERROR" => "bad",
            "WARN" => "warn",
            _ => "",
        },
    )
}

pub(crate) fn alert_table(caption: &str, v: &Value) -> Table {
    let mut t = Table::new(caption, &["When", "Type", "Name", "Description"]);
    for a in v.list("alert") {
        t.rows.push(vec![
            text(a.s("sent")),
            text(a.s("type")),
            text(a.s("name")),
            text(a.s("description")),
        ]);
    }
    t.empty = "No alerts.".into();
    t
}

async fn events(State(api): State<Arc<Api>>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (pg, keyword, level) = (
        q.get("page").cloned().unwrap_or_else(|| "1".into()),
        q.get("keyword").cloned().unwrap_or_default(),
        q.get("level").cloned().unwrap_or_default(),
    );
    let v = match s
        .get(&[
            ("command", "listEvents"),
            ("listall", "true"),
            ("page", &pg),
            ("pagesize", "50"),
            ("keyword", &keyword),
            ("level", &level),
        ])
        .await
    {
        Ok(v) => v,
        Err(e) => return refused(&s, "/client/events", "Events", e),
    };
    let mut t = event_table("Events, newest first", &v);
    t.filter_action = "/client/events".into();
    t.filters = vec![
        crate::view::Field::text("keyword", "Search", false).value(keyword.clone()),
        crate::view::Field::select(
            "level",
            "Level",
            ["", "INFO", "WARN", "ERROR"]
                .iter()
                .map(|l| {
                    (
                        l.to_string(),
                        if l.is_empty() { "any".to_string() } else { l.to_string() },
                    )
                })
                .collect(),
        )
        .value(level.clone()),
    ];
    t.pager = crate::instances::pager(
        "/client/events",
        &[("keyword", &keyword), ("level", &level)],
        &pg,
        50,
        v.n("count") as usize,
    );
    page(&s, "/client/events", "Events", vec![Section::Table(t)]).into_response()
}

async fn alerts(State(api): State<Arc<Api>>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let pg = q.get("page").cloned().unwrap_or_else(|| "1".into());
    let v = match s
        .get(&[("command", "listAlerts"), ("page", &pg), ("pagesize", "50")])
        .await
    {
        Ok(v) => v,
        Err(e) => return refused(&s, "/client/alerts", "Alerts", e),
    };
    let mut t = alert_table("Alerts, newest first", &v);
    t.pager = crate::instances::pager("/client/alerts", &[], &pg, 50, v.n("count") as usize);
    page(&s, "/client/alerts", "Alerts", vec![Section::Table(t)]).into_response()
}
