//! exportInventory and runWhatIf: root admins only, listed by listApis, the
//! export reads back as an inventory, the what-if job's result is the report,
//! and bad input is refused before any job starts.

mod common;
#[path = "common/tenants.rs"]
mod tenants;

use common::small_cloud;
use stratus_core::cloud::DeploySpec;
use stratus_core::ids::*;
use tenants::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_inventory_and_run_what_if() {
    let (mut cloud, ids) = small_cloud();
    let zone = ZoneId(uuid(&ids.zone));
    let ha = ServiceOfferingId(uuid(&ids.ha));
    let template = TemplateId(uuid(&ids.template));
    let admin = cloud.admin_account();
    for _ in 0..6 {
        cloud
            .deploy_vm(DeploySpec {
                account: Some(admin),
                zone: Some(zone),
                offering: Some(ha),
                template: Some(template),
                start: true,
                ..Default::default()
            })
            .unwrap();
    }
    let s = start_with(cloud, ids.clone(), None).await;
    let user = tenant(&s, "bob").await;

    // Root admin only.
    for cmd in ["exportInventory", "runWhatIf"] {
        let (st, v) = s.call(&user.keys, &[("command", cmd)]).await;
        assert_eq!(st, 401, "{cmd}: {v}");
    }
    let (_, v) = s.admin(&[("command", "listApis"), ("name", "runWhatIf")]).await;
    let api = &v["listapisresponse"]["api"][0];
    assert_eq!(api["name"], "runWhatIf");
    assert_eq!(api["isasync"], true);
    let (_, v) = s.admin(&[("command", "listApis"), ("name", "exportInventory")]).await;
    assert_eq!(v["listapisresponse"]["api"][0]["isasync"], false);

    // The export is the inventory, readable by `stratus whatif`.
    let (st, v) = s.admin(&[("command", "exportInventory")]).await;
    assert_eq!(st, 200, "{v}");
    let inv = &v["exportinventoryresponse"]["inventory"];
    assert_eq!(inv["format"], "stratus-inventory/1");
    let back = stratus_core::whatif::export::from_json(&inv.to_string()).unwrap();
    assert_eq!(back.vm_count(), 6);
    assert_eq!(back.inv.hosts.len(), 2);

    // A what-if job: fail host h1, grow, one setting.
    let h1 = ids.hosts[0].clone();
    let (st, v) = s
        .admin(&[
            ("command", "runWhatIf"),
            ("failhostids", &h1),
            ("grow", "10"),
            ("months", "3"),
            ("settings[0].name", "cpu.overprovisioning.factor"),
            ("settings[0].value", "2"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let jobid = v["runwhatifresponse"]["jobid"].as_str().unwrap().to_string();
    // Another user cannot see the job.
    let (st, _) = s
        .call(&user.keys, &[("command", "queryAsyncJobResult"), ("jobid", &jobid)])
        .await;
    assert_eq!(st, 431);
    let r = s.wait_job(&s.admin, &jobid).await;
    assert_eq!(r["jobstatus"], 1, "{r}");
    let w = &r["jobresult"]["whatif"];
    assert_eq!(w["schema"], "stratus-whatif/1");
    assert_eq!(w["replacement"]["failed_hosts"][0], "h1");
    assert_eq!(w["hypotheticals"][0], "set cpu.overprovisioning.factor = 2");
    assert_eq!(w["growth"]["months"], 3);
    assert_eq!(w["inventory"]["vms"], 6);
    let moved = w["replacement"]["moves"].as_array().unwrap();
    assert!(moved.iter().all(|m| m["from"] == "h1"));

    // Removing h2 (decommission): its VMs are migrated by plan and it no
    // longer counts; the live inventory keeps it.
    let h2 = ids.hosts[1].clone();
    let (st, v) = s.admin(&[("command", "runWhatIf"), ("removehostids", &h2)]).await;
    assert_eq!(st, 200, "{v}");
    let jobid = v["runwhatifresponse"]["jobid"].as_str().unwrap().to_string();
    let r = s.wait_job(&s.admin, &jobid).await;
    assert_eq!(r["jobstatus"], 1, "{r}");
    let w = &r["jobresult"]["whatif"];
    assert_eq!(w["replacement"]["removed_hosts"][0], "h2", "{w}");
    assert_eq!(w["inventory"]["hosts"], 1);
    assert!(
        w["replacement"]["moves"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["from"] == "h2" && m["kind"] == "migrate")
    );
    assert!(
        s.api
            .read(|ctl| ctl.cloud().inv.find_host(HostId(h2.parse().unwrap())).is_some())
    );

    // Bad input: refused synchronously (431), no job.
    for bad in [
        vec![
            ("command", "runWhatIf"),
            ("removeclusterids", "00000000-0000-4000-8000-000000000000"),
        ],
        vec![
            ("command", "runWhatIf"),
            ("failhostids", "00000000-0000-4000-8000-000000000000"),
        ],
        vec![("command", "runWhatIf"), ("addhosts", "c1:two:4x2000/8G")],
        vec![("command", "runWhatIf"), ("grow", "10")],
        vec![
            ("command", "runWhatIf"),
            ("settings[0].name", "cpu.overprovisioning.factor"),
            ("settings[0].value", "much"),
        ],
    ] {
        let (st, v) = s.admin(&bad).await;
        assert_eq!(st, 431, "{bad:?}: {v}");
        assert!(v["runwhatifresponse"]["errortext"].is_string(), "{v}");
    }
    // The live state is untouched by all of it.
    let still = s
        .api
        .read(|ctl| ctl.cloud().inv.hosts.iter().filter(|h| h.name == "h1").count());
    assert_eq!(still, 1);
}

/// runWhatIf jobs are ordinary async jobs: listAsyncJobs shows them, and
/// after a restart on the same Store both listAsyncJobs and
/// queryAsyncJobResult still answer with the report. A what-if still running
/// when the server stops is failed by the restart, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_if_jobs_are_durable_async_jobs() {
    use common::{TestServer, gateway_at};
    use stratus_core::controller::Command;
    use stratus_core::controller::admin::AdminChange;
    use stratus_core::controller::directory::UserId;
    use stratus_core::controller::input::{Input, Reply};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("whatif.db").display());
    let (cloud, ids) = small_cloud();
    let s = TestServer::on(gateway_at(cloud, &url).await, ids.clone()).await;
    let h1 = ids.hosts[0].clone();
    let (st, v) = s.admin(&[("command", "runWhatIf"), ("failhostids", &h1)]).await;
    assert_eq!(st, 200, "{v}");
    let done = v["runwhatifresponse"]["jobid"].as_str().unwrap().to_string();
    let r = s.wait_job(&s.admin, &done).await;
    assert_eq!(r["jobstatus"], 1, "{r}");
    assert_eq!(
        r["cmd"],
        "org.apache.cloudstack.api.command.admin.capacity.RunWhatIfCmd"
    );
    assert!(r["jobresult"]["html"].as_str().unwrap().contains("<svg"), "{r}");
    // One started and never ended: as if the process died while it ran.
    let admin_user = r["userid"].as_str().unwrap().parse::<uuid::Uuid>().unwrap();
    let begin = Input::Admin {
        change: AdminChange::BeginExternalJob {
            command: Command::RunWhatIf,
        },
        by: Some(UserId(admin_user)),
    };
    let Ok(Reply::Created(Ok(created))) = s.api.gw.input(begin).await else {
        panic!("the job was not recorded");
    };
    let running = created.job.unwrap().0.to_string();
    let listed = |v: &serde_json::Value, id: &str| {
        v["listasyncjobsresponse"]["asyncjobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["jobid"] == id)
            .cloned()
    };
    let (_, v) = s.admin(&[("command", "listAsyncJobs")]).await;
    assert_eq!(listed(&v, &done).unwrap()["jobstatus"], 1, "{v}");
    assert_eq!(listed(&v, &running).unwrap()["jobstatus"], 0, "{v}");
    s.api.gw.halt();
    drop(s);

    let (cloud, _) = small_cloud();
    let s = TestServer::on(gateway_at(cloud, &url).await, ids).await;
    let (st, v) = s.admin(&[("command", "queryAsyncJobResult"), ("jobid", &done)]).await;
    assert_eq!(st, 200, "{v}");
    let r = &v["queryasyncjobresultresponse"];
    assert_eq!(r["jobstatus"], 1, "{r}");
    assert_eq!(r["jobresult"]["whatif"]["schema"], "stratus-whatif/1");
    assert_eq!(r["jobresult"]["whatif"]["replacement"]["failed_hosts"][0], "h1");
    let (_, v) = s.admin(&[("command", "listAsyncJobs")]).await;
    assert_eq!(listed(&v, &done).unwrap()["jobstatus"], 1, "{v}");
    let lost = listed(&v, &running).unwrap();
    assert_eq!(lost["jobstatus"], 2, "{lost}");
    assert!(
        lost["jobresult"]["errortext"]
            .as_str()
            .unwrap()
            .contains("restarted before the job finished"),
        "{lost}"
    );
}
