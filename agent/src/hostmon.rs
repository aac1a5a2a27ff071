//! The host monitor (`stratus hostmon`): the storage lease and the isolation
//! watchdog in a process of their own, so they outlive the agent.
//!
//! If the lease writer lived only in the agent, an agent killed on a healthy
//! host would stop its lease: after `ha.lease.timeout` plus a margin the
//! management server counts the host fenced (lease stale, host silent) and
//! restarts its HA VMs elsewhere while the guests still run here on the same
//! shared disks: two copies. With the monitor alive the lease stays fresh, so
//! the server only marks the host Disconnected, and its VMs stay put.
//!
//! Every round the monitor renews the host's lease on each shared pool,
//! counts the agent's contact stamp (`stamp::CONTACT_FILE`) as a word from
//! management, rewrites its own stamp (`stamp::MONITOR_FILE`, which the agent
//! watches to take over while the monitor is gone) and applies the same
//! `stratus_drivers::Watchdog` rule as the agent and the simulator: isolated
//! (no lease renewed and no contact for the timeout) means stop every
//! Stratus-managed domain, and keep stopping them until a sign of life.
//!
//! Optionally it pets a hardware watchdog device (`/dev/watchdog`) every
//! round, so that the monitor's own death resets the host; it stops petting
//! while isolated domains cannot be stopped, so the reset does it.

use crate::agent::lease::{Guard, Isolation, enforce, renew_leases};
use crate::agent::{AgentError, AgentStats, Backend, Credentials};
use crate::stamp::{self, Stamp, StampReader};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use stratus_wire::ids::{HostId, PoolId};

/// What one monitor runs with.
#[derive(Clone, Debug)]
pub struct MonitorConfig {
    /// The run directory shared with the agent (stamp files).
    pub run_dir: PathBuf,
    pub host: HostId,
    /// The shared pools to renew a lease on; empty: no lease, no watchdog.
    pub pools: Vec<PoolId>,
    /// Time between rounds (lease renewal, stamps, watchdog).
    pub every: Duration,
    /// `ha.lease.timeout`: isolated this long, the host stops its VMs.
    pub lease_timeout: Duration,
}

/// Counters, for tests and operators.
#[derive(Debug, Default)]
pub struct MonitorStats {
    pub rounds: AtomicU64,
    /// Rounds in which at least one lease was renewed.
    pub renewals: AtomicU64,
    /// Changes of the agent's contact stamp seen.
    pub contacts: AtomicU64,
    /// Times the hardware watchdog was petted.
    pub pets: AtomicU64,
    /// Isolations in which the watchdog stopped running VMs (as the agent counts them).
    pub fence: AgentStats,
}

/// A hardware watchdog device (`/dev/watchdog`): once opened, the kernel
/// resets the host unless it is written to within its timeout. Closing it
/// after writing `V` disarms it (unless the kernel was built with nowayout).
#[derive(Debug)]
pub struct HardwareWatchdog {
    path: PathBuf,
    file: std::fs::File,
}

impl HardwareWatchdog {
    pub fn open(path: &Path) -> std::io::Result<HardwareWatchdog> {
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        Ok(HardwareWatchdog {
            path: path.to_path_buf(),
            file,
        })
    }

    fn pet(&mut self) -> std::io::Result<()> {
        self.file.write_all(b"\0")?;
        self.file.flush()
    }

    /// A deliberate stop: the magic close, so the host is not reset.
    fn disarm(mut self) {
        if let Err(e) = self.file.write_all(b"V").and_then(|_| self.file.flush()) {
            tracing::error!(device = %self.path.display(), error = %e, "hostmon.watchdog.disarm_failed");
        }
    }
}

/// Waits until the agent's credentials file names the host (after its first
/// enrollment), looking every `every`.
pub async fn wait_for_host(state: &Path, every: Duration) -> Result<HostId, AgentError> {
    let mut said = false;
    loop {
        if let Some(c) = Credentials::load(state)? {
            return Ok(c.host_id);
        }
        if !said {
            tracing::info!(state = %state.display(), "hostmon.waiting_for_enrollment");
            said = true;
        }
        tokio::time::sleep(every).await;
    }
}

/// One round's findings, for the log's state changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Round {
    renewed: bool,
    guard: Guard,
}

/// Runs the monitor until `stop` resolves (then disarms the hardware
/// watchdog, if any, and returns). Never returns otherwise.
pub async fn run_monitor<B: Backend>(
    backend: Arc<B>,
    cfg: MonitorConfig,
    mut hw: Option<HardwareWatchdog>,
    stats: Arc<MonitorStats>,
    stop: impl std::future::Future<Output = ()>,
) {
    let iso = Isolation::new(cfg.lease_timeout);
    let mut contact = StampReader::new(cfg.run_dir.join(stamp::CONTACT_FILE));
    let own = cfg.run_dir.join(stamp::MONITOR_FILE);
    let mut ticker = tokio::time::interval(cfg.every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    let mut lease_renewed_ms = None;
    let mut previous: Option<Round> = None;
    let mut stamp_failing = false;
    let note = |text: &str| tracing::warn!(note = text, "hostmon");
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {}
        }
        stats.rounds.fetch_add(1, Relaxed);
        let renewed = !cfg.pools.is_empty() && renew_leases(&*backend, cfg.host, &cfg.pools).await;
        let now = iso.now_ms();
        if renewed {
            iso.lease_renewed(now);
            lease_renewed_ms = Some(stamp::wall_ms());
            stats.renewals.fetch_add(1, Relaxed);
        }
        if let Some(seen) = contact.look(now) {
            iso.watchdog().on_management_contact(seen.at);
            stats.contacts.fetch_add(1, Relaxed);
        }
        seq += 1;
        let mine = Stamp {
            pid: std::process::id(),
            seq,
            at_ms: stamp::wall_ms(),
            lease_renewed_ms,
            lease_renewals: stats.renewals.load(Relaxed),
        };
        match stamp::write(&own, &mine) {
            Ok(()) => stamp_failing = false,
            Err(e) if !stamp_failing => {
                // The agent will take the leases over: two writers, harmless.
                stamp_failing = true;
                tracing::error!(stamp = %own.display(), error = %e, "hostmon.stamp.unwritten");
            }
            Err(_) => {}
        }
        let guard = if cfg.pools.is_empty() {
            Guard::Live // no shared pool: no lease to lose, no watchdog
        } else {
            enforce(&*backend, cfg.host, &iso, &stats.fence, &note).await
        };
        let round = Round { renewed, guard };
        log_change(previous, round, &cfg);
        previous = Some(round);
        // Isolated with domains that could not be stopped: stop petting, so
        // the hardware watchdog resets the host (the fence of last resort).
        let safe = matches!(guard, Guard::Live | Guard::Isolated { failed: 0, .. });
        if let Some(w) = hw.as_mut().filter(|_| safe) {
            match w.pet() {
                Ok(()) => {
                    stats.pets.fetch_add(1, Relaxed);
                }
                Err(e) => tracing::error!(device = %w.path.display(), error = %e, "hostmon.watchdog.pet_failed"),
            }
        }
    }
    if let Some(w) = hw {
        w.disarm();
    }
}

fn log_change(previous: Option<Round>, now: Round, cfg: &MonitorConfig) {
    if previous.map(|p| p.renewed) != Some(now.renewed) && !cfg.pools.is_empty() {
        if now.renewed {
            tracing::info!(host = %cfg.host, pools = cfg.pools.len(), "hostmon.lease.renewing");
        } else {
            tracing::warn!(host = %cfg.host, "hostmon.lease.failed: no pool's lease could be renewed");
        }
    }
    match now.guard {
        Guard::Unlisted => tracing::error!("hostmon.isolated: cannot list the domains to stop them"),
        Guard::Isolated { failed, .. } if failed > 0 => {
            tracing::error!(failed, "hostmon.isolated: some domains refused to stop")
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "hostmon_tests.rs"]
mod tests;
