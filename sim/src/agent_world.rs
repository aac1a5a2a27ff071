//! `stratus agent --sim-world` (feature `agent`): every host of a scenario's
//! simulated datacenter in one process, each with its own real agent and
//! connection to the management server, over one shared `World` (so storage,
//! leases, neighbours and fencing behave as in a datacenter). It runs apart
//! from the management server, so the world outlives a management crash; its
//! contents are written to a JSON status file ([`WorldStatus`]) for whoever
//! checks the ledger against it.

use crate::backend::SimBackend;
use crate::census::WorldCensus;
use crate::world::{World, lease_pools};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use stratus_agent::{Agent, AgentConfig, AgentError, AgentStats, Connector, CredentialStore, Hooks, TokioConnector};
use stratus_core::Cloud;
use stratus_core::controller::effects::DriverCall;
use stratus_core::ids::PoolId;
use stratus_core::inventory::Host;
use stratus_core::settings::Scope;
use stratus_drivers::HostFacts;

/// What `stratus manage --token-file` writes and `--sim-world` reads.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TokenFile {
    /// Host name → one-time enrollment token (hosts not enrolled yet).
    pub tokens: BTreeMap<String, String>,
}

impl TokenFile {
    pub fn load(path: &Path) -> Result<TokenFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: not a token file: {e}", path.display()))
    }

    /// Writes the file whole (a temporary file renamed over it), mode 0600.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        write_atomic(path, &serde_json::to_vec_pretty(self).expect("tokens serialize"), true)
    }
}

/// The world's status file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorldStatus {
    pub written_at_ms: u64,
    /// Hosts whose agent holds credentials (enrolled).
    pub enrolled: Vec<String>,
    /// Agent sessions started, over all hosts.
    pub sessions: u64,
    pub census: WorldCensus,
}

#[derive(Clone, Debug)]
pub struct SimWorldOptions {
    /// Management server address, HOST:PORT.
    pub server: String,
    /// The scenario's inventory (the same build as the management server's).
    pub cloud: Cloud,
    pub tokens: TokenFile,
    pub status_file: Option<PathBuf>,
    pub status_every: Duration,
    pub seed: u64,
    /// Each call that changes something (not lease or neighbour probes) takes
    /// a uniform time in this range, ms, so operations overlap as on real hosts.
    pub latency_ms: (u64, u64),
}

pub(crate) fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = o.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // The rename itself is durable once the directory is synced.
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What one simulated host's agent needs: the same for `--sim-world` and
/// [`crate::fleet::SimFleet`], so both run hosts the same way.
#[derive(Clone, Debug)]
pub struct HostAgent {
    pub server: String,
    pub name: String,
    pub facts: HostFacts,
    pub token: Option<String>,
    pub seed: u64,
    /// Uniform call latency, ms (see [`SimWorldOptions::latency_ms`]).
    pub latency_ms: (u64, u64),
    /// Shared pools to renew a lease on (the hooks may replace them).
    pub lease_pools: Vec<PoolId>,
    pub lease_timeout: Duration,
}

impl HostAgent {
    /// The agent of inventory host `h` (facts, leases, `ha.lease.timeout`), no token.
    pub fn new(cloud: &Cloud, h: &Host, server: &str, seed: u64, latency_ms: (u64, u64)) -> HostAgent {
        HostAgent {
            server: server.to_string(),
            name: h.name.clone(),
            facts: HostFacts {
                cpu_cores: h.cpu_cores,
                cpu_mhz: h.cpu_mhz_per_core,
                memory_bytes: h.memory_bytes,
                hypervisor_version: "stratus-sim-world".into(),
                ..Default::default()
            },
            token: None,
            seed,
            latency_ms,
            lease_pools: lease_pools(cloud, h),
            lease_timeout: Duration::from_secs(cloud.settings.i64("ha.lease.timeout", Scope::Global).max(1) as u64),
        }
    }

    /// The agent over the shared world, with fast reconnects and the latency
    /// hook added to `hooks`.
    pub fn build<C: Connector>(
        self,
        connector: C,
        backend: Arc<SimBackend>,
        creds: CredentialStore,
        stats: Arc<AgentStats>,
        mut hooks: Hooks,
    ) -> Agent<C, SimBackend> {
        let mut config = AgentConfig::new(&self.server, &self.name, self.facts);
        config.token = self.token;
        config.seed = self.seed;
        config.backoff_initial = Duration::from_millis(100);
        config.backoff_max = Duration::from_secs(1);
        config.lease_pools = self.lease_pools;
        config.lease_timeout = self.lease_timeout;
        let (lo, hi) = self.latency_ms;
        let rng = Mutex::new(stratus_core::rng::DetRng::child(
            self.seed,
            &format!("latency:{}", self.name),
        ));
        hooks.latency = Some(Box::new(move |call: &DriverCall| -> Duration {
            if hi == 0 || matches!(call, DriverCall::CheckLease { .. } | DriverCall::PingNeighbour { .. }) {
                return Duration::ZERO;
            }
            let span = hi.saturating_sub(lo) as usize + 1;
            Duration::from_millis(lo + rng.lock().expect("rng lock").below(span) as u64)
        }));
        Agent::new(config, connector, backend, creds)
            .with_stats(stats)
            .with_hooks(hooks)
    }
}

/// Runs every host's agent until all of them stop (a refused agent stops; the
/// others go on). Needs a tokio runtime.
pub async fn run_sim_world(opts: SimWorldOptions) -> Result<(), AgentError> {
    let cloud = &opts.cloud;
    let backend = Arc::new(SimBackend::new(World::from_cloud(cloud, opts.seed)));
    backend.world.lock().expect("world lock").clock_ms = epoch_ms();
    // Lease records carry the world's clock: the management server's (epoch ms).
    let b = backend.clone();
    tokio::spawn(async move {
        let mut t = tokio::time::interval(Duration::from_millis(100));
        loop {
            t.tick().await;
            b.world.lock().expect("world lock").clock_ms = epoch_ms();
        }
    });
    let mut agents = tokio::task::JoinSet::new();
    let mut watched = Vec::new();
    for (_, h) in cloud.inv.live_hosts() {
        let mut spec = HostAgent::new(cloud, h, &opts.server, opts.seed, opts.latency_ms);
        spec.token = opts.tokens.tokens.get(&h.name).cloned();
        if spec.token.is_none() {
            eprintln!("world: no enrollment token for {}: it stays offline", h.name);
            continue;
        }
        let creds: stratus_agent::CredentialStore = Arc::new(Mutex::new(None));
        let stats = Arc::new(AgentStats::default());
        watched.push((h.name.clone(), creds.clone(), stats.clone()));
        let name = h.name.clone();
        let agent = spec.build(TokioConnector, backend.clone(), creds, stats, Hooks::default());
        agents.spawn(async move { (name, agent.run().await) });
    }
    if let Some(path) = opts.status_file.clone() {
        let b = backend.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(opts.status_every);
            loop {
                t.tick().await;
                let status = WorldStatus {
                    written_at_ms: epoch_ms(),
                    enrolled: watched
                        .iter()
                        .filter(|(_, c, _)| c.lock().expect("creds lock").is_some())
                        .map(|(n, _, _)| n.clone())
                        .collect(),
                    sessions: watched
                        .iter()
                        .map(|(_, _, s)| s.sessions.load(std::sync::atomic::Ordering::Relaxed))
                        .sum(),
                    census: b.world.lock().expect("world lock").census(),
                };
                let bytes = serde_json::to_vec(&status).expect("status serializes");
                if let Err(e) = write_atomic(&path, &bytes, false) {
                    eprintln!("world: cannot write {}: {e}", path.display());
                }
            }
        });
    }
    let mut last = Ok(());
    while let Some(done) = agents.join_next().await {
        match done {
            Ok((name, Err(e))) => {
                eprintln!("world: agent {name} stopped: {e}");
                last = Err(e);
            }
            Ok((_, Ok(()))) => {}
            Err(e) => eprintln!("world: an agent task failed: {e}"),
        }
    }
    last
}

/// Runs the world on its own runtime (for the CLI).
pub fn run_world_blocking(opts: SimWorldOptions) -> Result<(), AgentError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AgentError::Config(format!("cannot start the runtime: {e}")))?;
    rt.block_on(run_sim_world(opts))
}
