//! `stratus agent`: the host agent (`stratus-agent`) over a real KVM host
//! (`--libvirt URI`, cargo feature `kvm`: `crate::agent_kvm`) or simulated
//! hosts: one (`--sim`, `stratus_sim::agent_host`) or every host of a
//! scenario in one process (`--sim-world`, `stratus_sim::agent_world`), each
//! with its own connection.

use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use stratus_sim::agent_host::{SimHostOptions, run_blocking};
use stratus_sim::agent_world::{SimWorldOptions, TokenFile, run_world_blocking};

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Run a simulated host.
    #[arg(long, conflicts_with = "libvirt")]
    sim: bool,
    /// Run a real KVM host through this libvirt URI (qemu:///system); needs a
    /// build with the cargo feature `kvm`.
    #[arg(long, value_name = "URI")]
    libvirt: Option<String>,
    #[cfg(feature = "kvm")]
    #[command(flatten)]
    kvm: crate::agent_kvm::KvmArgs,
    /// Run every host of this scenario's simulated datacenter, one agent each,
    /// over one shared world (tokens from --token-file).
    #[arg(long, value_name = "SCENARIO", conflicts_with_all = ["sim", "name", "token", "state"])]
    sim_world: Option<PathBuf>,
    /// Management server address, HOST:PORT.
    #[arg(long)]
    server: String,
    /// One-time enrollment token (stratus1.<ca-fingerprint>.<secret>); also read
    /// from STRATUS_AGENT_TOKEN. Not needed once --state holds credentials.
    #[arg(long)]
    token: Option<String>,
    /// Enrollment tokens by host name, as `stratus manage --token-file` writes them.
    #[arg(long, requires = "sim_world")]
    token_file: Option<PathBuf>,
    /// With --sim-world: rewrite this JSON file with the world's contents (domains,
    /// NIC ports, volumes, snapshots) every --status-every-ms.
    #[arg(long, requires = "sim_world")]
    status_file: Option<PathBuf>,
    #[arg(long, default_value_t = 200, requires = "status_file")]
    status_every_ms: u64,
    /// With --sim-world: each call that changes something takes MIN-MAX ms (e.g. 5-40).
    #[arg(long, value_name = "MIN-MAX", requires = "sim_world")]
    latency_ms: Option<String>,
    /// This host's name, as in the management server's inventory.
    #[arg(long, required_unless_present = "sim_world")]
    name: Option<String>,
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
    /// Seed of the reconnect jitter (and of the world).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(a: AgentArgs) -> anyhow::Result<()> {
    if let Some(scenario) = &a.sim_world {
        return run_world(&a, scenario);
    }
    if !a.sim && a.libvirt.is_none() {
        bail!("pass --libvirt URI (a KVM host), --sim or --sim-world");
    }
    let ping_interval = match a.ping_interval {
        None => None,
        Some(s) if s.is_finite() && (0.1..=3600.0).contains(&s) => Some(Duration::from_secs_f64(s)),
        Some(s) => bail!("--ping-interval {s}: expected seconds between 0.1 and 3600"),
    };
    let token = a.token.clone().or_else(|| std::env::var("STRATUS_AGENT_TOKEN").ok());
    if token.is_none() && !a.state.as_ref().is_some_and(|p| p.exists()) {
        bail!("an enrollment token is required (--token or STRATUS_AGENT_TOKEN) until --state holds credentials");
    }
    if let Some(uri) = &a.libvirt {
        return run_kvm(&a, uri, token, ping_interval);
    }
    let memory_bytes = a.memory_gib.checked_mul(1 << 30).context("--memory-gib is too large")?;
    run_blocking(SimHostOptions {
        server: a.server,
        token,
        name: a.name.context("--name is required")?,
        ping_interval,
        cores: a.cores,
        mhz: a.mhz,
        memory_bytes,
        state_file: a.state,
        seed: a.seed,
    })?;
    Ok(())
}

#[cfg(feature = "kvm")]
fn run_kvm(a: &AgentArgs, uri: &str, token: Option<String>, ping_interval: Option<Duration>) -> anyhow::Result<()> {
    use crate::agent_kvm::{KvmAgentOptions, host_monitor, kvm_config, run_kvm_agent};
    run_kvm_agent(KvmAgentOptions {
        server: a.server.clone(),
        name: a.name.clone().context("--name is required")?,
        token,
        state_file: a.state.clone(),
        ping_interval,
        seed: a.seed,
        config: kvm_config(uri, &a.kvm)?,
        host_monitor: host_monitor(&a.kvm)?,
    })
}

#[cfg(not(feature = "kvm"))]
fn run_kvm(_: &AgentArgs, uri: &str, _: Option<String>, _: Option<Duration>) -> anyhow::Result<()> {
    bail!("--libvirt {uri}: this stratus was built without KVM support (cargo build --features kvm)")
}

fn run_world(a: &AgentArgs, scenario: &std::path::Path) -> anyhow::Result<()> {
    let Some(token_file) = &a.token_file else {
        bail!("--sim-world needs --token-file (written by `stratus manage --token-file`)");
    };
    let tokens = TokenFile::load(token_file).map_err(anyhow::Error::msg)?;
    let latency_ms = match &a.latency_ms {
        None => (0, 0),
        Some(text) => {
            let parsed = text
                .split_once('-')
                .and_then(|(lo, hi)| Some((lo.trim().parse::<u64>().ok()?, hi.trim().parse::<u64>().ok()?)));
            match parsed {
                Some((lo, hi)) if lo <= hi && hi <= 600_000 => (lo, hi),
                _ => bail!("--latency-ms {text}: expected MIN-MAX milliseconds, e.g. 5-40"),
            }
        }
    };
    let (_, built) = stratus_sim::scenario::load_and_build(scenario).map_err(|e| anyhow::anyhow!("{e}"))?;
    run_world_blocking(SimWorldOptions {
        server: a.server.clone(),
        cloud: built.cloud,
        tokens,
        status_file: a.status_file.clone(),
        status_every: Duration::from_millis(a.status_every_ms.max(10)),
        seed: a.seed,
        latency_ms,
    })?;
    Ok(())
}
