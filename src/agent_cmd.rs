//! `stratus agent`: the host agent (`stratus-agent`). Today only with a
//! simulated host (`--sim`, `stratus_sim::agent_host`); the KVM backend
//! (libvirt, Open vSwitch, NFS) will plug into the same agent.

use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use stratus_sim::agent_host::{SimHostOptions, run_blocking};

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Run a simulated host (required until the KVM backend exists).
    #[arg(long)]
    sim: bool,
    /// Management server address, HOST:PORT.
    #[arg(long)]
    server: String,
    /// One-time enrollment token (stratus1.<ca-fingerprint>.<secret>); also read
    /// from STRATUS_AGENT_TOKEN. Not needed once --state holds credentials.
    #[arg(long)]
    token: Option<String>,
    /// This host's name, as in the management server's inventory.
    #[arg(long)]
    name: String,
    /// Seconds between heartbeats (default: the server's ping.interval).
    #[arg(long)]
    ping_interval: Option<f64>,
    /// Simulated CPU cores.
    #[arg(long, default_value_t = 8)]
    cores: u32,
    /// Simulated MHz per core.
    #[arg(long, default_value_t = 2000)]
    mhz: u32,
    /// Simulated memory, GiB.
    #[arg(long, default_value_t = 32)]
    memory_gib: u64,
    /// File keeping the host's credentials after enrollment (mode 0600).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Seed of the reconnect jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(a: AgentArgs) -> anyhow::Result<()> {
    if !a.sim {
        bail!("only simulated hosts are supported yet: pass --sim");
    }
    let ping_interval = match a.ping_interval {
        None => None,
        Some(s) if s.is_finite() && (0.1..=3600.0).contains(&s) => Some(Duration::from_secs_f64(s)),
        Some(s) => bail!("--ping-interval {s}: expected seconds between 0.1 and 3600"),
    };
    let token = a.token.or_else(|| std::env::var("STRATUS_AGENT_TOKEN").ok());
    if token.is_none() && !a.state.as_ref().is_some_and(|p| p.exists()) {
        bail!("an enrollment token is required (--token or STRATUS_AGENT_TOKEN) until --state holds credentials");
    }
    let memory_bytes = a.memory_gib.checked_mul(1 << 30).context("--memory-gib is too large")?;
    run_blocking(SimHostOptions {
        server: a.server,
        token,
        name: a.name,
        ping_interval,
        cores: a.cores,
        mhz: a.mhz,
        memory_bytes,
        state_file: a.state,
        seed: a.seed,
    })?;
    Ok(())
}
