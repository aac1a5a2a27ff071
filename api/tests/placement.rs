//! The commands that show what the allocator would do before an operator
//! acts: findHostsForMigration and planHostMaintenance (read only, admin
//! only), and listHosts details=evidence.

mod common;

use common::TestServer;
use stratus_core::inventory::AccountType;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_change_nothing_and_refuse_like_cloudstack() {
    let s = TestServer::start().await;
    let a = s.admin.clone();
    let vm = s.stopped_vm(&a, "cold").await;
    let user = s.account("u1", None, AccountType::User).await;
    let before = s.fingerprint();
    let h1 = s.ids.hosts[0].clone();

    // The plan for a host without running VMs: nothing to move.
    let (st, v) = s.admin(&[("command", "planHostMaintenance"), ("id", &h1)]).await;
    assert_eq!(st, 200, "{v}");
    let plan = &v["planhostmaintenanceresponse"]["maintenanceplan"];
    assert_eq!(plan["id"], h1.as_str());
    assert_eq!(plan["count"], 0, "{v}");
    assert_eq!(plan["resourcestate"], "Enabled", "previewing does not prepare");

    // A stopped VM cannot migrate: CloudStack's refusal, not an empty list.
    let (st, v) = s
        .admin(&[("command", "findHostsForMigration"), ("virtualmachineid", &vm)])
        .await;
    assert!(st >= 400, "{v}");
    let text = v["findhostsformigrationresponse"]["errortext"].as_str().unwrap_or("");
    assert!(text.contains("cold"), "{text}");

    // Unknown ids and missing parameters.
    let nobody = "00000000-0000-4000-8000-000000000000";
    for params in [
        vec![("command", "planHostMaintenance"), ("id", nobody)],
        vec![("command", "findHostsForMigration"), ("virtualmachineid", nobody)],
        vec![("command", "findHostsForMigration")],
    ] {
        let (st, v) = s.admin(&params).await;
        assert_eq!(st, 431, "{params:?} → {v}");
    }

    // Evidence on request: the fields are there for every host.
    let (_, v) = s.admin(&[("command", "listHosts"), ("details", "evidence")]).await;
    let hosts = v["listhostsresponse"]["host"].as_array().unwrap();
    assert_eq!(hosts.len(), s.ids.hosts.len());
    for h in hosts {
        assert!(h["evidence"].is_array(), "{h}");
    }
    let (_, plain) = s.admin(&[("command", "listHosts")]).await;
    assert!(
        plain["listhostsresponse"]["host"][0].get("evidence").is_none(),
        "only on request"
    );

    // Users may not call them.
    for params in [
        vec![("command", "planHostMaintenance"), ("id", h1.as_str())],
        vec![("command", "findHostsForMigration"), ("virtualmachineid", vm.as_str())],
    ] {
        let (st, _) = s.call(&user, &params).await;
        assert_eq!(st, 401, "{params:?}");
    }
    assert_eq!(s.fingerprint(), before, "previews changed the inventory");
}
