//! Tenants for the isolation tests: accounts made through the API
//! (createAccount, then registerUserKeys), a stopped VM for a tenant, and a
//! server seeded with a volume already on storage and a snapshot of it
//! (the test hosts run no agents, so the API cannot make those).
#![allow(dead_code)]

use crate::common::{Ids, TestServer, gateway, small_cloud};
use serde_json::Value;
use std::sync::Arc;
use stratus_api::bootstrap::{ensure_admin, ensure_keys};
use stratus_api::{Api, ApiConfig, SimControl};
use stratus_core::cloud::{Cloud, DeploySpec};
use stratus_core::controller::directory::UserId;
use stratus_core::controller::{JobId, Request};
use stratus_core::ids::*;
use stratus_core::inventory::AccountType;
use uuid::Uuid;

pub struct Tenant {
    pub keys: (String, String),
    pub user: String,
    pub account: String,
    pub account_id: String,
    pub domain_id: String,
}

pub fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// createAccount as `creator` (admin keys if None), then registerUserKeys.
pub async fn tenant_by(
    s: &TestServer,
    creator: &(String, String),
    name: &str,
    extra: &[(&str, &str)],
) -> Result<Tenant, (u16, Value)> {
    let mut ps = vec![
        ("command", "createAccount"),
        ("username", name),
        ("password", "pass-word-1"),
        ("email", "t@example.com"),
        ("firstname", "T"),
        ("lastname", name),
    ];
    if !extra.iter().any(|(k, _)| *k == "accounttype" || *k == "roletype") {
        ps.push(("accounttype", "0"));
    }
    ps.extend_from_slice(extra);
    let (st, v) = s.call(creator, &ps).await;
    if st != 200 {
        return Err((st, v));
    }
    let acc = &v["createaccountresponse"]["account"];
    let user = acc["user"][0]["id"].as_str().unwrap().to_string();
    let (st, k) = s.call(creator, &[("command", "registerUserKeys"), ("id", &user)]).await;
    assert_eq!(st, 200, "{k}");
    let keys = &k["registeruserkeysresponse"]["userkeys"];
    Ok(Tenant {
        keys: (
            keys["apikey"].as_str().unwrap().to_string(),
            keys["secretkey"].as_str().unwrap().to_string(),
        ),
        user,
        account: acc["name"].as_str().unwrap().to_string(),
        account_id: acc["id"].as_str().unwrap().to_string(),
        domain_id: acc["domainid"].as_str().unwrap().to_string(),
    })
}

pub async fn tenant(s: &TestServer, name: &str) -> Tenant {
    let admin = s.admin.clone();
    tenant_by(s, &admin, name, &[]).await.unwrap()
}

/// What a refused write must leave alone: the controller's state without its
/// clocks. (`state_hash` moves on its own: the reconciler ticks every few
/// seconds, and any input advances the clock, even one the core refuses.)
pub fn hash(s: &TestServer) -> String {
    s.api.read(|c| {
        let cloud = c.cloud();
        let vms: Vec<_> = cloud.vms().map(|(_, v)| v).collect();
        let volumes: Vec<_> = cloud.volumes().map(|(_, v)| v).collect();
        let snapshots: Vec<_> = cloud.snapshots().collect();
        let inv = &cloud.inv;
        let text = serde_json::to_string(&(
            c.directory(),
            c.jobs(),
            &cloud.settings,
            vms,
            volumes,
            snapshots,
            (&inv.networks, &inv.accounts, &inv.domains, &inv.zones, &inv.pools),
        ))
        .unwrap();
        stratus_core::controller::input::hash_hex(text.as_bytes())
    })
}

/// A stopped VM of the tenant (deployVirtualMachine is another module's:
/// the request goes in directly, as that user).
pub async fn stopped_vm(s: &TestServer, t: &Tenant, name: &str) -> String {
    let caller = stratus_api::server::caller_of(&s.api, UserId(uuid(&t.user))).unwrap();
    let spec = DeploySpec {
        name: name.into(),
        account: Some(AccountId(uuid(&t.account_id))),
        zone: Some(ZoneId(uuid(&s.ids.zone))),
        offering: Some(ServiceOfferingId(uuid(&s.ids.small))),
        template: Some(TemplateId(uuid(&s.ids.template))),
        start: false,
        ..Default::default()
    };
    let job = s.api.submit(&caller, Request::Deploy(spec)).await.unwrap();
    job_vm(s, job)
}

fn job_vm(s: &TestServer, job: JobId) -> String {
    s.api.read(|c| c.job(job).unwrap().vm.unwrap().0.to_string())
}

/// A test server over `cloud`, like `TestServer::start`, with an optional
/// simulator control.
pub async fn start_with(cloud: Cloud, ids: Ids, sim: Option<Arc<dyn SimControl>>) -> TestServer {
    let gw = gateway(cloud).await;
    let agents = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let g = gw.clone();
    tokio::spawn(async move {
        let _ = g.serve(agents).await;
    });
    let api = Arc::new(Api::new(gw, sim, ApiConfig::default()));
    let admin = ensure_admin(&api, Some("admin-password-1".into())).await.unwrap();
    let keys = ensure_keys(&api, admin.id()).await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap();
    let router = stratus_api::server::router(api.clone());
    tokio::spawn(async move {
        let _ = axum::serve(http, router).await;
    });
    TestServer {
        api,
        addr,
        admin: keys,
        ids,
    }
}

/// What `start_seeded` put in: the account's name, its ready volume and the
/// volume's snapshot.
pub struct Seeded {
    pub account: String,
    pub volume: String,
    pub snapshot: String,
}

/// A test server whose account `seeded` (ROOT) owns a data volume already
/// created on the NFS pool and a backed-up snapshot of it.
pub async fn start_seeded() -> (TestServer, Seeded) {
    let (mut cloud, ids): (_, Ids) = small_cloud();
    let account = cloud.add_account("seeded", None, AccountType::User).unwrap();
    let zone = ZoneId(uuid(&ids.zone));
    let disk = DiskOfferingId(uuid(&ids.disk));
    let vol = cloud.create_volume("data-seeded", account, zone, disk, None).unwrap();
    let vi = cloud.volumes().find(|(_, v)| v.id == vol).map(|(i, _)| i).unwrap();
    let pool = cloud.inv.find_pool(PoolId(uuid(&ids.pool))).unwrap();
    cloud.place_volume(vi, pool);
    cloud.set_volume_created(vi, true);
    let (snap, _, _) = cloud.allocate_snapshot(vol, "snap-seeded").unwrap();
    cloud.mark_snapshot_backed_up(snap);
    let s = start_with(cloud, ids, None).await;
    let seeded = Seeded {
        account: "seeded".into(),
        volume: vol.0.to_string(),
        snapshot: snap.0.to_string(),
    };
    (s, seeded)
}

/// A user of the seeded account, made with createUser and registerUserKeys.
pub async fn seeded_user(s: &TestServer) -> Tenant {
    let (st, v) = s
        .admin(&[
            ("command", "createUser"),
            ("account", "seeded"),
            ("username", "seeduser"),
            ("password", "pass-word-1"),
            ("email", "s@example.com"),
            ("firstname", "S"),
            ("lastname", "User"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let u = &v["createuserresponse"]["user"];
    let user = u["id"].as_str().unwrap().to_string();
    let (st, k) = s.admin(&[("command", "registerUserKeys"), ("id", &user)]).await;
    assert_eq!(st, 200, "{k}");
    let keys = &k["registeruserkeysresponse"]["userkeys"];
    Tenant {
        keys: (
            keys["apikey"].as_str().unwrap().to_string(),
            keys["secretkey"].as_str().unwrap().to_string(),
        ),
        user,
        account: "seeded".into(),
        account_id: u["accountid"].as_str().unwrap().to_string(),
        domain_id: u["domainid"].as_str().unwrap().to_string(),
    }
}
