//! `stratus hostmon`: the host monitor of a KVM host (`stratus_agent::hostmon`),
//! the lease writer and isolation watchdog in a process of their own, so that
//! killing the agent never lets the management server restart VMs that still
//! run here. Runs beside `stratus agent --host-monitor-dir DIR` (same DIR);
//! needs a build with the cargo feature `kvm`.

use anyhow::bail;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct HostmonArgs {
    /// This host's libvirt URI (as given to `stratus agent --libvirt`).
    #[arg(long, value_name = "URI")]
    pub libvirt: String,
    /// A primary pool, exactly as given to `stratus agent --pool` (ID=SPEC);
    /// the lease is renewed on every shared one. Repeatable.
    #[arg(long = "pool", value_name = "ID=SPEC")]
    pub pools: Vec<String>,
    /// The agent's credentials file (its --state): names this host. The
    /// monitor waits for it to appear (the agent's first enrollment).
    #[arg(long)]
    pub state: PathBuf,
    /// The run directory shared with the agent (stamp files).
    #[arg(long, default_value = "/run/stratus")]
    pub run_dir: PathBuf,
    /// Seconds between rounds (lease renewal, stamps, watchdog).
    #[arg(long, default_value_t = 3.0)]
    pub interval: f64,
    /// Seconds without a renewed lease and without management contact after
    /// which the host stops its VMs (the management server's ha.lease.timeout).
    #[arg(long, default_value_t = 9.0)]
    pub lease_timeout: f64,
    /// A kernel watchdog device to pet every round (production: /dev/watchdog):
    /// if the monitor dies, or cannot stop its VMs while isolated, the host is
    /// reset. Its timeout must be shorter than ha.lease.timeout (see docs/install-kvm.md).
    #[arg(long, value_name = "DEVICE")]
    pub hardware_watchdog: Option<PathBuf>,
}

fn seconds(flag: &str, s: f64, range: std::ops::RangeInclusive<f64>) -> anyhow::Result<Duration> {
    if s.is_finite() && range.contains(&s) {
        Ok(Duration::from_secs_f64(s))
    } else {
        bail!(
            "{flag} {s}: expected seconds between {} and {}",
            range.start(),
            range.end()
        )
    }
}

/// Logs to stderr (systemd's journal in production), filtered by STRATUS_LOG.
#[cfg(feature = "kvm")]
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("STRATUS_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn run(a: HostmonArgs) -> anyhow::Result<()> {
    let every = seconds("--interval", a.interval, 0.1..=60.0)?;
    let lease_timeout = seconds("--lease-timeout", a.lease_timeout, 1.0..=3600.0)?;
    if lease_timeout < every * 2 {
        bail!("--lease-timeout must be at least two --interval rounds");
    }
    run_kvm(a, every, lease_timeout)
}

#[cfg(feature = "kvm")]
fn run_kvm(a: HostmonArgs, every: Duration, lease_timeout: Duration) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::sync::Arc;
    use stratus_agent::hostmon::{HardwareWatchdog, MonitorConfig, MonitorStats, run_monitor, wait_for_host};
    use stratus_drivers::kvm::{Kvm, KvmConfig};

    let mut config = KvmConfig::new(&a.libvirt);
    for p in &a.pools {
        let (id, spec) = crate::agent_kvm::split_id(p, "--pool")?;
        config
            .pools
            .insert(stratus_core::ids::PoolId(id), crate::agent_kvm::parse_pool(&spec)?);
    }
    init_logging();
    std::fs::create_dir_all(&a.run_dir).with_context(|| format!("--run-dir {}", a.run_dir.display()))?;
    // Opened before anything else can fail for long: from here on the host
    // resets unless this process keeps petting it.
    let hw = match &a.hardware_watchdog {
        Some(dev) => {
            Some(HardwareWatchdog::open(dev).with_context(|| format!("--hardware-watchdog {}", dev.display()))?)
        }
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let kvm = Kvm::new(config);
        let pools = kvm.0.lease_pools();
        if pools.is_empty() {
            tracing::warn!("hostmon: no shared pool (--pool ID=nfs://… or netfs://…): no lease to renew, no watchdog");
        }
        let host = wait_for_host(&a.state, every).await?;
        tracing::info!(
            %host,
            pools = ?pools,
            run_dir = %a.run_dir.display(),
            interval_s = every.as_secs_f64(),
            lease_timeout_s = lease_timeout.as_secs_f64(),
            hardware_watchdog = ?a.hardware_watchdog,
            "hostmon.started"
        );
        let cfg = MonitorConfig {
            run_dir: a.run_dir.clone(),
            host,
            pools,
            every,
            lease_timeout,
        };
        run_monitor(Arc::new(kvm), cfg, hw, Arc::new(MonitorStats::default()), stopped()).await;
        tracing::info!("hostmon.stopped");
        anyhow::Ok(())
    })
}

/// SIGTERM (systemctl stop) or Ctrl-C: a deliberate stop.
#[cfg(feature = "kvm")]
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(not(feature = "kvm"))]
fn run_kvm(a: HostmonArgs, _: Duration, _: Duration) -> anyhow::Result<()> {
    bail!(
        "hostmon --libvirt {}: this stratus was built without KVM support (cargo build --features kvm)",
        a.libvirt
    )
}
