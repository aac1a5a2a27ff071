//! deleteHost, deleteCluster, deletePod: CloudStack's preconditions and error
//! codes (431 for bad or unknown ids, 530 for refusals, 401 for non-admins),
//! a refusal changes nothing, what goes is gone from every list and from the
//! capacity, and the deletions survive a restart on the same Store. (A host
//! that VMs still use is refused even when forced: `core/tests/remove.rs` and
//! `sim/tests/remove_host.rs`, where VMs really run; the agent's credentials:
//! `runtime/tests/deleted_host.rs`.)

mod common;
use common::{TestServer, gateway_at, small_cloud};
use serde_json::Value;
use stratus_core::inventory::AccountType;

fn err(v: &Value, top: &str) -> (i64, i64, String) {
    let e = &v[top];
    (
        e["errorcode"].as_i64().unwrap_or(0),
        e["cserrorcode"].as_i64().unwrap_or(0),
        e["errortext"].as_str().unwrap_or("").to_string(),
    )
}

async fn count(s: &TestServer, command: &str, key: &str, item: &str) -> usize {
    let (st, v) = s.admin(&[("command", command)]).await;
    assert_eq!(st, 200, "{v}");
    v[key][item].as_array().map_or(0, |a| a.len())
}

async fn maintenance(s: &TestServer, host: &str) {
    let (st, v) = s.admin(&[("command", "prepareHostForMaintenance"), ("id", host)]).await;
    assert_eq!(st, 200, "{v}");
    let job = v["preparehostformaintenanceresponse"]["jobid"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.wait_job(&s.admin.clone(), &job).await;
    assert_eq!(r["jobstatus"], 1, "{r}");
}

async fn cpu_total(s: &TestServer) -> u64 {
    let (_, v) = s.admin(&[("command", "listCapacity"), ("type", "1")]).await;
    v["listcapacityresponse"]["capacity"][0]["capacitytotal"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_cloudstack_errors_and_change_nothing() {
    let s = TestServer::start().await;
    let h1 = s.ids.hosts[0].clone();
    let mut others = Vec::new();
    for t in [AccountType::User, AccountType::DomainAdmin] {
        others.push((t, s.account(&format!("who-{t}").to_lowercase(), None, t).await));
    }
    let before = s.fingerprint();
    // Bad and unknown ids: 431.
    for (cmd, id) in [
        ("deleteHost", "not-a-uuid"),
        ("deleteHost", "00000000-0000-4000-8000-000000000000"),
        ("deleteCluster", "00000000-0000-4000-8000-000000000000"),
        ("deletePod", "00000000-0000-4000-8000-000000000000"),
    ] {
        let (st, v) = s.admin(&[("command", cmd), ("id", id)]).await;
        assert_eq!(st, 431, "{cmd} {id}: {v}");
        assert_eq!(err(&v, &format!("{}response", cmd.to_lowercase())).0, 431);
    }
    let (st, _) = s.admin(&[("command", "deleteHost")]).await;
    assert_eq!(st, 431, "id is required");
    // Not in maintenance, not forced: CloudStack's CloudRuntimeException.
    let (st, v) = s.admin(&[("command", "deleteHost"), ("id", &h1)]).await;
    assert_eq!(st, 530, "{v}");
    let (code, cs, text) = err(&v, "deletehostresponse");
    assert_eq!((code, cs), (530, 4250));
    assert!(
        text.contains("not in maintenance mode") && text.contains("forced deletion"),
        "{text}"
    );
    // A cluster with hosts, a pod with a cluster.
    let (st, v) = s.admin(&[("command", "deleteCluster"), ("id", &s.ids.cluster)]).await;
    assert_eq!(st, 530, "{v}");
    assert!(
        err(&v, "deleteclusterresponse")
            .2
            .contains("still has 2 host(s): h1, h2"),
        "{v}"
    );
    let (st, v) = s.admin(&[("command", "deletePod"), ("id", &s.ids.pod)]).await;
    assert_eq!(st, 530, "{v}");
    assert!(
        err(&v, "deletepodresponse").2.contains("still has 1 cluster(s): c1"),
        "{v}"
    );
    // Root admin only: a user and a domain admin get 401, as for every admin command.
    for (t, keys) in &others {
        let (st, v) = s
            .call(keys, &[("command", "deleteHost"), ("id", &h1), ("forced", "true")])
            .await;
        assert_eq!(st, 401, "{t}: {v}");
    }
    assert_eq!(s.fingerprint(), before, "no refusal changed anything");
    assert_eq!(count(&s, "listHosts", "listhostsresponse", "host").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_then_the_cluster_then_the_pod_go_and_stay_gone_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("delete.db").display());
    let (cloud, ids) = small_cloud();
    let s = TestServer::on(gateway_at(cloud, &url).await, ids.clone()).await;
    let (h1, h2) = (ids.hosts[0].clone(), ids.hosts[1].clone());
    let cpu_before = cpu_total(&s).await;
    // h1 drained first (CloudStack's way), h2 forced (empty, Enabled).
    maintenance(&s, &h1).await;
    let (st, v) = s.admin(&[("command", "deleteHost"), ("id", &h1)]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["deletehostresponse"]["success"], true, "{v}");
    assert_eq!(cpu_total(&s).await, cpu_before / 2, "h1's capacity left the totals");
    let (st, v) = s.admin(&[("command", "listHosts"), ("id", &h1)]).await;
    assert_eq!(st, 200);
    assert_eq!(
        v["listhostsresponse"].get("count").and_then(Value::as_u64).unwrap_or(0),
        0,
        "{v}"
    );
    // A second delete of the same host: it is unknown now.
    let (st, _) = s.admin(&[("command", "deleteHost"), ("id", &h1)]).await;
    assert_eq!(st, 431);
    let (st, v) = s
        .admin(&[("command", "deleteHost"), ("id", &h2), ("forced", "true")])
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(count(&s, "listHosts", "listhostsresponse", "host").await, 0);
    let (st, v) = s.admin(&[("command", "deleteCluster"), ("id", &ids.cluster)]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(count(&s, "listClusters", "listclustersresponse", "cluster").await, 0);
    assert_eq!(
        count(&s, "listStoragePools", "liststoragepoolsresponse", "storagepool").await,
        0,
        "the cluster's own (empty) pool went with it"
    );
    let (st, v) = s.admin(&[("command", "deletePod"), ("id", &ids.pod)]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(count(&s, "listPods", "listpodsresponse", "pod").await, 0);
    // The audit trail has them.
    let (_, v) = s.admin(&[("command", "listEvents"), ("pagesize", "100")]).await;
    let kinds: Vec<&str> = v["listeventsresponse"]["event"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["type"].as_str()).collect())
        .unwrap_or_default();
    for k in ["HOST.DELETE", "CLUSTER.DELETE", "POD.DELETE"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    s.api.gw.halt();
    drop(s);

    // Recovered from the Store (snapshot + journal, hash-checked): still gone.
    let (cloud, _) = small_cloud();
    let s = TestServer::on(gateway_at(cloud, &url).await, ids.clone()).await;
    assert_eq!(count(&s, "listHosts", "listhostsresponse", "host").await, 0);
    assert_eq!(count(&s, "listClusters", "listclustersresponse", "cluster").await, 0);
    assert_eq!(count(&s, "listPods", "listpodsresponse", "pod").await, 0);
    assert!(s.api.read(|c| c.cloud().audit().ok()));
    // A new pod, cluster and host may take the old names.
    let (st, v) = s
        .admin(&[
            ("command", "createPod"),
            ("zoneid", &ids.zone),
            ("name", "p1"),
            ("gateway", "10.1.0.1"),
            ("netmask", "255.255.255.0"),
            ("startip", "10.1.0.10"),
            ("endip", "10.1.0.20"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
}
