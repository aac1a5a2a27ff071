//! `stratus agent --sim` (feature `agent`): the real host agent
//! (`stratus-agent`: TCP, TLS, enrollment, reconnects) over a simulated
//! host. Its world holds one host, added when the server names it, and the
//! storage pools the server's calls mention (so volumes and template copies
//! work as on a host that mounts them). It lives here, not in the agent, so
//! the production agent never links the simulator.

use crate::backend::SimBackend;
use crate::world::{SimHost, SimPool, World};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratus_agent::{Agent, AgentConfig, AgentError, CredentialStore, Credentials, Hooks, TokioConnector};
use stratus_core::controller::effects::{DriverCall, DriverError, DriverResult};
use stratus_core::ids::{HostId, PoolId};
use stratus_drivers::HostFacts;

#[derive(Clone, Debug)]
pub struct SimHostOptions {
    pub server: String,
    pub token: Option<String>,
    pub name: String,
    pub ping_interval: Option<Duration>,
    pub cores: u32,
    pub mhz: u32,
    pub memory_bytes: u64,
    /// Where credentials are kept between runs (written 0600 after enrollment).
    pub state_file: Option<PathBuf>,
    pub seed: u64,
}

impl SimHostOptions {
    pub fn facts(&self) -> HostFacts {
        HostFacts {
            cpu_cores: self.cores,
            cpu_mhz: self.mhz,
            memory_bytes: self.memory_bytes,
            hypervisor_version: "stratus-sim".into(),
            ..Default::default()
        }
    }
}

/// A world with no host yet and hooks that fill it in as the server talks.
pub fn sim_backend(name: &str, facts: &HostFacts) -> (Arc<SimBackend>, Hooks) {
    let backend = Arc::new(SimBackend::new(World::new(0)));
    let (b1, b2) = (backend.clone(), backend.clone());
    let (name, facts) = (name.to_string(), (facts.cpu_cores, facts.cpu_mhz, facts.memory_bytes));
    let hooks = Hooks {
        on_host: Some(Box::new(move |host: HostId| {
            let mut w = b1.world.lock().expect("world lock");
            w.hosts.entry(host).or_insert_with(|| SimHost {
                name: name.clone(),
                facts,
                was_reachable: true,
                ..Default::default()
            });
        })),
        before_call: Some(Box::new(move |call: &DriverCall| {
            // One simulated host has no shared storage, neighbours or fence
            // device: it cannot vouch for other hosts. Saying "unknown" keeps
            // the management server from fencing on false evidence (the
            // controller reads any failure of a probe as an unknown).
            let cannot = match call {
                DriverCall::CheckLease { .. } => Some("no shared storage lease in a single-host simulation"),
                DriverCall::PingNeighbour { .. } => Some("no neighbours in a single-host simulation"),
                DriverCall::PowerOff { .. } => Some("no fence device in a single-host simulation"),
                _ => None,
            };
            if let Some(why) = cannot {
                return Some(DriverResult::Failed(DriverError::refused(why)));
            }
            let mut w = b2.world.lock().expect("world lock");
            for p in pools_named(call) {
                w.pools.entry(p).or_insert_with(|| SimPool {
                    name: format!("pool-{}", &p.to_string()[..8]),
                    ..Default::default()
                });
            }
            None
        })),
        ..Default::default()
    };
    (backend, hooks)
}

fn pools_named(call: &DriverCall) -> Vec<PoolId> {
    match call {
        DriverCall::DefineDomain { spec, .. } => spec.disks.iter().map(|(_, p)| *p).collect(),
        DriverCall::AttachDisk { pool, .. } | DriverCall::CheckLease { pool, .. } => vec![*pool],
        other => other.pool().into_iter().collect(),
    }
}

/// Runs the agent until a fatal error (on a runtime the caller provides).
pub async fn run_sim_agent(opts: SimHostOptions) -> Result<(), AgentError> {
    let mut config = AgentConfig::new(&opts.server, &opts.name, opts.facts());
    config.token = opts.token.clone();
    config.ping_interval = opts.ping_interval;
    config.seed = opts.seed;
    let creds: CredentialStore = Arc::new(Mutex::new(match &opts.state_file {
        Some(p) => Credentials::load(p)?,
        None => None,
    }));
    let (backend, mut hooks) = sim_backend(&opts.name, &config.facts);
    if let Some(path) = opts.state_file.clone() {
        hooks.on_enrolled = Some(Box::new(move |c: &Credentials| {
            if let Err(e) = c.save(&path) {
                eprintln!("warning: cannot save credentials to {}: {e}", path.display());
            }
        }));
    }
    let name = opts.name.clone();
    hooks.on_note = Some(Box::new(move |text: &str| eprintln!("agent {name}: {text}")));
    Agent::new(config, TokioConnector, backend, creds)
        .with_hooks(hooks)
        .run()
        .await
}

/// Runs the agent on its own single-threaded runtime (for the CLI).
pub fn run_blocking(opts: SimHostOptions) -> Result<(), AgentError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AgentError::Config(format!("cannot start the runtime: {e}")))?;
    rt.block_on(run_sim_agent(opts))
}
