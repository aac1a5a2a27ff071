//! deleteHost through `stratus serve`: a Simulator host's agent stops and the
//! host leaves the simulated world (and the fleet's state file); after a
//! `kill -9` and a restart on the same database it is still gone while the
//! other host comes back Up.

mod support;

use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::cs::session_keys;
use support::{Proc, free_port, wait_until};

const PASSWORD: &str = "delete-admin-password-1";

fn serve(dir: &Path, db: &str, fleet: &Path, port: u16, n: u32) -> Proc {
    let args = [
        "serve",
        "--db",
        db,
        "--fleet-file",
        fleet.to_str().unwrap(),
        "--port",
        &port.to_string(),
        "--admin-password",
        PASSWORD,
    ]
    .map(String::from);
    let mut p = Proc::start(dir, &format!("serve-{n}"), &args);
    wait_until("the API to listen", Duration::from_secs(60), || {
        p.assert_alive();
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    p
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

/// Host ids in the fleet's state file: (world hosts, agents).
fn fleet_hosts(fleet: &Path) -> (Vec<String>, Vec<String>) {
    let Ok(text) = std::fs::read_to_string(fleet) else {
        return (vec![], vec![]);
    };
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let keys = |x: &Value| x.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    (keys(&v["world"]["hosts"]), keys(&v["agents"]))
}

#[test]
fn a_deleted_simulated_host_leaves_the_fleet_and_stays_gone_after_kill9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = format!("sqlite://{}", dir.join("delete.db").display());
    let fleet = dir.join("fleet.simhosts.json");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = serve(dir, &db, &fleet, port, 1);
    let admin = session_keys(&addr, "admin", PASSWORD);
    let zone = s(&admin.ok(&[
        ("command", "createZone"),
        ("name", "dz"),
        ("networktype", "Advanced"),
        ("dns1", "8.8.8.8"),
        ("internaldns1", "10.0.0.2"),
    ])["zone"]["id"]);
    let pod = s(&admin.ok(&[
        ("command", "createPod"),
        ("name", "dp"),
        ("zoneid", &zone),
        ("gateway", "172.16.40.1"),
        ("netmask", "255.255.255.0"),
        ("startip", "172.16.40.10"),
        ("endip", "172.16.40.200"),
    ])["pod"]["id"]);
    let cluster = s(&admin.ok(&[
        ("command", "addCluster"),
        ("clustername", "dc"),
        ("clustertype", "CloudManaged"),
        ("hypervisor", "Simulator"),
        ("podid", &pod),
        ("zoneid", &zone),
    ])["cluster"][0]["id"]);
    let mut hosts = Vec::new();
    for i in 0..2 {
        let url = format!("http://sim/dc/h{i}");
        let v = admin.ok(&[
            ("command", "addHost"),
            ("hypervisor", "Simulator"),
            ("url", &url),
            ("username", "root"),
            ("password", "unused"),
            ("zoneid", &zone),
            ("podid", &pod),
            ("clusterid", &cluster),
        ]);
        hosts.push(s(&v["host"][0]["id"]));
    }
    wait_until("both hosts Up and saved", Duration::from_secs(30), || {
        let up = admin.list(&[("command", "listHosts")], "host");
        up.len() == 2 && up.iter().all(|h| h["state"] == "Up") && fleet_hosts(&fleet).1.len() == 2
    });
    let (gone, kept) = (hosts[0].clone(), hosts[1].clone());
    // Up and Enabled, not forced: CloudStack's refusal.
    let (st, v) = admin.call(&[("command", "deleteHost"), ("id", &gone)]).unwrap();
    assert_eq!(st, 530, "{v}");
    admin.ok(&[("command", "deleteHost"), ("id", &gone), ("forced", "true")]);
    wait_until("the fleet to forget it", Duration::from_secs(10), || {
        let (world, agents) = fleet_hosts(&fleet);
        !world.contains(&gone) && !agents.contains(&gone) && world.contains(&kept)
    });
    let listed = admin.list(&[("command", "listHosts")], "host");
    assert_eq!(listed.len(), 1);
    assert_eq!(s(&listed[0]["id"]), kept);

    server.kill9();
    let _server = serve(dir, &db, &fleet, port, 2);
    let admin = session_keys(&addr, "admin", PASSWORD);
    wait_until("the kept host Up again", Duration::from_secs(30), || {
        let l = admin.list(&[("command", "listHosts")], "host");
        l.len() == 1 && l[0]["state"] == "Up"
    });
    let (st, _) = admin.call(&[("command", "deleteHost"), ("id", &gone)]).unwrap();
    assert_eq!(st, 431, "unknown after the restart");
    let (world, agents) = fleet_hosts(&fleet);
    assert!(!world.contains(&gone) && !agents.contains(&gone));
}
