//! Volumes and snapshots over HTTP: envelopes, errors, tenant isolation.

mod common;
#[path = "common/tenants.rs"]
mod tenants;

use common::TestServer;
use serde_json::{Value, json};
use tenants::*;

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

async fn create_volume(s: &TestServer, t: &Tenant, name: &str) -> (String, String) {
    let (st, v) = s
        .call(
            &t.keys,
            &[
                ("command", "createVolume"),
                ("name", name),
                ("diskofferingid", &s.ids.disk),
                ("zoneid", &s.ids.zone),
            ],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let r = &v["createvolumeresponse"];
    assert_eq!(keys_of(r), ["id", "jobid"], "create-style answer: {r}");
    (r["id"].as_str().unwrap().into(), r["jobid"].as_str().unwrap().into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_lifecycle() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let (vol, job) = create_volume(&s, &a, "data1").await;
    let r = s.wait_job(&a.keys, &job).await;
    assert_eq!(r["jobstatus"], 1, "{r}");
    assert_eq!(r["jobinstancetype"], "Volume");
    assert_eq!(r["jobinstanceid"], vol.as_str());
    assert_eq!(r["jobresult"]["volume"]["id"], vol.as_str());

    let (st, v) = s.call(&a.keys, &[("command", "listVolumes")]).await;
    assert_eq!(st, 200);
    let l = &v["listvolumesresponse"];
    assert_eq!(l["count"], 1, "{v}");
    let item = &l["volume"][0];
    assert_eq!(item["name"], "data1");
    assert_eq!(item["type"], "DATADISK");
    assert_eq!(item["state"], "Allocated");
    assert_eq!(item["account"], "alice");
    assert!(item.get("storageid").is_none(), "storageid is for admins: {item}");

    // An admin lists its own account by default, any volume by id.
    let (_, v) = s.admin(&[("command", "listVolumes")]).await;
    assert_eq!(v, json!({"listvolumesresponse": {}}));
    let (_, v) = s.admin(&[("command", "listVolumes"), ("id", &vol)]).await;
    assert_eq!(v["listvolumesresponse"]["count"], 1);
    let (_, v) = s.admin(&[("command", "listVolumes"), ("listall", "true")]).await;
    assert_eq!(v["listvolumesresponse"]["count"], 1);

    let vm = stopped_vm(&s, &a, "web1").await;
    let (st, v) = s
        .call(
            &a.keys,
            &[("command", "attachVolume"), ("id", &vol), ("virtualmachineid", &vm)],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let r = &v["attachvolumeresponse"];
    assert_eq!(keys_of(r), ["jobid"]);
    let r = s.wait_job(&a.keys, r["jobid"].as_str().unwrap()).await;
    assert_eq!(r["jobstatus"], 1, "{r}");
    assert_eq!(r["jobresult"]["volume"]["virtualmachineid"], vm.as_str());
    assert_eq!(r["jobresult"]["volume"]["deviceid"], 1);

    let (_, v) = s
        .call(&a.keys, &[("command", "listVolumes"), ("virtualmachineid", &vm)])
        .await;
    assert_eq!(v["listvolumesresponse"]["count"], 2, "root and data: {v}");
    let (_, v) = s
        .call(
            &a.keys,
            &[("command", "listVolumes"), ("virtualmachineid", &vm), ("type", "ROOT")],
        )
        .await;
    assert_eq!(v["listvolumesresponse"]["count"], 1);
    assert_eq!(v["listvolumesresponse"]["volume"][0]["deviceid"], 0);

    // Paging: count is the total, the page is one item.
    let (_, v) = s
        .call(&a.keys, &[("command", "listVolumes"), ("page", "2"), ("pagesize", "1")])
        .await;
    assert_eq!(v["listvolumesresponse"]["count"], 2);
    assert_eq!(v["listvolumesresponse"]["volume"].as_array().unwrap().len(), 1);

    // An attached volume cannot be deleted; the refusal is the core's.
    let (st, v) = s.call(&a.keys, &[("command", "deleteVolume"), ("id", &vol)]).await;
    assert_eq!(st, 431, "{v}");
    assert!(
        v["deletevolumeresponse"]["errortext"]
            .as_str()
            .unwrap()
            .contains("attached")
    );

    let (st, v) = s
        .call(
            &a.keys,
            &[
                ("command", "detachVolume"),
                ("virtualmachineid", &vm),
                ("deviceid", "1"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let r = s
        .wait_job(&a.keys, v["detachvolumeresponse"]["jobid"].as_str().unwrap())
        .await;
    assert_eq!(r["jobstatus"], 1, "{r}");
    assert!(r["jobresult"]["volume"].get("virtualmachineid").is_none());

    // deleteVolume is synchronous: done when it answers.
    let (st, v) = s.call(&a.keys, &[("command", "deleteVolume"), ("id", &vol)]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!({"deletevolumeresponse": {"success": true}}));
    let (_, v) = s.call(&a.keys, &[("command", "listVolumes"), ("id", &vol)]).await;
    assert_eq!(v, json!({"listvolumesresponse": {}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_bad_input_changes_nothing() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let (disk, zone) = (s.ids.disk.clone(), s.ids.zone.clone());
    let unknown = "6b4d5c3e-0000-4000-8000-000000000001";
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("command", "createVolume"),
                ("diskofferingid", &disk),
                ("zoneid", &zone),
            ],
            "missing parameter name",
        ),
        (
            vec![("command", "createVolume"), ("name", "x"), ("zoneid", &zone)],
            "disk Offering",
        ),
        (
            vec![("command", "createVolume"), ("name", "x"), ("diskofferingid", &disk)],
            "missing parameter zoneid",
        ),
        (
            vec![
                ("command", "createVolume"),
                ("name", "x"),
                ("diskofferingid", "nope"),
                ("zoneid", &zone),
            ],
            "diskofferingid",
        ),
        (
            vec![
                ("command", "createVolume"),
                ("name", "x"),
                ("diskofferingid", unknown),
                ("zoneid", &zone),
            ],
            unknown,
        ),
        (
            vec![
                ("command", "createVolume"),
                ("name", "x"),
                ("diskofferingid", &disk),
                ("zoneid", unknown),
            ],
            unknown,
        ),
        (
            vec![
                ("command", "createVolume"),
                ("name", "x"),
                ("diskofferingid", &disk),
                ("zoneid", &zone),
                ("size", "20"),
            ],
            "fixed size",
        ),
        (
            vec![
                ("command", "createVolume"),
                ("name", "x"),
                ("snapshotid", unknown),
                ("zoneid", &zone),
            ],
            "snapshot",
        ),
        (
            vec![("command", "attachVolume"), ("id", unknown)],
            "missing parameter virtualmachineid",
        ),
        (
            vec![
                ("command", "attachVolume"),
                ("id", unknown),
                ("virtualmachineid", unknown),
            ],
            "Unable to find volume",
        ),
        (vec![("command", "detachVolume")], "volume id"),
        (
            vec![("command", "deleteVolume"), ("id", unknown)],
            "Unable to find volume",
        ),
        (vec![("command", "createSnapshot")], "missing parameter volumeid"),
        (
            vec![("command", "deleteSnapshot"), ("id", unknown)],
            "Unable to find snapshot",
        ),
        (vec![("command", "listVolumes"), ("id", "12")], "id"),
        (vec![("command", "listSnapshots"), ("pagesize", "0")], "Page size"),
    ];
    let before = hash(&s);
    for (ps, text) in cases {
        let (st, v) = s.call(&a.keys, &ps).await;
        let top = format!("{}response", ps[0].1.to_lowercase());
        assert_eq!(st, 431, "{ps:?}: {v}");
        assert_eq!(v[&top]["errorcode"], 431, "{ps:?}: {v}");
        let et = v[&top]["errortext"].as_str().unwrap();
        assert!(et.contains(text), "{ps:?}: {et}");
    }
    assert_eq!(before, hash(&s), "refused calls changed the state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_isolated_between_tenants() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let b = tenant(&s, "bob").await;
    let (vol, job) = create_volume(&s, &a, "private").await;
    s.wait_job(&a.keys, &job).await;
    let bvm = stopped_vm(&s, &b, "bobvm").await;
    let avm = stopped_vm(&s, &a, "alicevm").await;

    let before = hash(&s);
    // Bob sees his VM's root volume only.
    for ps in [
        vec![("command", "listVolumes")],
        vec![("command", "listVolumes"), ("listall", "true")],
    ] {
        let (st, v) = s.call(&b.keys, &ps).await;
        assert_eq!(st, 200);
        let l = &v["listvolumesresponse"];
        assert_eq!(l["count"], 1, "{ps:?}: {v}");
        assert_eq!(l["volume"][0]["account"], "bob");
    }
    for ps in [
        vec![("command", "listVolumes"), ("id", &vol)],
        vec![("command", "listVolumes"), ("virtualmachineid", &avm)],
    ] {
        let (st, v) = s.call(&b.keys, &ps).await;
        assert_eq!(st, 200);
        assert_eq!(v, json!({"listvolumesresponse": {}}), "{ps:?}");
    }
    for ps in [
        vec![("command", "attachVolume"), ("id", &vol), ("virtualmachineid", &bvm)],
        vec![("command", "attachVolume"), ("id", &vol), ("virtualmachineid", &avm)],
        vec![("command", "detachVolume"), ("id", &vol)],
        vec![("command", "deleteVolume"), ("id", &vol)],
        vec![("command", "createSnapshot"), ("volumeid", &vol)],
        vec![("command", "queryAsyncJobResult"), ("jobid", &job)],
    ] {
        let (st, v) = s.call(&b.keys, &ps).await;
        assert_eq!(st, 431, "{ps:?}: {v}");
    }
    let (_, v) = s
        .call(&b.keys, &[("command", "listAsyncJobs"), ("listall", "true")])
        .await;
    let jobs = v["listasyncjobsresponse"]["asyncjobs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(jobs.iter().all(|j| j["jobid"] != job.as_str()), "{v}");
    // Acting for another account is refused as a permission error.
    let (st, v) = s
        .call(
            &b.keys,
            &[
                ("command", "createVolume"),
                ("name", "sneaky"),
                ("diskofferingid", &s.ids.disk),
                ("zoneid", &s.ids.zone),
                ("account", "alice"),
            ],
        )
        .await;
    assert_eq!(st, 531, "{v}");
    let (_, v) = s
        .call(&b.keys, &[("command", "listVolumes"), ("account", "alice")])
        .await;
    assert_eq!(v["listvolumesresponse"]["errorcode"], 531);
    assert_eq!(before, hash(&s), "B's refused calls changed the state");

    // The admin may create for alice.
    let (st, v) = s
        .admin(&[
            ("command", "createVolume"),
            ("name", "for-alice"),
            ("diskofferingid", &s.ids.disk),
            ("zoneid", &s.ids.zone),
            ("account", "alice"),
            ("domainid", &a.domain_id),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    s.wait_job(&s.admin, v["createvolumeresponse"]["jobid"].as_str().unwrap())
        .await;
    let (_, v) = s
        .call(&a.keys, &[("command", "listVolumes"), ("type", "DATADISK")])
        .await;
    assert_eq!(v["listvolumesresponse"]["count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots() {
    let (s, seed) = start_seeded().await;
    let owner = seeded_user(&s).await;
    let other = tenant(&s, "bob").await;

    let (st, v) = s.call(&owner.keys, &[("command", "listSnapshots")]).await;
    assert_eq!(st, 200);
    let l = &v["listsnapshotsresponse"];
    assert_eq!(l["count"], 1, "{v}");
    let snap = &l["snapshot"][0];
    assert_eq!(snap["id"], seed.snapshot.as_str());
    assert_eq!(snap["volumeid"], seed.volume.as_str());
    assert_eq!(snap["state"], "BackedUp");
    assert_eq!(snap["snapshottype"], "MANUAL");
    assert_eq!(snap["account"], "seeded");
    let (_, v) = s
        .call(
            &owner.keys,
            &[
                ("command", "listSnapshots"),
                ("volumeid", &seed.volume),
                ("snapshottype", "RECURRING"),
            ],
        )
        .await;
    assert_eq!(v, json!({"listsnapshotsresponse": {}}));

    // Another tenant sees and touches none of it.
    let before = hash(&s);
    let (_, v) = s.call(&other.keys, &[("command", "listSnapshots")]).await;
    assert_eq!(v, json!({"listsnapshotsresponse": {}}));
    let (_, v) = s
        .call(&other.keys, &[("command", "listSnapshots"), ("id", &seed.snapshot)])
        .await;
    assert_eq!(v, json!({"listsnapshotsresponse": {}}));
    for ps in [
        vec![("command", "deleteSnapshot"), ("id", &seed.snapshot)],
        vec![("command", "createSnapshot"), ("volumeid", &seed.volume)],
    ] {
        let (st, v) = s.call(&other.keys, &ps).await;
        assert_eq!(st, 431, "{ps:?}: {v}");
    }
    assert_eq!(before, hash(&s));

    // createSnapshot is create-style: the id is the new snapshot. The test
    // hosts run no agents, so the backup itself fails and is undone.
    let (st, v) = s
        .call(
            &owner.keys,
            &[
                ("command", "createSnapshot"),
                ("volumeid", &seed.volume),
                ("name", "again"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let r = &v["createsnapshotresponse"];
    assert_eq!(keys_of(r), ["id", "jobid"]);
    let id = r["id"].as_str().unwrap().to_string();
    let j = s.wait_job(&owner.keys, r["jobid"].as_str().unwrap()).await;
    assert_eq!(j["jobinstancetype"], "Snapshot");
    assert_eq!(j["jobinstanceid"], id.as_str());
    assert_eq!(j["jobstatus"], 2, "no agent can take the call: {j}");
    assert_eq!(j["jobresult"]["errorcode"], 530);

    // A volume that is not on storage yet has nothing to snapshot.
    let (vol, job) = create_volume(&s, &owner, "fresh").await;
    s.wait_job(&owner.keys, &job).await;
    let (st, v) = s
        .call(&owner.keys, &[("command", "createSnapshot"), ("volumeid", &vol)])
        .await;
    assert_eq!(st, 431, "{v}");

    let (st, v) = s
        .call(&owner.keys, &[("command", "deleteSnapshot"), ("id", &seed.snapshot)])
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(keys_of(&v["deletesnapshotresponse"]), ["jobid"]);
}
