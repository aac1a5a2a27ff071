//! `stratus serve`: the CloudStack-compatible API server over one durable
//! controller (the runtime's gateway on a Store), with simulated hosts: each
//! Simulator host is a real agent (TLS, watchdog, leases) backed by the
//! simulator's world, started in this process as CloudStack's simulator
//! hypervisor is. The agent listener is loopback only.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use stratus_api::bootstrap::{AdminUser, ensure_admin};
use stratus_api::{Api, ApiConfig, SimControl};
use stratus_core::cloud::Cloud;
use stratus_core::controller::Controller;
use stratus_core::ids::HostId;
use stratus_runtime::hosts::{Gateway, GatewayConfig};
use stratus_sim::fleet::{FleetFault, SimFleet};

/// The demo zone (`--demo` on a fresh database).
pub const DEMO_SCENARIO: &str = include_str!("../scenarios/seed-lab.toml");

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub db: String,
    pub http: SocketAddr,
    pub demo: bool,
    pub admin_password: Option<String>,
    /// Seed of the simulated world (and of a fresh controller's ids).
    pub seed: u64,
    /// Where the simulated hosts' state is kept across restarts.
    pub fleet_file: Option<PathBuf>,
    /// Each simulated host call that changes something takes MIN..MAX ms.
    pub latency_ms: (u64, u64),
    pub snapshot_every: u64,
    /// Image stores mounted on this server (template downloads go there).
    pub secondary_mounts: Vec<stratus_api::secstorage::SecondaryMount>,
    /// Where real hosts' agents connect (`stratus agent --server`); `None`:
    /// an ephemeral loopback port (simulated hosts only).
    pub agent_listen: Option<SocketAddr>,
}

impl Default for ServeOptions {
    /// A throwaway server: in-memory store, ephemeral loopback port, no demo
    /// zone, simulated latencies of 20-200 ms. Callers set what they need.
    fn default() -> Self {
        ServeOptions {
            db: "sqlite::memory:".into(),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            demo: false,
            admin_password: None,
            seed: 1,
            fleet_file: None,
            latency_ms: (20, 200),
            snapshot_every: 10_000,
            secondary_mounts: Vec::new(),
            agent_listen: None,
        }
    }
}

pub struct Running {
    pub api: Arc<Api>,
    pub gw: Gateway,
    pub fleet: SimFleet,
    pub http: SocketAddr,
    pub admin: AdminUser,
    pub recovered: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Running({})", self.http)
    }
}

impl Running {
    /// Stops serving (tests): HTTP, the gateway and the fleet's agents.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.fleet.shutdown();
        self.gw.halt();
    }
}

/// The fleet as the API sees it.
struct FleetControl {
    fleet: SimFleet,
    gw: Gateway,
}

impl SimControl for FleetControl {
    fn host_added(&self, host: HostId, token: String) -> Result<(), String> {
        let cloud = self.gw.with_controller(|c| c.cloud().clone());
        self.fleet.ensure_host(&cloud, host, Some(token))
    }

    fn sync(&self) {
        let cloud = self.gw.with_controller(|c| c.cloud().clone());
        self.fleet.sync(&cloud);
    }

    fn host_removed(&self, host: HostId) {
        self.fleet.remove_host(host);
    }

    fn inject(&self, fault: &serde_json::Value) -> Result<String, String> {
        let f: FleetFault = serde_json::from_value(fault.clone()).map_err(|e| e.to_string())?;
        self.fleet.inject(f.clone())?;
        Ok(format!("{f:?}"))
    }
}

fn initial(o: &ServeOptions) -> anyhow::Result<Cloud> {
    if !o.demo {
        return Ok(Cloud::new(o.seed));
    }
    let s = stratus_sim::scenario::parse(DEMO_SCENARIO, "seed-lab.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let built = stratus_sim::scenario::build(&s).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(built.cloud)
}

/// Opens (or recovers) the Store, starts the gateway, the simulated hosts and
/// the HTTP API. Needs a multi-thread tokio runtime.
pub async fn start(o: ServeOptions) -> anyhow::Result<Running> {
    let cloud = initial(&o)?;
    let config = GatewayConfig {
        store_url: Some(o.db.clone()),
        snapshot_every: o.snapshot_every,
        ..GatewayConfig::new()
    };
    let gw = Gateway::open(|| Controller::new(cloud), config)
        .await
        .with_context(|| format!("cannot open the Store at {}", o.db))?;
    let recovered = gw.recovery().is_some_and(|r| !r.fresh);
    let listen = o.agent_listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let agents = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for agents on {listen}"))?;
    let agent_addr = agents.local_addr()?;
    tracing::info!(%agent_addr, "agents.listening");
    let mut tasks = Vec::new();
    let g = gw.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = g.serve(agents).await {
            tracing::error!(error = %e, "the gateway stopped");
        }
    }));
    let cloud = gw.with_controller(|c| c.cloud().clone());
    let fleet = SimFleet::start(
        agent_addr.to_string(),
        &cloud,
        o.seed,
        o.latency_ms,
        o.fleet_file.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    let enrolled = gw.enrolled();
    let with_creds: Vec<HostId> = fleet.hosts().into_iter().filter(|h| h.enrolled).map(|h| h.id).collect();
    // The simulated hosts: the fleet's own (its state file), or on a fresh
    // Store the demo's. Hosts added with `addHost hypervisor=KVM` run their
    // own agents and are never simulated.
    let known: Vec<HostId> = fleet.hosts().into_iter().filter(|h| h.enrolled).map(|h| h.id).collect();
    let simulated = cloud
        .inv
        .live_hosts()
        .map(|(_, h)| h)
        .filter(|h| !recovered || known.contains(&h.id));
    for h in simulated {
        let token = if enrolled.contains(&h.id) && with_creds.contains(&h.id) {
            None
        } else {
            Some(gw.issue_token_durable(h.id).await.map_err(anyhow::Error::msg)?)
        };
        fleet.ensure_host(&cloud, h.id, token).map_err(anyhow::Error::msg)?;
    }
    let control = Arc::new(FleetControl {
        fleet: fleet.clone(),
        gw: gw.clone(),
    });
    let config = ApiConfig {
        secondary_mounts: o.secondary_mounts.clone(),
        ..ApiConfig::default()
    };
    let api = Arc::new(Api::new(gw.clone(), Some(control), config));
    // Template downloads the previous run did not finish start again.
    api.resume_downloads();
    let admin = ensure_admin(&api, o.admin_password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the admin user: {}", e.text))?;
    let http = tokio::net::TcpListener::bind(o.http)
        .await
        .with_context(|| format!("cannot listen on {}", o.http))?;
    let http_addr = http.local_addr()?;
    // The API at /client/api and the web console beside it under /client.
    let router = stratus_api::server::router(api.clone()).merge(stratus_console::router(api.clone()));
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(http, router).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    }));
    Ok(Running {
        api,
        gw,
        fleet,
        http: http_addr,
        admin,
        recovered,
        tasks,
    })
}
