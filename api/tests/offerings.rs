//! Offerings, templates, ISOs and OS types over HTTP: envelopes, refusals that
//! change nothing, and who may create what.

mod common;
use common::TestServer;
use serde_json::{Value, json};
use stratus_core::inventory::AccountType;

const GHOST: &str = "0f0f0f0f-0000-4000-8000-000000000000";

fn ids(v: &Value, top: &str, object: &str) -> Vec<String> {
    v[top][object]
        .as_array()
        .map(|a| a.iter().map(|x| x["id"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn text(v: &Value, top: &str) -> String {
    v[top]["errortext"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_offering_crud() {
    let s = TestServer::start().await;
    let (st, v) = s
        .admin(&[
            ("command", "createServiceOffering"),
            ("name", "medium"),
            ("displaytext", "Medium instance"),
            ("cpunumber", "2"),
            ("cpuspeed", "1000"),
            ("memory", "2048"),
            ("offerha", "true"),
            ("hosttags", "ssd"),
            ("deploymentplanner", "UserDispersingPlanner"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let o = &v["createserviceofferingresponse"]["serviceoffering"];
    assert_eq!(v["createserviceofferingresponse"].as_object().unwrap().len(), 1);
    assert_eq!(o["name"], "medium");
    assert_eq!(o["displaytext"], "Medium instance");
    assert_eq!(
        (o["cpunumber"].clone(), o["cpuspeed"].clone(), o["memory"].clone()),
        (json!(2), json!(1000), json!(2048))
    );
    assert_eq!(o["offerha"], true);
    assert_eq!(o["hosttags"], "ssd");
    assert_eq!(o["iscustomized"], false);
    assert_eq!(o["storagetype"], "shared");
    assert_eq!(o["deploymentplanner"], "UserDispersingPlanner");
    let id = o["id"].as_str().unwrap().to_string();

    let top = "listserviceofferingsresponse";
    let (st, v) = s.admin(&[("command", "listServiceOfferings")]).await;
    assert_eq!(st, 200);
    assert_eq!(v[top]["count"], 3, "{v}");
    let (_, v) = s.admin(&[("command", "listServiceOfferings"), ("id", &id)]).await;
    assert_eq!(ids(&v, top, "serviceoffering"), [id.as_str()]);
    let (_, v) = s
        .admin(&[("command", "listServiceOfferings"), ("keyword", "INSTANCE")])
        .await;
    assert_eq!(
        ids(&v, top, "serviceoffering"),
        [id.as_str()],
        "keyword matches the display text"
    );
    let (_, v) = s
        .admin(&[("command", "listServiceOfferings"), ("name", "medium")])
        .await;
    assert_eq!(ids(&v, top, "serviceoffering"), [id.as_str()]);
    let (_, v) = s
        .admin(&[("command", "listServiceOfferings"), ("issystem", "true")])
        .await;
    assert_eq!(v, json!({top: {}}));
    // Users list offerings too.
    let ku = s.account("dora", None, AccountType::User).await;
    let (st, v) = s.call(&ku, &[("command", "listServiceOfferings")]).await;
    assert_eq!((st, v[top]["count"].clone()), (200, json!(3)));
    // Offerings a VM can change to: not its own.
    let vm = s.stopped_vm(&ku, "dorasvm").await;
    let (_, v) = s
        .call(&ku, &[("command", "listServiceOfferings"), ("virtualmachineid", &vm)])
        .await;
    let others = ids(&v, top, "serviceoffering");
    assert_eq!(others.len(), 2);
    assert!(!others.contains(&s.ids.small));

    let (st, v) = s
        .admin(&[
            ("command", "updateServiceOffering"),
            ("id", &id),
            ("name", "medium2"),
            ("displaytext", "Medium, renamed"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let o = &v["updateserviceofferingresponse"]["serviceoffering"];
    assert_eq!(
        (o["name"].as_str(), o["displaytext"].as_str()),
        (Some("medium2"), Some("Medium, renamed"))
    );

    let (st, v) = s.admin(&[("command", "deleteServiceOffering"), ("id", &id)]).await;
    assert_eq!(st, 200);
    assert_eq!(v, json!({"deleteserviceofferingresponse": {"success": true}}));
    let (_, v) = s.admin(&[("command", "listServiceOfferings"), ("id", &id)]).await;
    assert_eq!(v, json!({top: {}}), "removed offerings are hidden");
    for cmd in ["deleteServiceOffering", "updateServiceOffering"] {
        let (st, v) = s.admin(&[("command", cmd), ("id", &id), ("name", "x")]).await;
        assert_eq!(st, 431, "{cmd}: {v}");
        let top = format!("{}response", cmd.to_lowercase());
        assert_eq!(text(&v, &top), format!("Unable to find service offering by id {id}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customized_service_offerings_take_sizes_at_deploy() {
    let s = TestServer::start().await;
    let (st, v) = s
        .admin(&[
            ("command", "createServiceOffering"),
            ("name", "custom"),
            ("customized", "true"),
            ("cpuspeed", "1000"),
            ("mincpunumber", "1"),
            ("maxcpunumber", "4"),
            ("minmemory", "256"),
            ("maxmemory", "4096"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let o = &v["createserviceofferingresponse"]["serviceoffering"];
    assert_eq!(o["iscustomized"], true);
    assert_eq!(
        o["displaytext"], "custom",
        "the name stands in for a missing display text"
    );
    let id = o["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .deploy(
            &s.admin,
            &[
                ("serviceofferingid", id.as_str()),
                ("details[0].cpuNumber", "3"),
                ("details[0].memory", "1024"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let done = s
        .wait_job(&s.admin, v["deployvirtualmachineresponse"]["jobid"].as_str().unwrap())
        .await;
    let vm = &done["jobresult"]["virtualmachine"];
    assert_eq!((vm["cpunumber"].clone(), vm["memory"].clone()), (json!(3), json!(1024)));
    let (st, _) = s
        .deploy(
            &s.admin,
            &[
                ("serviceofferingid", id.as_str()),
                ("details[0].cpuNumber", "8"),
                ("details[0].memory", "1024"),
            ],
        )
        .await;
    assert_eq!(st, 431, "above maxcpunumber");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_offering_refusals_change_nothing() {
    let s = TestServer::start().await;
    let before = s.state();
    let top = "createserviceofferingresponse";
    let (st, v) = s
        .admin(&[("command", "createServiceOffering"), ("cpunumber", "1")])
        .await;
    assert_eq!(st, 431);
    assert_eq!(
        text(&v, top),
        "Unable to execute API command createserviceoffering due to missing parameter name"
    );
    let base = [
        ("command", "createServiceOffering"),
        ("name", "x"),
        ("cpunumber", "1"),
        ("cpuspeed", "500"),
    ];
    let cases: &[&[(&str, &str)]] = &[
        &[],                  // fixed, no memory
        &[("memory", "abc")], // not an integer
        &[("memory", "-5")],  // not positive
        &[("memory", "512"), ("issystem", "true")],
        &[("memory", "512"), ("storagetype", "tape")],
        &[("memory", "512"), ("deploymentplanner", "Random")],
        &[("memory", "512"), ("domainid", GHOST)],
    ];
    for extra in cases {
        let mut params = base.to_vec();
        params.extend_from_slice(extra);
        let (st, v) = s.admin(&params).await;
        assert_eq!(st, 431, "{extra:?}: {v}");
    }
    // Admin-only commands are refused to users before anything runs.
    let ku = s.account("eve", None, AccountType::User).await;
    let before_user = s.state();
    let mut params = base.to_vec();
    params.push(("memory", "512"));
    let delete = vec![("command", "deleteServiceOffering"), ("id", s.ids.small.as_str())];
    for cmd in [params, delete] {
        let (st, _) = s.call(&ku, &cmd).await;
        assert_eq!(st, 401);
    }
    let (st, _) = s
        .call(
            &ku,
            &[("command", "createDiskOffering"), ("name", "d"), ("disksize", "1")],
        )
        .await;
    assert_eq!(st, 401);
    assert_eq!(s.state(), before_user);
    let (st, _) = s.admin(&[("command", "deleteServiceOffering"), ("id", GHOST)]).await;
    assert_eq!(st, 431);
    // A disk offering's id is not a service offering's.
    let (st, _) = s
        .admin(&[("command", "deleteServiceOffering"), ("id", &s.ids.disk)])
        .await;
    assert_eq!(st, 431);
    assert_ne!(before, before_user, "the account was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_offering_crud_and_refusals() {
    let s = TestServer::start().await;
    let (st, v) = s
        .admin(&[
            ("command", "createDiskOffering"),
            ("name", "20GB"),
            ("displaytext", "Twenty"),
            ("disksize", "20"),
            ("tags", "fast"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let o = &v["creatediskofferingresponse"]["diskoffering"];
    assert_eq!(
        (o["disksize"].clone(), o["iscustomized"].clone()),
        (json!(20), json!(false))
    );
    assert_eq!(o["tags"], "fast");
    let id = o["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .admin(&[
            ("command", "createDiskOffering"),
            ("name", "any"),
            ("customized", "true"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["creatediskofferingresponse"]["diskoffering"]["iscustomized"], true);
    assert!(
        v["creatediskofferingresponse"]["diskoffering"]
            .get("disksize")
            .is_none()
    );

    let top = "listdiskofferingsresponse";
    let ku = s.account("fred", None, AccountType::User).await;
    let (st, v) = s.call(&ku, &[("command", "listDiskOfferings")]).await;
    assert_eq!((st, v[top]["count"].clone()), (200, json!(3)));
    let (_, v) = s
        .admin(&[("command", "listDiskOfferings"), ("keyword", "twenty")])
        .await;
    assert_eq!(ids(&v, top, "diskoffering"), [id.as_str()]);
    let (_, v) = s.admin(&[("command", "listDiskOfferings"), ("name", "nothing")]).await;
    assert_eq!(v, json!({top: {}}));

    let (st, v) = s
        .admin(&[
            ("command", "updateDiskOffering"),
            ("id", &id),
            ("displaytext", "20 GiB"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["updatediskofferingresponse"]["diskoffering"]["displaytext"], "20 GiB");
    let (st, v) = s.admin(&[("command", "deleteDiskOffering"), ("id", &id)]).await;
    assert_eq!((st, v), (200, json!({"deletediskofferingresponse": {"success": true}})));
    let (_, v) = s.admin(&[("command", "listDiskOfferings"), ("id", &id)]).await;
    assert_eq!(v, json!({top: {}}));

    let before = s.state();
    let cases: &[&[(&str, &str)]] = &[
        &[("disksize", "5")], // no name
        &[("name", "n")],     // neither size nor customized
        &[("name", "n"), ("disksize", "0")],
        &[("name", "n"), ("disksize", "5"), ("customized", "true")],
        &[("name", "n"), ("disksize", "5"), ("storagetype", "floppy")],
    ];
    for extra in cases {
        let mut params = vec![("command", "createDiskOffering")];
        params.extend_from_slice(extra);
        let (st, v) = s.admin(&params).await;
        assert_eq!(st, 431, "{extra:?}: {v}");
    }
    for cmd in ["updateDiskOffering", "deleteDiskOffering"] {
        let (st, v) = s.admin(&[("command", cmd), ("id", &id)]).await;
        assert_eq!(st, 431, "{cmd} of a deleted offering: {v}");
        let (st, _) = s.admin(&[("command", cmd), ("id", &s.ids.small)]).await;
        assert_eq!(st, 431, "{cmd} of a service offering");
    }
    assert_eq!(s.state(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_isos() {
    let s = TestServer::start().await;
    let os = stratus_api::ostypes::id_of("Ubuntu 22.04 LTS").to_string();
    let (st, v) = s
        .admin(&[
            ("command", "registerTemplate"),
            ("name", "ubuntu"),
            ("displaytext", "Ubuntu 22.04"),
            ("format", "qcow2"),
            ("hypervisor", "Simulator"),
            ("ostypeid", &os),
            ("url", "http://images.example.org/ubuntu.qcow2"),
            ("zoneid", "-1"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let r = &v["registertemplateresponse"];
    assert_eq!(r["count"], 1, "one row per zone: {v}");
    let t = &r["template"][0];
    assert_eq!(
        (t["isready"].clone(), t["format"].clone()),
        (json!(true), json!("QCOW2"))
    );
    assert_eq!(t["ostypename"], "Ubuntu 22.04 LTS");
    assert_eq!(t["zoneid"], s.ids.zone.as_str());
    let tpl = t["id"].as_str().unwrap().to_string();
    // Ready at once: deployable.
    let (st, v) = s.deploy(&s.admin, &[("templateid", tpl.as_str())]).await;
    assert_eq!(st, 200, "{v}");

    let top = "listtemplatesresponse";
    let ku = s.account("gina", None, AccountType::User).await;
    let (st, v) = s
        .call(&ku, &[("command", "listTemplates"), ("templatefilter", "featured")])
        .await;
    assert_eq!((st, v[top]["count"].clone()), (200, json!(2)), "{v}");
    let (_, v) = s
        .call(
            &ku,
            &[
                ("command", "listTemplates"),
                ("templatefilter", "executable"),
                ("id", &tpl),
            ],
        )
        .await;
    assert_eq!(ids(&v, top, "template"), [tpl.as_str()]);
    let (_, v) = s
        .call(&ku, &[("command", "listTemplates"), ("templatefilter", "self")])
        .await;
    assert_eq!(v, json!({top: {}}), "templates belong to the admin account");
    let (_, v) = s
        .admin(&[
            ("command", "listTemplates"),
            ("templatefilter", "self"),
            ("keyword", "UBU"),
        ])
        .await;
    assert_eq!(ids(&v, top, "template"), [tpl.as_str()]);

    let (st, v) = s
        .admin(&[
            ("command", "registerIso"),
            ("name", "rescue"),
            ("url", "https://images.example.org/rescue.iso"),
            ("zoneid", &s.ids.zone),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["registerisoresponse"]["count"], 1);
    let iso = v["registerisoresponse"]["iso"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(v["registerisoresponse"]["iso"][0]["format"], "ISO");
    let (_, v) = s
        .admin(&[("command", "listTemplates"), ("templatefilter", "all")])
        .await;
    assert!(!ids(&v, top, "template").contains(&iso), "ISOs are not templates");
    let (_, v) = s.call(&ku, &[("command", "listIsos"), ("isofilter", "featured")]).await;
    assert_eq!(ids(&v, "listisosresponse", "iso"), [iso.as_str()]);
    let (_, v) = s.call(&ku, &[("command", "listIsos")]).await;
    assert_eq!(v, json!({"listisosresponse": {}}), "selfexecutable by default");
    let (st, _) = s.deploy(&s.admin, &[("templateid", iso.as_str())]).await;
    assert_eq!(st, 431, "no deploys from ISOs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_refusals_change_nothing() {
    let s = TestServer::start().await;
    let ku = s.account("hal", None, AccountType::User).await;
    let before = s.state();
    let os = stratus_api::ostypes::id_of("CentOS 7").to_string();
    let top = "registertemplateresponse";
    let base = [
        ("command", "registerTemplate"),
        ("name", "t2"),
        ("format", "RAW"),
        ("hypervisor", "KVM"),
        ("ostypeid", os.as_str()),
        ("url", "http://x.example.org/t2.raw"),
        ("zoneid", s.ids.zone.as_str()),
    ];
    let with = |k: &'static str, v: &'static str| {
        let mut p: Vec<(&str, &str)> = base.iter().filter(|(n, _)| *n != k).copied().collect();
        if !v.is_empty() {
            p.push((k, v));
        }
        p
    };
    let (st, v) = s.admin(&with("url", "")).await;
    assert_eq!(st, 431);
    assert_eq!(
        text(&v, top),
        "Unable to execute API command registertemplate due to missing parameter url"
    );
    let (st, v) = s.admin(&with("ostypeid", GHOST)).await;
    assert_eq!(st, 431);
    assert_eq!(text(&v, top), format!("Unable to find OS type by id {GHOST}"));
    let (st, v) = s.admin(&with("zoneid", GHOST)).await;
    assert_eq!((st, text(&v, top)), (431, format!("Unable to find zone by id {GHOST}")));
    for (k, bad) in [
        ("format", "ISO"),
        ("format", "VMDK"),
        ("hypervisor", "Bochs"),
        ("url", "file:///etc/passwd"),
        ("zoneid", "zone-one"),
        ("zoneid", ""),
    ] {
        let (st, v) = s.admin(&with(k, bad)).await;
        assert_eq!(st, 431, "{k}={bad}: {v}");
    }
    let lt = "listtemplatesresponse";
    // Templates have no owner yet, so registering one would publish it to
    // every tenant: only admins may.
    let (st, _) = s.call(&ku, &base).await;
    assert_eq!(st, 401, "a user cannot publish a template to every tenant");
    let (st, v) = s.call(&ku, &[("command", "listTemplates")]).await;
    assert_eq!(st, 431);
    assert!(text(&v, lt).ends_with("missing parameter templatefilter"));
    let (st, _) = s
        .call(&ku, &[("command", "listTemplates"), ("templatefilter", "all")])
        .await;
    assert_eq!(st, 431, "all is for admins");
    let (st, _) = s
        .admin(&[("command", "listTemplates"), ("templatefilter", "mine")])
        .await;
    assert_eq!(st, 431);
    assert_eq!(s.state(), before);
    // Template names are unique (the core refuses it).
    let (st, v) = s.admin(&with("name", "tiny-linux")).await;
    assert_eq!(st, 431, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn os_types() {
    let s = TestServer::start().await;
    let top = "listostypesresponse";
    let (st, v) = s.admin(&[("command", "listOsTypes")]).await;
    assert_eq!(st, 200);
    let n = stratus_api::ostypes::OS_TYPES.len();
    assert_eq!(v[top]["count"], n);
    let first = &v[top]["ostype"][0];
    assert!(first["oscategoryid"].is_string() && first["description"].is_string());
    assert_eq!(first["isuserdefined"], false);
    let (_, v) = s.admin(&[("command", "listOsTypes"), ("description", "ubuntu")]).await;
    assert_eq!(v[top]["count"], 2);
    let id = stratus_api::ostypes::id_of("CentOS 7").to_string();
    let (_, v) = s.admin(&[("command", "listOsTypes"), ("id", &id)]).await;
    assert_eq!(v[top]["ostype"][0]["description"], "CentOS 7");
    let (_, v) = s.admin(&[("command", "listOsTypes"), ("keyword", "beos")]).await;
    assert_eq!(v, json!({top: {}}));
    let (st, _) = s.admin(&[("command", "listOsTypes"), ("id", "7")]).await;
    assert_eq!(st, 431);
}
