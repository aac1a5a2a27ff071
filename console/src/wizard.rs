//! The first-run zone wizard, in the order CloudStack's installation guide
//! walks through it: zone, pod, cluster, hosts, primary storage, secondary
//! storage (and optionally a public IP range). Every field is checked before
//! anything is submitted; one bad field shows its error beside it and creates
//! nothing. Then the API calls run in order, each through the pipeline.

use crate::client::{ApiErr, Json, Session};
use crate::view::{Field, FieldKind, Flash, Form, Group, Section, Table, link, text};
use crate::{Fields, page, session};
use axum::Router;
use axum::extract::{Form as FormData, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use stratus_api::Api;

pub fn routes() -> Router<Arc<Api>> {
    Router::new().route("/client/wizard", get(form).post(submit))
}

type Errors = BTreeMap<&'static str, String>;

/// (group, field name, label, required, help, default)
const FIELDS: &[(&str, &str, &str, bool, &str, &str)] = &[
    ("1. Zone", "zone_name", "Zone name", true, "", ""),
    ("1. Zone", "dns1", "Public DNS 1", true, "IPv4 address", "8.8.8.8"),
    (
        "1. Zone",
        "internaldns1",
        "Internal DNS 1",
        true,
        "IPv4 address",
        "10.0.0.2",
    ),
    (
        "1. Zone",
        "guestcidraddress",
        "Guest CIDR",
        true,
        "e.g. 10.1.0.0/16",
        "10.1.0.0/16",
    ),
    ("2. Pod", "pod_name", "Pod name", true, "", ""),
    (
        "2. Pod",
        "gateway",
        "Reserved system gateway",
        true,
        "IPv4 address in the pod's subnet",
        "",
    ),
    (
        "2. Pod",
        "netmask",
        "Reserved system netmask",
        true,
        "e.g. 255.255.255.0",
        "255.255.255.0",
    ),
    ("2. Pod", "startip", "Start reserved system IP", true, "", ""),
    ("2. Pod", "endip", "End reserved system IP", true, "", ""),
    (
        "3. Cluster",
        "cluster_name",
        "Cluster name",
        true,
        "Simulator hypervisor",
        "",
    ),
    (
        "4. Hosts",
        "host_urls",
        "Host URLs",
        true,
        "one or more, separated by spaces: http://sim/<cluster>/<host>[/cpucore=N&cpuspeed=MHz&memory=BYTES]",
        "",
    ),
    ("4. Hosts", "host_username", "Host username", true, "", "root"),
    ("4. Hosts", "host_password", "Host password", true, "", ""),
    ("5. Primary storage", "pool_name", "Primary storage name", true, "", ""),
    (
        "5. Primary storage",
        "pool_url",
        "Primary storage URL",
        true,
        "nfs://server/path",
        "",
    ),
    (
        "6. Secondary storage",
        "store_name",
        "Secondary storage name",
        true,
        "",
        "",
    ),
    (
        "6. Secondary storage",
        "store_url",
        "Secondary storage URL",
        true,
        "nfs://server/path",
        "",
    ),
    (
        "7. Public traffic (optional)",
        "public_gateway",
        "Public gateway",
        false,
        "leave the four empty for none",
        "",
    ),
    (
        "7. Public traffic (optional)",
        "public_netmask",
        "Public netmask",
        false,
        "",
        "",
    ),
    (
        "7. Public traffic (optional)",
        "public_startip",
        "Public start IP",
        false,
        "",
        "",
    ),
    (
        "7. Public traffic (optional)",
        "public_endip",
        "Public end IP",
        false,
        "",
        "",
    ),
];

fn build_form(s: &Session, values: &Fields, errors: &Errors) -> Form {
    let mut groups: Vec<Group> = Vec::new();
    for (g, name, label, required, help, default) in FIELDS {
        let value = values.get(*name).cloned().unwrap_or_else(|| default.to_string());
        let mut f = Field::text(name, label, *required).value(value).help(*help);
        if name.ends_with("password") {
            f.kind = FieldKind::Password;
        }
        f.error = errors.get(name).cloned();
        match groups.last_mut() {
            Some(last) if last.legend == *g => last.fields.push(f),
            _ => groups.push(Group {
                legend: g.to_string(),
                fields: vec![f],
            }),
        }
    }
    Form {
        id: "wizard".into(),
        action: "/client/wizard".into(),
        sessionkey: s.key.clone(),
        hidden: Vec::new(),
        groups,
        submit: "Create the zone".into(),
    }
}

async fn form(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let f = build_form(&s, &Fields::new(), &Errors::new());
    let intro = Section::Text(
        "Creates an Advanced zone with one pod, one Simulator cluster, its hosts, cluster-wide primary storage and NFS secondary storage. Every field is checked before anything is created.".into(),
    );
    page(&s, "/client/wizard", "Zone wizard", vec![intro, Section::Form(f)]).into_response()
}

fn ip(v: &Fields, k: &'static str, e: &mut Errors) -> Option<Ipv4Addr> {
    let raw = v.get(k).map(|x| x.trim()).unwrap_or("");
    match raw.parse::<Ipv4Addr>() {
        Ok(a) => Some(a),
        Err(_) => {
            e.entry(k).or_insert_with(|| format!("'{raw}' is not an IPv4 address"));
            None
        }
    }
}

fn netmask(v: &Fields, k: &'static str, e: &mut Errors) -> Option<u32> {
    let m = u32::from(ip(v, k, e)?);
    if m.leading_ones() + m.trailing_zeros() != 32 || m == 0 {
        e.insert(
            k,
            format!("{} is not a netmask (contiguous ones, then zeros)", Ipv4Addr::from(m)),
        );
        return None;
    }
    Some(m)
}

/// Checks a gateway/netmask/start/end set: same subnet, start ≤ end, gateway outside the range.
fn range(v: &Fields, keys: [&'static str; 4], e: &mut Errors) {
    let [g, m, s, end] = keys;
    let (gw, mask, a, b) = (ip(v, g, e), netmask(v, m, e), ip(v, s, e), ip(v, end, e));
    let (Some(gw), Some(mask), Some(a), Some(b)) = (gw, mask, a, b) else {
        return;
    };
    let net = |x: Ipv4Addr| u32::from(x) & mask;
    if net(a) != net(gw) {
        e.insert(
            s,
            format!(
                "{a} is not in the gateway's subnet {}/{}",
                Ipv4Addr::from(net(gw)),
                mask.count_ones()
            ),
        );
    }
    if net(b) != net(gw) {
        e.insert(
            end,
            format!(
                "{b} is not in the gateway's subnet {}/{}",
                Ipv4Addr::from(net(gw)),
                mask.count_ones()
            ),
        );
    }
    if u32::from(a) > u32::from(b) {
        e.insert(end, format!("the end {b} is before the start {a}"));
    }
    if (u32::from(a)..=u32::from(b)).contains(&u32::from(gw)) {
        e.insert(g, "the gateway must not be inside the range".into());
    }
}

fn validate(v: &Fields) -> Errors {
    let mut e = Errors::new();
    let val = |k: &str| v.get(k).map(|x| x.trim().to_string()).unwrap_or_default();
    for (_, name, label, required, _, _) in FIELDS {
        if *required && val(name).is_empty() {
            e.insert(name, format!("{label} is required"));
        }
    }
    for name in ["zone_name", "pod_name", "cluster_name", "pool_name", "store_name"] {
        let x = val(name);
        if !x.is_empty() && !x.chars().all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c)) {
            e.insert(name, "letters, digits, spaces and - _ . only".into());
        }
    }
    for k in ["dns1", "internaldns1"] {
        if !val(k).is_empty() {
            ip(v, k, &mut e);
        }
    }
    let cidr = val("guestcidraddress");
    if !cidr.is_empty() {
        let ok = cidr.split_once('/').is_some_and(|(a, n)| {
            a.parse::<Ipv4Addr>().is_ok() && n.parse::<u8>().is_ok_and(|n| (8..=30).contains(&n))
        });
        if !ok {
            e.insert("guestcidraddress", format!("'{cidr}' is not a CIDR like 10.1.0.0/16"));
        }
    }
    if ["gateway", "netmask", "startip", "endip"]
        .iter()
        .all(|k| !val(k).is_empty())
    {
        range(v, ["gateway", "netmask", "startip", "endip"], &mut e);
    }
    let public = ["public_gateway", "public_netmask", "public_startip", "public_endip"];
    let given = public.iter().filter(|k| !val(k).is_empty()).count();
    if given > 0 && given < 4 {
        for k in public.iter().filter(|k| val(k).is_empty()) {
            e.insert(k, "give all four public fields, or none".into());
        }
    } else if given == 4 {
        range(v, public, &mut e);
    }
    let urls = val("host_urls");
    for u in urls.split_whitespace() {
        let ok = u
            .strip_prefix("http://sim/")
            .is_some_and(|rest| !rest.trim_matches('/').is_empty());
        if !ok {
            e.insert(
                "host_urls",
                format!("'{u}' is not a simulator URL http://sim/<cluster>/<host>"),
            );
            break;
        }
    }
    for k in ["pool_url", "store_url"] {
        let u = val(k);
        if !u.is_empty() {
            let scheme_ok = match k {
                "pool_url" => ["nfs://", "gluster://", "filesystem://"]
                    .iter()
                    .any(|p| u.starts_with(p)),
                _ => u.starts_with("nfs://"),
            };
            let rest = u.split_once("://").map(|x| x.1).unwrap_or("");
            if !scheme_ok || !rest.contains('/') || rest.starts_with('/') {
                let want = if k == "pool_url" {
                    "nfs://server/path (or gluster://, filesystem://)"
                } else {
                    "nfs://server/path"
                };
                e.insert(k, format!("'{u}' is not {want}"));
            }
        }
    }
    e
}

async fn submit(State(api): State<Arc<Api>>, headers: HeaderMap, FormData(v): FormData<Fields>) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut errors = validate(&v);
    // The zone's name must be free (asked of the API, not assumed).
    let name = v.get("zone_name").map(|x| x.trim().to_string()).unwrap_or_default();
    if !errors.contains_key("zone_name") && !name.is_empty() {
        match s.get(&[("command", "listZones"), ("name", &name)]).await {
            Ok(z) if !z.list("zone").is_empty() => {
                errors.insert("zone_name", format!("a zone named {name} exists already"));
            }
            Ok(_) => {}
            Err(e) => {
                let mut p = page(
                    &s,
                    "/client/wizard",
                    "Zone wizard",
                    vec![Section::Form(build_form(&s, &v, &errors))],
                );
                p.flashes.push(crate::error_flash(&e));
                return (StatusCode::UNPROCESSABLE_ENTITY, p).into_response();
            }
        }
    }
    if !errors.is_empty() {
        let n = errors.len();
        let mut p = page(
            &s,
            "/client/wizard",
            "Zone wizard",
            vec![Section::Form(build_form(&s, &v, &errors))],
        );
        p.flashes.push(Flash {
            kind: "error",
            text: format!("{n} field(s) need attention; nothing was created."),
        });
        return (StatusCode::UNPROCESSABLE_ENTITY, p).into_response();
    }
    let key = v.get("sessionkey").cloned().unwrap_or_default();
    let mut done: Vec<(String, String)> = Vec::new();
    match create_all(&s, &key, &v, &mut done).await {
        Ok(zone_id) => {
            let mut t = Table::new("Created", &["What", "Name"]);
            t.rows = done.into_iter().map(|(a, b)| vec![text(a), text(b)]).collect();
            let sections = vec![
                Section::Table(t),
                Section::Links(vec![link("Open the zone", format!("/client/zones/{zone_id}"))]),
            ];
            let mut p = page(&s, "/client/wizard", "Zone wizard", sections);
            p.flashes.push(Flash {
                kind: "ok",
                text: format!("Zone {name} is ready."),
            });
            p.into_response()
        }
        Err((step, e)) => {
            let mut t = Table::new("Created before the failure", &["What", "Name"]);
            t.rows = done.into_iter().map(|(a, b)| vec![text(a), text(b)]).collect();
            let mut p = page(
                &s,
                "/client/wizard",
                "Zone wizard",
                vec![Section::Table(t), Section::Form(build_form(&s, &v, &Errors::new()))],
            );
            p.flashes.push(Flash {
                kind: "error",
                text: format!("{step} was refused: {e}"),
            });
            (StatusCode::UNPROCESSABLE_ENTITY, p).into_response()
        }
    }
}

/// Names the refused step.
fn step(what: &'static str) -> impl Fn(ApiErr) -> (String, ApiErr) {
    move |e| (what.to_string(), e)
}

async fn create_all(
    s: &Session,
    key: &str,
    v: &Fields,
    done: &mut Vec<(String, String)>,
) -> Result<String, (String, ApiErr)> {
    let val = |k: &str| v.get(k).map(|x| x.trim().to_string()).unwrap_or_default();
    let zone = s
        .post(
            key,
            &[
                ("command", "createZone"),
                ("name", &val("zone_name")),
                ("networktype", "Advanced"),
                ("dns1", &val("dns1")),
                ("internaldns1", &val("internaldns1")),
                ("guestcidraddress", &val("guestcidraddress")),
            ],
        )
        .await
        .map_err(step("createZone"))?;
    let zone_id = zone.get("zone").map(|z| z.s("id")).unwrap_or_default();
    done.push(("Zone".into(), val("zone_name")));
    let pod = s
        .post(
            key,
            &[
                ("command", "createPod"),
                ("zoneid", &zone_id),
                ("name", &val("pod_name")),
                ("gateway", &val("gateway")),
                ("netmask", &val("netmask")),
                ("startip", &val("startip")),
                ("endip", &val("endip")),
            ],
        )
        .await
        .map_err(step("createPod"))?;
    let pod_id = pod.get("pod").map(|p| p.s("id")).unwrap_or_default();
    done.push(("Pod".into(), val("pod_name")));
    let cl = s
        .post(
            key,
            &[
                ("command", "addCluster"),
                ("zoneid", &zone_id),
                ("podid", &pod_id),
                ("clustername", &val("cluster_name")),
                ("clustertype", "CloudManaged"),
                ("hypervisor", "Simulator"),
            ],
        )
        .await
        .map_err(step("addCluster"))?;
    let cluster_id = cl.list("cluster").first().map(|c| c.s("id")).unwrap_or_default();
    done.push(("Cluster".into(), val("cluster_name")));
    let pool_name = val("pool_name");
    s.post(
        key,
        &[
            ("command", "createStoragePool"),
            ("zoneid", &zone_id),
            ("podid", &pod_id),
            ("clusterid", &cluster_id),
            ("scope", "cluster"),
            ("name", &pool_name),
            ("url", &val("pool_url")),
        ],
    )
    .await
    .map_err(step("createStoragePool"))?;
    done.push(("Primary storage".into(), pool_name));
    for u in val("host_urls").split_whitespace() {
        let h = s
            .post(
                key,
                &[
                    ("command", "addHost"),
                    ("zoneid", &zone_id),
                    ("podid", &pod_id),
                    ("clusterid", &cluster_id),
                    ("hypervisor", "Simulator"),
                    ("url", u),
                    ("username", &val("host_username")),
                    ("password", &val("host_password")),
                ],
            )
            .await
            .map_err(step("addHost"))?;
        let name = h.list("host").first().map(|h| h.s("name")).unwrap_or_default();
        done.push(("Host".into(), name));
    }
    s.post(
        key,
        &[
            ("command", "addImageStore"),
            ("provider", "NFS"),
            ("zoneid", &zone_id),
            ("name", &val("store_name")),
            ("url", &val("store_url")),
        ],
    )
    .await
    .map_err(step("addImageStore"))?;
    done.push(("Secondary storage".into(), val("store_name")));
    if !val("public_gateway").is_empty() {
        s.post(
            key,
            &[
                ("command", "createVlanIpRange"),
                ("zoneid", &zone_id),
                ("forvirtualnetwork", "true"),
                ("gateway", &val("public_gateway")),
                ("netmask", &val("public_netmask")),
                ("startip", &val("public_startip")),
                ("endip", &val("public_endip")),
            ],
        )
        .await
        .map_err(step("createVlanIpRange"))?;
        done.push((
            "Public IP range".into(),
            format!("{} – {}", val("public_startip"), val("public_endip")),
        ));
    }
    Ok(zone_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Fields {
        [
            ("zone_name", "z1"),
            ("dns1", "8.8.8.8"),
            ("internaldns1", "10.0.0.2"),
            ("guestcidraddress", "10.1.0.0/16"),
            ("pod_name", "p1"),
            ("gateway", "192.168.10.1"),
            ("netmask", "255.255.255.0"),
            ("startip", "192.168.10.10"),
            ("endip", "192.168.10.100"),
            ("cluster_name", "c1"),
            ("host_urls", "http://sim/c1/h1 http://sim/c1/h2"),
            ("host_username", "root"),
            ("host_password", "pw"),
            ("pool_name", "ps1"),
            ("pool_url", "nfs://10.0.0.5/export/primary"),
            ("store_name", "ss1"),
            ("store_url", "nfs://10.0.0.5/export/secondary"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn a_complete_form_passes() {
        assert_eq!(validate(&good()), Errors::new());
    }

    #[test]
    fn each_bad_field_is_named() {
        for (k, bad, want) in [
            ("netmask", "255.0.255.0", "not a netmask"),
            ("startip", "192.168.11.10", "not in the gateway's subnet"),
            ("endip", "192.168.10.5", "before the start"),
            ("dns1", "8.8.8", "not an IPv4 address"),
            ("guestcidraddress", "10.1.0.0", "not a CIDR"),
            ("host_urls", "http://kvm1/", "not a simulator URL"),
            ("pool_url", "smb://x/y", "is not nfs://"),
            ("zone_name", "", "is required"),
        ] {
            let mut f = good();
            f.insert(k.into(), bad.into());
            let e = validate(&f);
            assert!(e.get(k).is_some_and(|m| m.contains(want)), "{k}={bad}: {e:?}");
        }
        let mut f = good();
        f.insert("public_gateway".into(), "203.0.113.1".into());
        let e = validate(&f);
        assert!(
            e.contains_key("public_netmask") && e.contains_key("public_endip"),
            "{e:?}"
        );
    }
}
