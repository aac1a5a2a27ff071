//! Infrastructure commands over HTTP: building a zone, listing it, capacity,
//! maintenance as jobs, refusals that change nothing, admin-only access.

mod common;
use common::TestServer;
use serde_json::Value;
use stratus_core::controller::admin::{AdminChange, NewUser};
use stratus_core::inventory::AccountType;

fn ok<'a>(r: &'a (u16, Value), top: &str) -> &'a Value {
    assert_eq!(r.0, 200, "{top}: {}", r.1);
    let obj = r.1.as_object().expect("an object");
    assert_eq!(obj.len(), 1, "exactly one top-level key");
    &r.1[top]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_a_zone_through_the_api() {
    let s = TestServer::start().await;
    let r = s
        .admin(&[
            ("command", "createZone"),
            ("name", "z2"),
            ("networktype", "Advanced"),
            ("dns1", "8.8.8.8"),
            ("internaldns1", "10.0.0.2"),
            ("guestcidraddress", "10.2.0.0/16"),
        ])
        .await;
    let zone = ok(&r, "createzoneresponse")["zone"].clone();
    assert_eq!(zone["name"], "z2");
    assert_eq!(zone["allocationstate"], "Enabled");
    let zid = zone["id"].as_str().unwrap().to_string();
    let r = s
        .admin(&[
            ("command", "createPod"),
            ("name", "p2"),
            ("zoneid", &zid),
            ("gateway", "172.16.9.1"),
            ("netmask", "255.255.255.0"),
            ("startip", "172.16.9.10"),
            ("endip", "172.16.9.200"),
        ])
        .await;
    let pid = ok(&r, "createpodresponse")["pod"]["id"].as_str().unwrap().to_string();
    let r = s
        .admin(&[
            ("command", "addCluster"),
            ("clustername", "c2"),
            ("clustertype", "CloudManaged"),
            ("hypervisor", "Simulator"),
            ("podid", &pid),
            ("zoneid", &zid),
        ])
        .await;
    let body = ok(&r, "addclusterresponse");
    assert_eq!(body["count"], 1);
    let cid = body["cluster"][0]["id"].as_str().unwrap().to_string();
    let r = s
        .admin(&[
            ("command", "addHost"),
            ("hypervisor", "Simulator"),
            ("url", "http://sim/c2/h1/cpucore=8&cpuspeed=2400"),
            ("username", "root"),
            ("password", "x"),
            ("zoneid", &zid),
            ("podid", &pid),
            ("clusterid", &cid),
        ])
        .await;
    let host = &ok(&r, "addhostresponse")["host"][0];
    assert_eq!(host["name"], "sim-c2-h1");
    assert_eq!(host["cpunumber"], 8);
    assert_eq!(host["cpuspeed"], 2400);
    // No simulated fleet in this server: the host waits for its agent.
    assert_eq!(host["state"], "Connecting");
    let r = s
        .admin(&[
            ("command", "createStoragePool"),
            ("name", "nfs2"),
            ("url", "nfs://192.0.2.5/export/p2"),
            ("zoneid", &zid),
            ("podid", &pid),
            ("clusterid", &cid),
            ("capacitybytes", "1099511627776"),
        ])
        .await;
    let pool = &ok(&r, "createstoragepoolresponse")["storagepool"];
    assert_eq!(pool["type"], "NetworkFilesystem");
    assert_eq!(pool["scope"], "CLUSTER");
    let r = s
        .admin(&[
            ("command", "addImageStore"),
            ("provider", "NFS"),
            ("url", "nfs://192.0.2.6/export/sec"),
            ("zoneid", &zid),
        ])
        .await;
    assert_eq!(ok(&r, "addimagestoreresponse")["imagestore"]["providername"], "NFS");
    let r = s.admin(&[("command", "listZones")]).await;
    assert_eq!(ok(&r, "listzonesresponse")["count"], 2);
    let r = s.admin(&[("command", "listHosts"), ("zoneid", &zid)]).await;
    assert_eq!(ok(&r, "listhostsresponse")["count"], 1);
    let r = s.admin(&[("command", "listHosts"), ("state", "Up")]).await;
    assert_eq!(ok(&r, "listhostsresponse")["count"], 2, "the two seeded hosts");
    let r = s
        .admin(&[("command", "listClusters"), ("name", "nothing-like-this")])
        .await;
    assert_eq!(ok(&r, "listclustersresponse"), &serde_json::json!({}));
    let r = s
        .admin(&[("command", "listCapacity"), ("zoneid", &s.ids.zone), ("type", "1")])
        .await;
    let cap = &ok(&r, "listcapacityresponse")["capacity"][0];
    assert_eq!(cap["capacitytotal"], 2 * 4 * 2000);
    let r = s
        .admin(&[("command", "listHypervisorCapabilities"), ("hypervisor", "Simulator")])
        .await;
    assert_eq!(ok(&r, "listhypervisorcapabilitiesresponse")["count"], 1);
    let r = s
        .admin(&[("command", "updateZone"), ("id", &zid), ("allocationstate", "Disabled")])
        .await;
    assert_eq!(ok(&r, "updatezoneresponse")["zone"]["allocationstate"], "Disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_changes_nothing() {
    let s = TestServer::start().await;
    let before = s.fingerprint();
    let cases: &[&[(&str, &str)]] = &[
        &[
            ("command", "createZone"),
            ("name", "z"),
            ("networktype", "Advanced"),
            ("internaldns1", "10.0.0.2"),
        ],
        &[
            ("command", "createZone"),
            ("name", "z"),
            ("networktype", "Fancy"),
            ("dns1", "1.1.1.1"),
            ("internaldns1", "10.0.0.2"),
        ],
        &[
            ("command", "createZone"),
            ("name", "z"),
            ("networktype", "Basic"),
            ("dns1", "1.1.1"),
            ("internaldns1", "10.0.0.2"),
        ],
        &[
            ("command", "createPod"),
            ("name", "p"),
            ("zoneid", "not-a-uuid"),
            ("gateway", "1.1.1.1"),
            ("netmask", "255.0.0.0"),
            ("startip", "1.1.1.2"),
        ],
        &[
            ("command", "createPod"),
            ("name", "p"),
            ("zoneid", "00000000-0000-4000-8000-000000000000"),
            ("gateway", "1.1.1.1"),
            ("netmask", "255.0.0.0"),
            ("startip", "1.1.1.2"),
        ],
        &[
            ("command", "addCluster"),
            ("clustername", "c"),
            ("clustertype", "CloudManaged"),
            ("hypervisor", "Hyperv"),
            ("podid", "00000000-0000-4000-8000-000000000000"),
            ("zoneid", "00000000-0000-4000-8000-000000000000"),
        ],
        &[
            ("command", "addHost"),
            ("hypervisor", "Simulator"),
            ("url", "http://kvm/"),
            ("username", "u"),
            ("password", "p"),
            ("zoneid", "00000000-0000-4000-8000-000000000000"),
            ("podid", "00000000-0000-4000-8000-000000000000"),
        ],
        &[
            ("command", "createStoragePool"),
            ("name", "x"),
            ("url", "iscsi://x/y"),
            ("zoneid", "00000000-0000-4000-8000-000000000000"),
        ],
        &[("command", "listCapacity"), ("type", "77")],
        &[("command", "listHosts"), ("page", "0"), ("pagesize", "10")],
        &[
            ("command", "prepareHostForMaintenance"),
            ("id", "00000000-0000-4000-8000-000000000000"),
        ],
    ];
    for params in cases {
        let (st, v) = s.admin(params).await;
        assert_eq!(st, 431, "{params:?} → {v}");
        let top = format!("{}response", params[0].1.to_lowercase());
        assert_eq!(v[&top]["errorcode"], 431, "{v}");
        assert!(v[&top]["errortext"].as_str().is_some_and(|t| !t.is_empty()));
    }
    assert_eq!(s.fingerprint(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_is_a_job_and_users_cannot_touch_infrastructure() {
    let s = TestServer::start().await;
    let h1 = s.ids.hosts[0].clone();
    let (_, v) = s.admin(&[("command", "prepareHostForMaintenance"), ("id", &h1)]).await;
    let job = v["preparehostformaintenanceresponse"]["jobid"]
        .as_str()
        .expect("a job id")
        .to_string();
    let r = s.wait_job(&s.admin.clone(), &job).await;
    assert_eq!(r["jobstatus"], 1, "{r}");
    assert_eq!(r["jobinstancetype"], "Host");
    assert_eq!(r["jobresult"]["host"]["id"], h1.as_str());
    let (_, v) = s.admin(&[("command", "listHosts"), ("id", &h1)]).await;
    let rs = v["listhostsresponse"]["host"][0]["resourcestate"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(rs == "Maintenance" || rs == "PrepareForMaintenance", "{rs}");
    let (_, v) = s.admin(&[("command", "cancelHostMaintenance"), ("id", &h1)]).await;
    let job = v["cancelhostmaintenanceresponse"]["jobid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.wait_job(&s.admin.clone(), &job).await["jobstatus"], 1);
    let (_, v) = s.admin(&[("command", "listHosts"), ("id", &h1)]).await;
    assert_eq!(v["listhostsresponse"]["host"][0]["resourcestate"], "Enabled");

    // A plain user: infrastructure commands are not there for them (401).
    let user = NewUser {
        username: "u1".into(),
        password_hash: stratus_api::auth::hash_password("user-password"),
        first_name: "U".into(),
        last_name: "One".into(),
        email: "u1@example.org".into(),
        timezone: None,
    };
    let change = AdminChange::CreateAccount {
        name: "acct1".into(),
        domain: None,
        account_type: AccountType::User,
        user,
    };
    s.api.admin(None, change).await.unwrap();
    let uid = s
        .api
        .read(|c| c.directory().users.iter().find(|u| u.username == "u1").unwrap().id);
    let keys = stratus_api::bootstrap::ensure_keys(&s.api, uid).await.unwrap();
    for cmd in [
        "listHosts",
        "createZone",
        "listCapacity",
        "prepareHostForMaintenance",
        "listStoragePools",
    ] {
        let (st, _) = s.call(&keys, &[("command", cmd), ("id", &h1)]).await;
        assert_eq!(st, 401, "{cmd}");
    }
    let (st, v) = s.call(&keys, &[("command", "listZones")]).await;
    assert_eq!(st, 200);
    assert_eq!(v["listzonesresponse"]["count"], 1);
}
