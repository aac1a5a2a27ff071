//! Virtual machine commands over HTTP: envelopes, jobs, refusals that change
//! nothing, and who may see and act on which VM.

mod common;
use common::TestServer;
use serde_json::{Value, json};
use stratus_core::controller::Input;
use stratus_core::inventory::AccountType;
use stratus_core::settings::Scope;

type Keys = (String, String);

fn ids_of(v: &Value) -> Vec<String> {
    v["listvirtualmachinesresponse"]["virtualmachine"]
        .as_array()
        .map(|a| a.iter().map(|x| x["id"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

async fn list(s: &TestServer, k: &Keys, extra: &[(&str, &str)]) -> Value {
    let mut params = vec![("command", "listVirtualMachines")];
    params.extend_from_slice(extra);
    let (st, v) = s.call(k, &params).await;
    assert_eq!(st, 200, "{v}");
    v
}

/// Submits an async VM command and waits for its job: the job result.
async fn job(s: &TestServer, k: &Keys, params: &[(&str, &str)]) -> Value {
    let (st, v) = s.call(k, params).await;
    assert_eq!(st, 200, "{v}");
    let top = format!("{}response", params[0].1.to_lowercase());
    let body = v[&top].as_object().unwrap();
    assert_eq!(body.keys().collect::<Vec<_>>(), ["jobid"], "{v}");
    s.wait_job(k, body["jobid"].as_str().unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_envelopes() {
    let s = TestServer::start().await;
    let a = s.admin.clone();
    let (st, v) = s
        .deploy(&a, &[("name", "web01"), ("displayname", "web 01 (test)")])
        .await;
    assert_eq!(st, 200, "{v}");
    let r = v["deployvirtualmachineresponse"].as_object().unwrap();
    assert_eq!(r.keys().collect::<Vec<_>>(), ["id", "jobid"]);
    let id = r["id"].as_str().unwrap().to_string();
    let done = s.wait_job(&a, r["jobid"].as_str().unwrap()).await;
    assert_eq!(done["jobstatus"], 1);
    assert_eq!(done["jobresultcode"], 0);
    assert_eq!(done["jobinstancetype"], "VirtualMachine");
    assert_eq!(done["jobinstanceid"], id.as_str());
    let vm = &done["jobresult"]["virtualmachine"];
    assert_eq!(vm["state"], "Stopped");
    assert_eq!(vm["name"], "web01");
    assert!(vm["nic"].is_array());

    let v = list(&s, &a, &[]).await;
    let l = &v["listvirtualmachinesresponse"];
    assert_eq!(l["count"], 1);
    assert_eq!(l["virtualmachine"][0]["displayname"], "web 01 (test)");
    assert_eq!(l["virtualmachine"][0]["serviceofferingid"], s.ids.small.as_str());
    assert_eq!(
        list(&s, &a, &[("name", "nope")]).await,
        json!({"listvirtualmachinesresponse": {}})
    );
    assert_eq!(ids_of(&list(&s, &a, &[("state", "stopped")]).await), [id.as_str()]);
    assert_eq!(ids_of(&list(&s, &a, &[("keyword", "WEB")]).await), [id.as_str()]);
    let past = list(&s, &a, &[("page", "2"), ("pagesize", "1")]).await;
    assert_eq!(past, json!({"listvirtualmachinesresponse": {"count": 1}}));

    // Synchronous in CloudStack: the VM object, wrapped.
    let (st, v) = s
        .admin(&[
            ("command", "updateVirtualMachine"),
            ("id", &id),
            ("displayname", "renamed"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["updatevirtualmachineresponse"]["virtualmachine"]["displayname"],
        "renamed"
    );
    let (st, v) = s
        .admin(&[("command", "updateVirtualMachine"), ("id", &id), ("haenable", "true")])
        .await;
    assert_eq!(st, 431, "the small offering does not offer HA: {v}");
    let (st, v) = s
        .admin(&[
            ("command", "changeServiceForVirtualMachine"),
            ("id", &id),
            ("serviceofferingid", &s.ids.ha),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let vm = &v["changeserviceforvirtualmachineresponse"]["virtualmachine"];
    assert_eq!(vm["serviceofferingid"], s.ids.ha.as_str());
    assert_eq!(vm["haenable"], true);

    let done = job(&s, &a, &[("command", "destroyVirtualMachine"), ("id", &id)]).await;
    assert_eq!(done["jobresult"]["virtualmachine"]["state"], "Destroyed");
    // Admins see destroyed VMs.
    assert_eq!(ids_of(&list(&s, &a, &[("state", "Destroyed")]).await), [id.as_str()]);
    let (st, v) = s.admin(&[("command", "recoverVirtualMachine"), ("id", &id)]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["recovervirtualmachineresponse"]["virtualmachine"]["state"], "Stopped");

    job(&s, &a, &[("command", "destroyVirtualMachine"), ("id", &id)]).await;
    let done = job(&s, &a, &[("command", "expungeVirtualMachine"), ("id", &id)]).await;
    assert_eq!(done["jobstatus"], 1, "{done}");
    assert_eq!(done["jobresult"], json!({"success": true}));
    // Expunged VMs are never listed, even by id.
    assert_eq!(
        list(&s, &a, &[("id", &id)]).await,
        json!({"listvirtualmachinesresponse": {}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_jobs_come_back_through_query_async_job_result() {
    let s = TestServer::start().await;
    let a = s.admin.clone();
    // The test hosts have no agents: a started deploy fails at its first driver call.
    let t0 = std::time::Instant::now();
    let (st, v) = s.deploy(&a, &[("startvm", "true"), ("name", "nohost")]).await;
    assert_eq!(st, 200, "{v}");
    let done = s
        .wait_job(&a, v["deployvirtualmachineresponse"]["jobid"].as_str().unwrap())
        .await;
    assert!(t0.elapsed().as_secs() < 30, "the job ended by itself");
    assert_eq!(done["jobstatus"], 2, "{done}");
    assert_eq!(done["jobresult"]["errorcode"], done["jobresultcode"]);
    assert!(done["jobresult"]["errortext"].as_str().is_some_and(|t| !t.is_empty()));
    let failed = v["deployvirtualmachineresponse"]["id"].as_str().unwrap();
    let l = list(&s, &a, &[("id", failed)]).await;
    assert_eq!(l["listvirtualmachinesresponse"]["virtualmachine"][0]["state"], "Error");
    // Only a stopped VM changes offering; anything else is a parameter problem.
    let (st, v) = s
        .admin(&[
            ("command", "changeServiceForVirtualMachine"),
            ("id", failed),
            ("serviceofferingid", &s.ids.ha),
        ])
        .await;
    assert_eq!(st, 431, "{v}");

    // No host can hold 16 cores: the allocator refuses with 533 and says why.
    let (st, v) = s
        .admin(&[
            ("command", "createServiceOffering"),
            ("name", "huge"),
            ("cpunumber", "16"),
            ("cpuspeed", "1000"),
            ("memory", "1024"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let huge = v["createserviceofferingresponse"]["serviceoffering"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = s
        .deploy(&a, &[("startvm", "true"), ("serviceofferingid", huge.as_str())])
        .await;
    assert_eq!(st, 200, "{v}");
    let done = s
        .wait_job(&a, v["deployvirtualmachineresponse"]["jobid"].as_str().unwrap())
        .await;
    assert_eq!(done["jobstatus"], 2, "{done}");
    assert_eq!(done["jobresultcode"], 533, "{done}");
    assert_eq!(done["jobresult"]["errorcode"], 533);

    // A stopped VM's start also fails at the host, and the VM is Stopped again.
    let id = s.stopped_vm(&a, "later").await;
    let done = job(&s, &a, &[("command", "startVirtualMachine"), ("id", &id)]).await;
    assert_eq!(done["jobstatus"], 2, "{done}");
    let v = list(&s, &a, &[("id", &id)]).await;
    assert_eq!(
        v["listvirtualmachinesresponse"]["virtualmachine"][0]["state"],
        "Stopped"
    );
    // Migration needs a running VM: refused at submission, nothing started.
    let (st, v) = s
        .admin(&[("command", "migrateVirtualMachine"), ("virtualmachineid", &id)])
        .await;
    assert_eq!(st, 431, "{v}");
    let (st, v) = s
        .admin(&[
            ("command", "migrateVirtualMachine"),
            ("virtualmachineid", &id),
            ("storageid", "0f0f0f0f-0000-4000-8000-000000000000"),
        ])
        .await;
    assert_eq!(st, 431, "{v}");
    assert!(
        v["migratevirtualmachineresponse"]["errortext"]
            .as_str()
            .unwrap()
            .contains("not supported")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let s = TestServer::start().await;
    let a = s.admin.clone();
    let id = s.stopped_vm(&a, "keep").await;
    let before = s.state();
    let ids = s.ids.clone();
    let (st, v) = s
        .admin(&[
            ("command", "deployVirtualMachine"),
            ("serviceofferingid", &ids.small),
            ("templateid", &ids.template),
        ])
        .await;
    assert_eq!(st, 431);
    assert_eq!(
        v["deployvirtualmachineresponse"]["errortext"],
        "Unable to execute API command deployvirtualmachine due to missing parameter zoneid"
    );
    let ghost = "0f0f0f0f-0000-4000-8000-000000000000";
    for (param, kind) in [
        ("serviceofferingid", "service offering"),
        ("templateid", "template"),
        ("zoneid", "zone"),
        ("diskofferingid", "disk offering"),
        ("networkids", "network"),
    ] {
        let (st, v) = s.deploy(&a, &[(param, ghost)]).await;
        assert_eq!(st, 431, "{param}: {v}");
        assert_eq!(
            v["deployvirtualmachineresponse"]["errortext"],
            format!("Unable to find {kind} by id {ghost}"),
            "{param}"
        );
    }
    let (st, _) = s.deploy(&a, &[("zoneid", "not-a-uuid")]).await;
    assert_eq!(st, 431);
    let (st, _) = s.deploy(&a, &[("startvm", "maybe")]).await;
    assert_eq!(st, 431);
    for cmd in [
        "startVirtualMachine",
        "stopVirtualMachine",
        "rebootVirtualMachine",
        "destroyVirtualMachine",
        "expungeVirtualMachine",
        "recoverVirtualMachine",
        "updateVirtualMachine",
    ] {
        let (st, v) = s.admin(&[("command", cmd), ("id", ghost)]).await;
        assert_eq!(st, 431, "{cmd}: {v}");
        let top = format!("{}response", cmd.to_lowercase());
        assert_eq!(
            v[&top]["errortext"],
            format!("Unable to find virtual machine by id {ghost}")
        );
        let (st, v) = s.admin(&[("command", cmd)]).await;
        assert_eq!(st, 431);
        assert!(v[&top]["errortext"].as_str().unwrap().ends_with("missing parameter id"));
    }
    let (st, _) = s
        .admin(&[("command", "migrateVirtualMachine"), ("virtualmachineid", ghost)])
        .await;
    assert_eq!(st, 431);
    let (st, _) = s
        .admin(&[
            ("command", "changeServiceForVirtualMachine"),
            ("id", &id),
            ("serviceofferingid", ghost),
        ])
        .await;
    assert_eq!(st, 431);
    let (st, _) = s
        .admin(&[("command", "updateVirtualMachine"), ("id", &id), ("name", "other")])
        .await;
    assert_eq!(st, 431);
    let (st, _) = s
        .admin(&[("command", "listVirtualMachines"), ("details", "everything")])
        .await;
    assert_eq!(st, 431);
    assert_eq!(s.state(), before);
    // Refused by the core (which then has seen the time move on, so no hash check).
    let (st, _) = s.deploy(&a, &[("details[0].cpuNumber", "2")]).await;
    assert_eq!(st, 431, "the small offering is not customized");
    let (st, _) = s.deploy(&a, &[("name", "keep")]).await;
    assert_eq!(st, 431, "names are unique in an account");
    assert_eq!(list(&s, &a, &[]).await["listvirtualmachinesresponse"]["count"], 1);
    // A removed offering takes no new VMs.
    let (st, _) = s.admin(&[("command", "deleteServiceOffering"), ("id", &ids.ha)]).await;
    assert_eq!(st, 200);
    let (st, v) = s.deploy(&a, &[("serviceofferingid", ids.ha.as_str())]).await;
    assert_eq!(st, 431, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_see_or_touch_each_others_vms() {
    let s = TestServer::start().await;
    let ka = s.account("alice", None, AccountType::User).await;
    let kb = s.account("bob", None, AccountType::User).await;
    let vm = s.stopped_vm(&ka, "alices").await;
    assert_eq!(ids_of(&list(&s, &ka, &[]).await), [vm.as_str()]);
    let before = s.state();
    let empty = json!({"listvirtualmachinesresponse": {}});
    assert_eq!(list(&s, &kb, &[]).await, empty);
    assert_eq!(list(&s, &kb, &[("id", &vm)]).await, empty);
    assert_eq!(list(&s, &kb, &[("ids", &vm)]).await, empty);
    assert_eq!(list(&s, &kb, &[("listall", "true")]).await, empty);
    let (st, _) = s
        .call(&kb, &[("command", "listVirtualMachines"), ("account", "alice")])
        .await;
    assert_eq!(st, 531, "naming another account is refused");
    let not_found = format!("Unable to find virtual machine by id {vm}");
    for cmd in [
        "startVirtualMachine",
        "stopVirtualMachine",
        "rebootVirtualMachine",
        "destroyVirtualMachine",
        "recoverVirtualMachine",
        "expungeVirtualMachine",
        "updateVirtualMachine",
    ] {
        let (st, v) = s
            .call(&kb, &[("command", cmd), ("id", &vm), ("displayname", "x")])
            .await;
        assert_eq!(st, 431, "{cmd}: {v}");
        let top = format!("{}response", cmd.to_lowercase());
        assert_eq!(v[&top]["errortext"], not_found.as_str(), "{cmd}");
    }
    let (st, _) = s
        .call(
            &kb,
            &[
                ("command", "changeServiceForVirtualMachine"),
                ("id", &vm),
                ("serviceofferingid", &s.ids.ha),
            ],
        )
        .await;
    assert_eq!(st, 431);
    let (st, _) = s
        .call(&kb, &[("command", "migrateVirtualMachine"), ("virtualmachineid", &vm)])
        .await;
    assert_eq!(st, 401, "migration is for the root admin");
    let alice_domain = s.api.read(|c| c.cloud().root_domain()).to_string();
    let (st, v) = s
        .deploy(&kb, &[("account", "alice"), ("domainid", alice_domain.as_str())])
        .await;
    assert_eq!(st, 431, "{v}");
    // Users may not pass hostid; CloudStack ignores it rather than refusing.
    let ghost = "0f0f0f0f-0000-4000-8000-000000000000";
    assert_eq!(ids_of(&list(&s, &ka, &[("hostid", ghost)]).await), [vm.as_str()]);
    assert_eq!(s.state(), before);

    // The root admin sees everything only when asking for it, and acts on it.
    let admin = s.admin.clone();
    let mine = s.stopped_vm(&admin, "admins").await;
    assert_eq!(ids_of(&list(&s, &admin, &[]).await), [mine.as_str()]);
    assert_eq!(
        ids_of(&list(&s, &admin, &[("listall", "true")]).await),
        [vm.clone(), mine]
    );
    assert_eq!(ids_of(&list(&s, &admin, &[("id", &vm)]).await), [vm.as_str()]);
    let done = job(&s, &admin, &[("command", "destroyVirtualMachine"), ("id", &vm)]).await;
    assert_eq!(done["jobstatus"], 1);
    // Users do not see their destroyed VMs (allow.user.view.destroyed.vm is off).
    assert_eq!(list(&s, &ka, &[]).await, empty);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_admins_see_their_subtree_only() {
    let s = TestServer::start().await;
    let d1 = s.domain("d1", None).await;
    let sub = s.domain("sub", Some(d1)).await;
    let d2 = s.domain("d2", None).await;
    let da = s.account("d1admin", Some(d1), AccountType::DomainAdmin).await;
    let u1 = s.account("u1", Some(sub), AccountType::User).await;
    let u2 = s.account("u2", Some(d2), AccountType::User).await;
    let in_sub = s.stopped_vm(&u1, "insub").await;
    let in_d2 = s.stopped_vm(&u2, "ind2").await;
    let empty = json!({"listvirtualmachinesresponse": {}});
    // By default only the caller's own account, even for admins.
    assert_eq!(list(&s, &da, &[]).await, empty);
    assert_eq!(ids_of(&list(&s, &da, &[("listall", "true")]).await), [in_sub.as_str()]);
    assert_eq!(ids_of(&list(&s, &da, &[("id", &in_sub)]).await), [in_sub.as_str()]);
    assert_eq!(list(&s, &da, &[("id", &in_d2)]).await, empty);
    let sub_id = sub.to_string();
    assert_eq!(
        ids_of(&list(&s, &da, &[("domainid", &sub_id)]).await),
        [in_sub.as_str()]
    );
    let (st, _) = s
        .call(
            &da,
            &[("command", "listVirtualMachines"), ("domainid", &d2.to_string())],
        )
        .await;
    assert_eq!(st, 531);
    let (st, v) = s
        .call(
            &da,
            &[("command", "stopVirtualMachine"), ("id", &in_d2), ("forced", "true")],
        )
        .await;
    assert_eq!(st, 431, "{v}");
    let (st, v) = s
        .call(
            &da,
            &[
                ("command", "updateVirtualMachine"),
                ("id", &in_sub),
                ("displayname", "managed"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // A domain admin may deploy for an account of its subtree.
    let (st, v) = s
        .deploy(
            &da,
            &[("account", "u1"), ("domainid", sub_id.as_str()), ("name", "fordomain")],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = s
        .deploy(&da, &[("account", "u2"), ("domainid", d2.to_string().as_str())])
        .await;
    assert_eq!(st, 431);
    // The root admin: everything with listall, one domain with domainid.
    let all = ids_of(&list(&s, &s.admin, &[("listall", "true")]).await);
    assert_eq!(all.len(), 3);
    let d2_id = d2.to_string();
    assert_eq!(ids_of(&list(&s, &s.admin, &[("domainid", &d2_id)]).await), [in_d2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expunge_and_recover_need_an_admin_or_the_account_setting() {
    let s = TestServer::start().await;
    let ku = s.account("carol", None, AccountType::User).await;
    let vm = s.stopped_vm(&ku, "carols").await;
    let before = s.state();
    let (st, v) = s
        .call(
            &ku,
            &[("command", "destroyVirtualMachine"), ("id", &vm), ("expunge", "true")],
        )
        .await;
    assert_eq!(st, 531, "{v}");
    assert_eq!(s.state(), before);
    let done = job(&s, &ku, &[("command", "destroyVirtualMachine"), ("id", &vm)]).await;
    assert_eq!(done["jobstatus"], 1);
    for cmd in ["recoverVirtualMachine", "expungeVirtualMachine"] {
        let (st, v) = s.call(&ku, &[("command", cmd), ("id", &vm)]).await;
        assert_eq!(st, 531, "{cmd}: {v}");
    }
    let account = s.api.read(|c| {
        let inv = &c.cloud().inv;
        inv.accounts.iter().find(|a| a.name == "carol").unwrap().id
    });
    for name in ["allow.user.expunge.recover.vm", "allow.user.view.destroyed.vm"] {
        let input = Input::UpdateSetting {
            name: name.into(),
            scope: Scope::Account(account),
            value: "true".into(),
        };
        s.api.input_done(input).await.unwrap();
    }
    assert_eq!(ids_of(&list(&s, &ku, &[]).await), [vm.as_str()]);
    let (st, v) = s.call(&ku, &[("command", "recoverVirtualMachine"), ("id", &vm)]).await;
    assert_eq!(st, 200, "{v}");
    let done = job(
        &s,
        &ku,
        &[("command", "destroyVirtualMachine"), ("id", &vm), ("expunge", "true")],
    )
    .await;
    assert_eq!(done["jobstatus"], 1, "{done}");
    assert_eq!(list(&s, &ku, &[]).await, json!({"listvirtualmachinesresponse": {}}));
}
