//! Settings, events, alerts, hypervisors, system lists, configureSimulator
//! and listApis over HTTP; the command table against check_params.

mod common;
#[path = "common/tenants.rs"]
mod tenants;

use common::{TestServer, small_cloud};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use stratus_api::SimControl;
use stratus_api::params::Params;
use stratus_api::registry::{Ty, commands};
use stratus_core::ids::HostId;
use tenants::*;

fn rows<'v>(v: &'v Value, top: &str, obj: &str) -> Vec<&'v Value> {
    v[top][obj].as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configurations() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let name = "cpu.overprovisioning.factor";
    let (st, _) = s.call(&a.keys, &[("command", "listConfigurations")]).await;
    assert_eq!(st, 401);
    let (st, _) = s
        .call(
            &a.keys,
            &[("command", "updateConfiguration"), ("name", name), ("value", "2")],
        )
        .await;
    assert_eq!(st, 401);

    let (_, v) = s.admin(&[("command", "listConfigurations"), ("name", name)]).await;
    let c = rows(&v, "listconfigurationsresponse", "configuration")[0];
    assert_eq!(c["name"], name);
    assert_eq!(c["value"], "1.0", "the default as the registry spells it");
    assert_eq!(c["scope"], "cluster");
    assert_eq!(c["category"], "Advanced");

    let cluster = s.ids.cluster.clone();
    let (st, v) = s
        .admin(&[
            ("command", "updateConfiguration"),
            ("name", name),
            ("value", "2.5"),
            ("clusterid", &cluster),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let c = &v["updateconfigurationresponse"]["configuration"];
    assert_eq!(c["value"], "2.5");
    assert_eq!(c["id"], cluster.as_str());
    let (_, v) = s
        .admin(&[
            ("command", "listConfigurations"),
            ("name", name),
            ("clusterid", &cluster),
        ])
        .await;
    assert_eq!(
        rows(&v, "listconfigurationsresponse", "configuration")[0]["value"],
        "2.5"
    );
    let (_, v) = s.admin(&[("command", "listConfigurations"), ("name", name)]).await;
    assert_eq!(
        rows(&v, "listconfigurationsresponse", "configuration")[0]["value"],
        "1.0",
        "the global value is untouched"
    );
    // The core reads the new ratio for that cluster.
    let at = stratus_core::settings::Scope::Cluster(stratus_core::ids::ClusterId(uuid(&cluster)));
    assert_eq!(s.api.read(|c| c.cloud().settings.f64(name, at)), 2.5);

    let before = hash(&s);
    let unknown = "6b4d5c3e-0000-4000-8000-000000000001";
    for extra in [
        vec![("name", "no.such.setting"), ("value", "1")],
        vec![("name", name), ("value", "1000")],
        vec![("name", name), ("value", "lots")],
        vec![("name", name), ("value", "2"), ("zoneid", s.ids.zone.as_str())],
        vec![("name", name), ("value", "2"), ("clusterid", unknown)],
        vec![
            ("name", name),
            ("value", "2"),
            ("clusterid", cluster.as_str()),
            ("zoneid", s.ids.zone.as_str()),
        ],
        vec![("name", name)],
    ] {
        let mut ps = vec![("command", "updateConfiguration")];
        ps.extend_from_slice(&extra);
        let (st, v) = s.admin(&ps).await;
        assert_eq!(st, 431, "{extra:?}: {v}");
    }
    assert_eq!(before, hash(&s), "refused updates changed something");

    let (_, v) = s
        .admin(&[("command", "listConfigurations"), ("category", "Alert")])
        .await;
    let all = rows(&v, "listconfigurationsresponse", "configuration");
    assert!(!all.is_empty());
    assert!(all.iter().all(|c| c["category"] == "Alert"));
    let (_, v) = s
        .admin(&[("command", "listConfigurations"), ("zoneid", &s.ids.zone)])
        .await;
    assert!(
        rows(&v, "listconfigurationsresponse", "configuration")
            .iter()
            .all(|c| c["scope"] == "zone")
    );
    let (_, v) = s
        .admin(&[("command", "listEvents"), ("type", "CONFIGURATION.VALUE.EDIT")])
        .await;
    assert_eq!(v["listeventsresponse"]["count"], 1, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events() {
    let (s, seed) = start_seeded().await;
    let owner = seeded_user(&s).await;
    let bob = tenant(&s, "bob").await;
    let (_, v) = s
        .call(
            &owner.keys,
            &[("command", "createSnapshot"), ("volumeid", &seed.volume)],
        )
        .await;
    let j = s
        .wait_job(&owner.keys, v["createsnapshotresponse"]["jobid"].as_str().unwrap())
        .await;
    assert_eq!(j["jobstatus"], 2);

    let (st, v) = s.call(&owner.keys, &[("command", "listEvents")]).await;
    assert_eq!(st, 200);
    let evs = rows(&v, "listeventsresponse", "event");
    assert_eq!(v["listeventsresponse"]["count"], 2, "{v}");
    // Newest first: the failure, then its scheduling.
    assert_eq!(evs[0]["type"], "SNAPSHOT.CREATE");
    assert_eq!(evs[0]["state"], "Completed");
    assert_eq!(evs[0]["level"], "ERROR");
    assert_eq!(evs[0]["account"], "seeded");
    assert_eq!(evs[0]["username"], "seeduser");
    assert_eq!(evs[1]["state"], "Scheduled");
    assert_eq!(evs[1]["level"], "INFO");
    assert_eq!(evs[0]["parentid"], evs[1]["id"]);

    let count = |v: &Value| v["listeventsresponse"]["count"].as_i64().unwrap_or(0);
    for (ps, n) in [
        (vec![("level", "ERROR")], 1),
        (vec![("level", "INFO"), ("type", "snapshot.create")], 1),
        (vec![("type", "VM.CREATE")], 0),
        (vec![("startdate", "2999-01-01")], 0),
        (vec![("enddate", "2000-01-01 00:00:00")], 0),
        (vec![("startdate", "2000-01-01"), ("enddate", "2999-12-31")], 2),
        (vec![("keyword", "Error while")], 1),
        (vec![("page", "2"), ("pagesize", "1")], 2),
    ] {
        let mut q = vec![("command", "listEvents")];
        q.extend_from_slice(&ps);
        let (_, v) = s.call(&owner.keys, &q).await;
        assert_eq!(count(&v), n, "{ps:?}: {v}");
    }
    let (st, _) = s
        .call(&owner.keys, &[("command", "listEvents"), ("startdate", "yesterday")])
        .await;
    assert_eq!(st, 431);

    // Other tenants see none of it; the admin its own account's and the system's by default.
    let (_, v) = s.call(&bob.keys, &[("command", "listEvents")]).await;
    assert_eq!(v, json!({"listeventsresponse": {}}));
    let id = evs[0]["id"].as_str().unwrap();
    let (_, v) = s.call(&bob.keys, &[("command", "listEvents"), ("id", id)]).await;
    assert_eq!(v, json!({"listeventsresponse": {}}));
    let (_, v) = s.admin(&[("command", "listEvents")]).await;
    let types: Vec<&str> = rows(&v, "listeventsresponse", "event")
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"ACCOUNT.CREATE") && types.contains(&"USER.CREATE"),
        "{types:?}"
    );
    assert!(!types.contains(&"SNAPSHOT.CREATE"));
    let (_, v) = s.admin(&[("command", "listEvents"), ("listall", "true")]).await;
    let types: Vec<&str> = rows(&v, "listeventsresponse", "event")
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"SNAPSHOT.CREATE"), "{types:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts() {
    // The core's capacity check raised a memory alert before the start.
    let (mut cloud, ids) = small_cloud();
    let scope = stratus_core::settings::Scope::Global;
    cloud
        .update_setting("cluster.memory.allocated.capacity.notificationthreshold", scope, "0")
        .unwrap();
    assert_eq!(cloud.check_capacity_alerts().len(), 1);
    let s = start_with(cloud, ids, None).await;
    let a = tenant(&s, "alice").await;
    let (st, _) = s.call(&a.keys, &[("command", "listAlerts")]).await;
    assert_eq!(st, 401);
    let (st, v) = s.admin(&[("command", "listAlerts")]).await;
    assert_eq!(st, 200);
    assert_eq!(v["listalertsresponse"]["count"], 1, "{v}");
    let al = &v["listalertsresponse"]["alert"][0];
    assert_eq!(al["type"], 0);
    assert_eq!(al["name"], "ALERT.MEMORY");
    assert!(al["description"].as_str().unwrap().contains("cluster c1"), "{al}");
    assert!(al["sent"].as_str().unwrap().ends_with("+0000"));
    let (_, v) = s.admin(&[("command", "listAlerts"), ("type", "7")]).await;
    assert_eq!(v, json!({"listalertsresponse": {}}));
    let (_, v) = s
        .admin(&[("command", "listAlerts"), ("id", al["id"].as_str().unwrap())])
        .await;
    assert_eq!(v["listalertsresponse"]["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hypervisors_and_system_lists() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let (_, v) = s.call(&a.keys, &[("command", "listHypervisors")]).await;
    let names: Vec<&str> = rows(&v, "listhypervisorsresponse", "hypervisor")
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Simulator", "KVM"]);
    assert_eq!(v["listhypervisorsresponse"]["count"], 2);
    for cmd in ["listSystemVms", "listRouters"] {
        let (st, v) = s.admin(&[("command", cmd)]).await;
        assert_eq!(st, 200);
        assert_eq!(v, json!({ format!("{}response", cmd.to_lowercase()): {} }));
        let (st, _) = s.call(&a.keys, &[("command", cmd)]).await;
        assert_eq!(st, 401, "{cmd}");
    }
}

#[derive(Default)]
struct FakeSim(Mutex<Vec<Value>>);

impl SimControl for FakeSim {
    fn host_added(&self, _host: HostId, _token: String) -> Result<(), String> {
        Ok(())
    }
    fn sync(&self) {}
    fn inject(&self, fault: &Value) -> Result<String, String> {
        self.0.lock().unwrap().push(fault.clone());
        Ok(format!("injected {}", fault["fault"]))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_simulator() {
    let s = TestServer::start().await;
    let (st, v) = s
        .admin(&[
            ("command", "configureSimulator"),
            ("name", "StartCommand"),
            ("value", "result:fail"),
        ])
        .await;
    assert_eq!(st, 432, "no simulator here: {v}");

    let (cloud, ids) = small_cloud();
    let sim = Arc::new(FakeSim::default());
    let s = start_with(cloud, ids, Some(sim.clone())).await;
    let a = tenant(&s, "alice").await;
    let host = s.ids.hosts[0].clone();
    let pool = s.ids.pool.clone();
    let (st, _) = s
        .call(&a.keys, &[("command", "configureSimulator"), ("fault", "clear_faults")])
        .await;
    assert_eq!(st, 401);

    let ok = [
        (
            vec![
                ("name", "StartCommand"),
                ("value", "result:fail"),
                ("count", "2"),
                ("hostid", host.as_str()),
            ],
            json!({"fault": "fail_calls", "host": host, "call": "StartDomain", "count": 2}),
        ),
        (
            vec![("name", "MigrateCommand"), ("value", "result:fail"), ("count", "1")],
            json!({"fault": "fail_calls", "call": "MigrateDomain", "count": 1}),
        ),
        (
            vec![("name", "CreateCommand"), ("value", "result:fail"), ("count", "3")],
            json!({"fault": "fail_calls", "call": "CreateVolume", "count": 3}),
        ),
        (
            vec![("fault", "crash_host"), ("hostid", host.as_str())],
            json!({"fault": "crash_host", "host": host}),
        ),
        (
            vec![("fault", "heal_host"), ("hostid", host.as_str())],
            json!({"fault": "heal_host", "host": host}),
        ),
        (
            vec![("fault", "storage_outage"), ("poolid", pool.as_str())],
            json!({"fault": "storage_outage", "pool": pool}),
        ),
        (
            vec![("fault", "fail_calls"), ("call", "StopDomain"), ("count", "1")],
            json!({"fault": "fail_calls", "call": "StopDomain", "count": 1}),
        ),
        (
            vec![
                ("name", "StartCommand"),
                ("value", "result:success"),
                ("hostid", host.as_str()),
            ],
            json!({"fault": "fail_calls", "host": host, "call": "StartDomain", "count": 0}),
        ),
        (vec![("fault", "clear_faults")], json!({"fault": "clear_faults"})),
    ];
    for (ps, want) in ok {
        let mut q = vec![("command", "configureSimulator")];
        q.extend_from_slice(&ps);
        let (st, v) = s.admin(&q).await;
        assert_eq!(st, 200, "{ps:?}: {v}");
        assert_eq!(v["configuresimulatorresponse"]["success"], true);
        assert_eq!(sim.0.lock().unwrap().last().unwrap(), &want, "{ps:?}");
    }
    let n = sim.0.lock().unwrap().len();
    let unknown = "6b4d5c3e-0000-4000-8000-000000000001";
    for ps in [
        vec![("name", "FooCommand"), ("value", "result:fail")],
        vec![("name", "StartCommand"), ("value", "wait:1000")],
        vec![("fault", "crash_host")],
        vec![("fault", "crash_host"), ("hostid", unknown)],
        vec![("fault", "storage_outage")],
        vec![("fault", "explode")],
        vec![("fault", "fail_calls"), ("call", "Launch")],
        vec![("fault", "fail_calls"), ("call", "StopDomain"), ("count", "-1")],
        vec![("value", "result:fail")],
    ] {
        let mut q = vec![("command", "configureSimulator")];
        q.extend_from_slice(&ps);
        let (st, v) = s.admin(&q).await;
        assert_eq!(st, 431, "{ps:?}: {v}");
    }
    assert_eq!(sim.0.lock().unwrap().len(), n, "refusals injected nothing");
}

/// A valid value of each parameter type.
fn sample(ty: Ty) -> &'static str {
    match ty {
        Ty::Uuid => "6b4d5c3e-0000-4000-8000-000000000001",
        Ty::Long | Ty::Int => "1",
        Ty::Bool => "true",
        Ty::Date => "2024-01-01",
        Ty::Str | Ty::List | Ty::Map => "x",
    }
}

#[test]
fn required_params_are_what_check_params_enforces() {
    for cmd in commands().values() {
        let required: Vec<_> = cmd.params.iter().filter(|p| p.required).collect();
        let with = |skip: Option<&str>| {
            let mut pairs = vec![("command".to_string(), cmd.name.to_string())];
            for p in &required {
                if Some(p.name) == skip {
                    continue;
                }
                if p.ty == Ty::Map {
                    pairs.push((format!("{}[0].key", p.name), "x".into()));
                } else {
                    pairs.push((p.name.to_string(), sample(p.ty).into()));
                }
            }
            Params::from_pairs(pairs)
        };
        assert!(cmd.check_params(&with(None)).is_ok(), "{}", cmd.name);
        for p in &required {
            let e = cmd.check_params(&with(Some(p.name))).unwrap_err();
            assert_eq!(e.code, 431);
            assert!(
                e.text.ends_with(&format!("missing parameter {}", p.name)),
                "{}: {e}",
                cmd.name
            );
        }
        // And a wrongly typed optional parameter is refused before the handler.
        for p in cmd
            .params
            .iter()
            .filter(|p| matches!(p.ty, Ty::Uuid | Ty::Long | Ty::Int | Ty::Bool))
        {
            let mut pairs = vec![("command".to_string(), cmd.name.to_string())];
            pairs.extend(required.iter().map(|r| (r.name.to_string(), sample(r.ty).to_string())));
            pairs.retain(|(k, _)| k != p.name);
            pairs.push((p.name.to_string(), "not-a-value".into()));
            let e = cmd.check_params(&Params::from_pairs(pairs)).unwrap_err();
            assert_eq!(e.code, 431, "{} {}", cmd.name, p.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_apis() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let (st, v) = s.admin(&[("command", "listApis")]).await;
    assert_eq!(st, 200);
    let apis = rows(&v, "listapisresponse", "api");
    assert_eq!(v["listapisresponse"]["count"], commands().len());
    assert_eq!(apis.len(), commands().len());
    for api in &apis {
        let name = api["name"].as_str().unwrap();
        let cmd = commands()[name];
        assert_eq!(api["isasync"], cmd.is_async, "{name}");
        assert!(api["description"].is_string() && api["since"].is_string() && api["type"].is_string());
        let params = api["params"].as_array().unwrap();
        for p in cmd.params {
            let got = params
                .iter()
                .find(|x| x["name"] == p.name)
                .unwrap_or_else(|| panic!("{name} {}", p.name));
            assert_eq!(got["required"], p.required, "{name} {}", p.name);
            assert_eq!(got["type"], p.ty.name());
        }
        let fields: Vec<&str> = api["response"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for f in cmd.fields.iter().chain(&["jobid", "jobstatus"]) {
            assert!(fields.contains(f), "{name} lacks response field {f}");
        }
        if name.starts_with("list") {
            assert!(params.iter().any(|x| x["name"] == "pagesize"), "{name}");
        }
    }
    // Users see what they may call.
    let (_, v) = s.call(&a.keys, &[("command", "listApis")]).await;
    let names: Vec<&str> = rows(&v, "listapisresponse", "api")
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"listVolumes") && names.contains(&"listApis"));
    assert!(!names.contains(&"createVlanIpRange") && !names.contains(&"createAccount"));
    let (_, v) = s
        .call(&a.keys, &[("command", "listApis"), ("name", "listVolumes")])
        .await;
    assert_eq!(v["listapisresponse"]["count"], 1);
    assert_eq!(v["listapisresponse"]["api"][0]["name"], "listVolumes");
    for n in ["createAccount", "noSuchApi"] {
        let (st, _) = s.call(&a.keys, &[("command", "listApis"), ("name", n)]).await;
        assert_eq!(st, 431, "{n}");
    }

    // Over HTTP too: a command without its required parameters is refused
    // before it runs (so nothing changes).
    let before = hash(&s);
    for cmd in commands().values() {
        let Some(first) = cmd.params.iter().find(|p| p.required) else {
            continue;
        };
        let (st, v) = s.admin(&[("command", cmd.name)]).await;
        assert_eq!(st, 431, "{}: {v}", cmd.name);
        let top = cmd.response_name();
        let text = v[&top]["errortext"].as_str().unwrap();
        assert!(
            text.contains(&format!("missing parameter {}", first.name)),
            "{}: {text}",
            cmd.name
        );
    }
    assert_eq!(before, hash(&s));
}
