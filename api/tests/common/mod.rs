//! An in-process API server for tests: a gateway without a Store (every input
//! durable at once) over a small inventory — one zone, pod, Simulator cluster
//! with two hosts (Up, but no agents: calls to them fail), an NFS pool, two
//! offerings, a template — the admin user with API keys, and a tiny HTTP/1.1
//! client that signs like CloudStack's clients.
#![allow(dead_code)]

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use stratus_api::bootstrap::{ensure_admin, ensure_keys};
use stratus_api::{Api, ApiConfig};
use stratus_core::cloud::*;
use stratus_core::controller::Controller;
use stratus_core::controller::admin::{AdminChange, NewUser};
use stratus_core::ids::{AccountId, DomainId};
use stratus_core::inventory::*;
use stratus_runtime::hosts::{Gateway, GatewayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct TestServer {
    pub api: Arc<Api>,
    pub addr: SocketAddr,
    /// The admin's (api key, secret key).
    pub admin: (String, String),
    pub ids: Ids,
}

/// Ids of the seeded inventory.
#[derive(Clone, Debug)]
pub struct Ids {
    pub zone: String,
    pub pod: String,
    pub cluster: String,
    pub hosts: Vec<String>,
    pub pool: String,
    pub small: String,
    pub ha: String,
    pub disk: String,
    pub template: String,
}

pub fn small_cloud() -> (Cloud, Ids) {
    let mut c = Cloud::new(11);
    let z = c.add_zone(ZoneSpec::advanced("z1")).unwrap();
    let p = c.add_pod(PodSpec::numbered("p1", z, 1)).unwrap();
    let cl = c.add_cluster("c1", p, Hypervisor::Simulator).unwrap();
    let hosts = (1..=2)
        .map(|i| {
            c.add_host(HostSpec {
                name: format!("h{i}"),
                cluster: cl,
                cpu_cores: 4,
                cpu_mhz: 2000,
                memory_bytes: 8 << 30,
                tags: vec![],
            })
            .unwrap()
        })
        .collect::<Vec<_>>();
    let pool = c
        .add_pool(PoolSpec {
            name: "nfs1".into(),
            zone: z,
            scope: PoolScopeSpec::Cluster(cl),
            pool_type: PoolType::NetworkFilesystem,
            capacity_bytes: 1 << 40,
            tags: vec![],
        })
        .unwrap();
    let small = c
        .add_service_offering(ServiceOfferingSpec::fixed("small", 1, 500, 512))
        .unwrap();
    let mut ha = ServiceOfferingSpec::fixed("ha", 1, 500, 512);
    ha.offer_ha = true;
    let ha = c.add_service_offering(ha).unwrap();
    let disk = c
        .add_disk_offering(DiskOfferingSpec {
            name: "5GB".into(),
            size: DiskSize::Fixed(5 << 30),
            storage_tags: vec![],
            storage_type: StorageType::Shared,
        })
        .unwrap();
    let template = c
        .add_template(TemplateSpec {
            name: "tiny-linux".into(),
            format: ImageFormat::Qcow2,
            size_bytes: 1 << 30,
            os_type: "Other Linux (64-bit)".into(),
            hypervisor: Hypervisor::Simulator,
            is_iso: false,
            ready_in: vec![z],
        })
        .unwrap();
    let ids = Ids {
        zone: z.0.to_string(),
        pod: p.0.to_string(),
        cluster: cl.0.to_string(),
        hosts: hosts.iter().map(|h| h.0.to_string()).collect(),
        pool: pool.0.to_string(),
        small: small.0.to_string(),
        ha: ha.0.to_string(),
        disk: disk.0.to_string(),
        template: template.0.to_string(),
    };
    (c, ids)
}

/// The gateway under test, on the Store `STRATUS_API_STORE` names: `sqlite`
/// (default: a fresh file), `postgres` (a fresh schema in
/// `STRATUS_TEST_POSTGRES_URL`; `.ci/run` runs the suite a second time so)
/// or `memory` (no Store).
pub async fn gateway(cloud: Cloud) -> Gateway {
    let url = match std::env::var("STRATUS_API_STORE").as_deref() {
        Ok("memory") => return Gateway::new(Controller::new(cloud), GatewayConfig::seeded(11)).unwrap(),
        Ok("postgres") => {
            let base = std::env::var("STRATUS_TEST_POSTGRES_URL")
                .expect("STRATUS_API_STORE=postgres needs STRATUS_TEST_POSTGRES_URL");
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let schema = format!(
                "t_api_{}_{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let admin = sqlx::PgPool::connect(&base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                .execute(&admin)
                .await
                .unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}options=-c%20search_path%3D{schema}")
        }
        Ok("sqlite") | Err(_) => {
            let dir = tempfile::tempdir().unwrap().keep();
            format!("sqlite://{}", dir.join("api.db").display())
        }
        Ok(other) => panic!("STRATUS_API_STORE={other}: use sqlite, postgres or memory"),
    };
    gateway_at(cloud, &url).await
}

/// A durable gateway on `url` (a fresh Store gets `cloud`; an old one is recovered).
pub async fn gateway_at(cloud: Cloud, url: &str) -> Gateway {
    let config = GatewayConfig {
        store_url: Some(url.to_string()),
        ..GatewayConfig::seeded(11)
    };
    Gateway::open(move || Controller::new(cloud), config).await.unwrap()
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(ApiConfig::default()).await
    }

    pub async fn start_with(config: ApiConfig) -> TestServer {
        let (cloud, ids) = small_cloud();
        Self::on_with(gateway(cloud).await, ids, config).await
    }

    /// A server over a given gateway (e.g. one reopened on an old Store).
    pub async fn on(gw: Gateway, ids: Ids) -> TestServer {
        Self::on_with(gw, ids, ApiConfig::default()).await
    }

    pub async fn on_with(gw: Gateway, ids: Ids, config: ApiConfig) -> TestServer {
        let agents = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let g = gw.clone();
        tokio::spawn(async move {
            let _ = g.serve(agents).await;
        });
        let api = Arc::new(Api::new(gw, None, config));
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

    /// A signed GET as `keys` (`response=json` added): (HTTP status, JSON body).
    pub async fn call(&self, keys: &(String, String), params: &[(&str, &str)]) -> (u16, Value) {
        let mut pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        pairs.push(("response".into(), "json".into()));
        pairs.push(("apiKey".into(), keys.0.clone()));
        let sig = stratus_api::sign::sign(&pairs, &keys.1);
        pairs.push(("signature".into(), sig));
        let (status, _, body) = self.raw("GET", &query(&pairs), "", &[]).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }

    /// A signed call as the admin.
    pub async fn admin(&self, params: &[(&str, &str)]) -> (u16, Value) {
        let k = self.admin.clone();
        self.call(&k, params).await
    }

    /// A raw request: (status, headers text, body).
    pub async fn raw(&self, method: &str, query: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut req = format!("{method} /client/api?{query} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, head.to_string(), dechunk(head, body))
    }

    /// Waits until the job is no longer pending; returns the queryAsyncJobResult body.
    pub async fn wait_job(&self, keys: &(String, String), jobid: &str) -> Value {
        for _ in 0..600 {
            let (_, v) = self
                .call(keys, &[("command", "queryAsyncJobResult"), ("jobid", jobid)])
                .await;
            let r = v["queryasyncjobresultresponse"].clone();
            if r["jobstatus"].as_i64() != Some(0) {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("job {jobid} did not finish");
    }
}

/// Accounts, domains and VMs for tests of visibility and tenancy.
impl TestServer {
    /// A new account of type `t` in `domain` (ROOT when None) with one user
    /// named like the account; answers that user's API keys.
    pub async fn account(&self, name: &str, domain: Option<DomainId>, t: AccountType) -> (String, String) {
        let user = NewUser {
            username: name.into(),
            password_hash: "not-used-by-key-auth".into(),
            first_name: "Test".into(),
            last_name: name.into(),
            email: format!("{name}@example.org"),
            timezone: None,
        };
        let change = AdminChange::CreateAccount {
            name: name.into(),
            domain,
            account_type: t,
            user,
        };
        let made = self.api.admin(None, change).await.unwrap();
        let uid = self.api.read(|c| {
            c.directory()
                .users
                .iter()
                .find(|u| u.account == AccountId(made.id))
                .unwrap()
                .id
        });
        ensure_keys(&self.api, uid).await.unwrap()
    }

    /// A new domain under `parent` (ROOT when None).
    pub async fn domain(&self, name: &str, parent: Option<DomainId>) -> DomainId {
        let change = AdminChange::CreateDomain {
            name: name.into(),
            parent,
        };
        DomainId(self.api.admin(None, change).await.unwrap().id)
    }

    /// deployVirtualMachine of the seeded offering and template, not started
    /// unless `extra` says so: (HTTP status, body).
    pub async fn deploy(&self, keys: &(String, String), extra: &[(&str, &str)]) -> (u16, Value) {
        let ids = self.ids.clone();
        let mut params = vec![
            ("command", "deployVirtualMachine"),
            ("zoneid", ids.zone.as_str()),
            ("serviceofferingid", ids.small.as_str()),
            ("templateid", ids.template.as_str()),
        ];
        params.push(("startvm", "false"));
        // A name once (the signature covers every pair; the server reads the first).
        params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        params.extend_from_slice(extra);
        self.call(keys, &params).await
    }

    /// A stopped VM of `keys`' account, deployed and its job done: its id.
    pub async fn stopped_vm(&self, keys: &(String, String), name: &str) -> String {
        let (st, v) = self.deploy(keys, &[("name", name)]).await;
        assert_eq!(st, 200, "{v}");
        let r = &v["deployvirtualmachineresponse"];
        let job = self.wait_job(keys, r["jobid"].as_str().unwrap()).await;
        assert_eq!(job["jobstatus"], 1, "{job}");
        r["id"].as_str().unwrap().to_string()
    }

    /// The controller's state hash (equal before and after a refused write).
    pub fn state(&self) -> String {
        self.api.read(|c| c.state_hash())
    }
}

/// Java URLEncoder rules, `+` as `%20`.
pub fn enc(v: &str) -> String {
    let mut o = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => o.push(b as char),
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

pub fn query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn dechunk(head: &str, body: &str) -> String {
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((len, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n.min(after.len())]);
        rest = after.get(n + 2..).unwrap_or("");
    }
    out
}

impl TestServer {
    /// What a refused request must not change: the inventory's entities,
    /// accounts, users, IPs, jobs, VMs and volumes. (The whole state hash also
    /// moves with time: timers fire and agent-less hosts go Alert.)
    pub fn fingerprint(&self) -> String {
        self.api.read(|c| {
            let cloud = c.cloud();
            let inv = &cloud.inv;
            let d = c.directory();
            let names = |v: Vec<String>| v.join(",");
            format!(
                "zones={} pods={} clusters={} hosts={} pools={} stores={} so={} do={} templates={} nets={} domains={} accounts={} users={:?} keys={} ranges={} ips={:?} removed={} jobs={} vms={} volumes={} snapshots={}",
                names(inv.zones.iter().map(|z| format!("{}:{}:{}", z.name, z.allocation_state, z.dns1)).collect()),
                names(inv.pods.iter().map(|p| p.name.clone()).collect()),
                names(inv.clusters.iter().map(|x| x.name.clone()).collect()),
                names(inv.hosts.iter().map(|h| format!("{}:{}", h.name, h.resource_state)).collect()),
                names(inv.pools.iter().map(|p| p.name.clone()).collect()),
                inv.image_stores.len(),
                names(inv.service_offerings.iter().map(|o| o.name.clone()).collect()),
                names(inv.disk_offerings.iter().map(|o| o.name.clone()).collect()),
                names(inv.templates.iter().map(|t| t.name.clone()).collect()),
                names(inv.networks.iter().map(|n| n.name.clone()).collect()),
                names(inv.domains.iter().map(|x| x.path.clone()).collect()),
                names(inv.accounts.iter().map(|a| a.name.clone()).collect()),
                d.users.iter().map(|u| (&u.username, u.enabled)).collect::<Vec<_>>(),
                d.users.iter().filter(|u| u.api_key.is_some()).count(),
                d.ranges.len(),
                d.public_ips.iter().map(|p| p.account.is_some()).collect::<Vec<_>>(),
                d.removed.len(),
                c.jobs().len(),
                cloud.vms().map(|(_, v)| format!("{}:{}", v.name, v.state)).collect::<Vec<_>>().join(","),
                cloud.volumes().count(),
                cloud.snapshots().count(),
            )
        })
    }
}
