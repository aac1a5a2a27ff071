//! The storage lease and the isolation watchdog.
//!
//! Every interval the agent renews its lease on each shared pool; every line
//! from the management server counts as contact. The rule itself is
//! `stratus_drivers::Watchdog` (shared with the simulated host): only a host
//! that for `lease_timeout` could neither renew a lease **nor** hear from
//! management stops its VMs. A storage blip while the server still answers,
//! or a lost link while a lease still renews, stops nothing.
//!
//! Beside a host monitor (`AgentConfig::host_monitor`, `stratus hostmon`) the
//! monitor renews the leases: this loop only follows its stamp (feeding the
//! monitor's renewals to this watchdog, which still guards) and renews the
//! leases itself while the monitor is gone. `renew_leases` and `enforce` are
//! the steps both processes run.

use super::{AgentStats, Backend, Hooks, HostMonitorLink};
use crate::stamp::{self, ContactStamp, StampReader};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratus_drivers::Watchdog;
use stratus_wire::ids::{HostId, PoolId, VmId};
use tokio::time::Instant;

/// The watchdog and the clock it runs on (ms since the agent started,
/// tokio's clock), shared by the session (contact) and the lease loop. With a
/// host monitor, each contact is also stamped for the monitor.
#[derive(Clone, Debug)]
pub(crate) struct Isolation {
    epoch: Instant,
    watchdog: Arc<Mutex<Watchdog>>,
    contact_stamp: Option<Arc<ContactStamp>>,
}

impl Isolation {
    pub fn new(lease_timeout: Duration) -> Isolation {
        Isolation {
            epoch: Instant::now(),
            watchdog: Arc::new(Mutex::new(Watchdog::new(lease_timeout.as_millis() as u64))),
            contact_stamp: None,
        }
    }

    /// Also stamps every contact into `run_dir` for the host monitor.
    pub fn with_contact_stamp(mut self, run_dir: &std::path::Path) -> Isolation {
        self.contact_stamp = Some(Arc::new(ContactStamp::new(run_dir)));
        self
    }

    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn watchdog(&self) -> std::sync::MutexGuard<'_, Watchdog> {
        self.watchdog.lock().expect("watchdog lock")
    }

    /// A line from the management server arrived.
    pub fn contact(&self) {
        let now = self.now_ms();
        self.watchdog().on_management_contact(now);
        if let Some(s) = &self.contact_stamp
            && let Err(e) = s.touch()
        {
            // The monitor will count management as silent: it fences sooner, never later.
            tracing::warn!(error = %e, "agent.contact_stamp.unwritten");
        }
    }

    /// A lease was renewed at `at_ms` (this clock).
    pub fn lease_renewed(&self, at_ms: u64) {
        self.watchdog().on_lease_renewed(at_ms);
    }
}

/// Renews the host's lease on every pool; true if any was renewed.
pub(crate) async fn renew_leases<B: Backend>(backend: &B, host: HostId, pools: &[PoolId]) -> bool {
    let mut renewed = false;
    for p in pools {
        renewed |= backend.heartbeat(*p, host).await.is_ok();
    }
    renewed
}

/// What the watchdog's verdict did this round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Guard {
    /// Not isolated: nothing to stop.
    Live,
    /// Isolated: every running domain was asked to stop; `failed` refused.
    Isolated { stopped: usize, failed: usize },
    /// Isolated, but the domains cannot be listed (libvirt down?).
    Unlisted,
}

/// Applies the watchdog's verdict at this moment: once it says the host is
/// isolated, stops every running domain (and keeps stopping what still runs,
/// each round, until a sign of life), so the management server may restart
/// them elsewhere once the lease is stale.
pub(crate) async fn enforce<B: Backend>(
    backend: &B,
    host: HostId,
    iso: &Isolation,
    stats: &AgentStats,
    note: &(dyn Fn(&str) + Send + Sync),
) -> Guard {
    let now = iso.now_ms();
    let (isolated, due, silent_ms) = {
        let w = iso.watchdog();
        (w.is_isolated(now), w.should_fence(now), w.isolated_for_ms(now))
    };
    if !isolated {
        return Guard::Live;
    }
    let Ok(domains) = backend.query_domains(host).await else {
        return Guard::Unlisted; // cannot list domains now: try again next round
    };
    let running: Vec<VmId> = domains.into_iter().filter(|d| d.running).map(|d| d.vm).collect();
    if due {
        iso.watchdog().fenced(now);
        if !running.is_empty() {
            stats.self_fenced.fetch_add(1, Relaxed);
        }
        note(&format!(
            "watchdog: no lease renewed and no word from the management server for {:.1} s: \
             stopping {} VMs",
            silent_ms as f64 / 1e3,
            running.len()
        ));
    }
    let (mut stopped, mut failed) = (0, 0);
    for vm in running {
        match backend.stop_domain(host, vm, true).await {
            Ok(()) => stopped += 1,
            Err(_) => failed += 1,
        }
    }
    Guard::Isolated { stopped, failed }
}

/// The agent's view of the host monitor: alive while its stamp changes; its
/// lease renewals feed the agent's own watchdog, so a takeover continues
/// from what the monitor knew.
#[derive(Debug)]
struct MonitorWatch {
    link: HostMonitorLink,
    reader: StampReader,
    last_seen_ms: u64,
    taken_over: bool,
}

impl MonitorWatch {
    fn new(link: HostMonitorLink) -> MonitorWatch {
        MonitorWatch {
            reader: StampReader::new(link.run_dir.join(stamp::MONITOR_FILE)),
            link,
            last_seen_ms: 0, // the monitor gets `takeover_after` from the agent's start
            taken_over: false,
        }
    }

    /// True while the monitor renews the leases (this round); false once the
    /// agent must renew them itself.
    fn monitor_renews(&mut self, iso: &Isolation, note: &(dyn Fn(&str) + Send + Sync)) -> bool {
        let now = iso.now_ms();
        if let Some(seen) = self.reader.look(now) {
            self.last_seen_ms = self.last_seen_ms.max(seen.at);
            if let Some(at) = seen.lease_renewed_at {
                iso.lease_renewed(at);
            }
            if self.taken_over {
                self.taken_over = false;
                tracing::info!(pid = seen.stamp.pid, "agent.hostmon.back");
                note(&format!(
                    "the host monitor (pid {}) is back: it renews the leases again",
                    seen.stamp.pid
                ));
            }
        }
        let silent = now.saturating_sub(self.last_seen_ms);
        if silent < self.link.takeover_after.as_millis() as u64 {
            return true;
        }
        if !self.taken_over {
            self.taken_over = true;
            tracing::error!(
                stamp = %self.reader.path().display(),
                silent_ms = silent,
                "agent.hostmon.gone: this agent renews the leases and runs the watchdog itself"
            );
            note(&format!(
                "the host monitor is gone ({} not rewritten for {:.1} s): this agent renews the leases itself",
                self.reader.path().display(),
                silent as f64 / 1e3
            ));
        }
        false
    }
}

/// Renews the host's lease on its shared pools every `every` and applies the
/// watchdog. With a host monitor (`monitor`), the monitor renews the leases
/// and this loop only follows it, taking over while it is gone; the
/// watchdog runs here either way (a second guard, same rule).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn lease_loop<B: Backend>(
    backend: Arc<B>,
    host: HostId,
    pools: Vec<PoolId>,
    every: Duration,
    iso: Isolation,
    stats: Arc<AgentStats>,
    hooks: Arc<Hooks>,
    monitor: Option<HostMonitorLink>,
) {
    let note = |text: &str| {
        if let Some(f) = &hooks.on_note {
            f(text);
        }
    };
    let mut watch = monitor.map(MonitorWatch::new);
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        let now_pools = hooks.lease_pools.as_ref().map(|f| f());
        let pools = now_pools.as_ref().unwrap_or(&pools);
        if pools.is_empty() {
            continue; // no shared pool: no lease to lose, no watchdog
        }
        let delegated = watch.as_mut().is_some_and(|w| w.monitor_renews(&iso, &note));
        if !delegated && renew_leases(&*backend, host, pools).await {
            iso.lease_renewed(iso.now_ms());
        }
        enforce(&*backend, host, &iso, &stats, &note).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::fake::FakeHost;
    use stratus_wire::uuid::Uuid;

    const HOST: HostId = HostId(Uuid::from_u128(1));
    const POOL: PoolId = PoolId(Uuid::from_u128(2));
    const VM: VmId = VmId(Uuid::from_u128(3));

    /// A host running one VM, its lease loop (1 s interval, 3 s timeout) and
    /// a management server that answers (every second) until `silent_from`.
    fn start(silent_from: Duration) -> (Arc<FakeHost>, Arc<AgentStats>, Vec<tokio::task::JoinHandle<()>>) {
        let backend = Arc::new(FakeHost::with_running(&[VM]));
        let stats = Arc::new(AgentStats::default());
        let iso = Isolation::new(Duration::from_secs(3));
        let lease = tokio::spawn(lease_loop(
            backend.clone(),
            HOST,
            vec![POOL],
            Duration::from_secs(1),
            iso.clone(),
            stats.clone(),
            Arc::default(),
            None,
        ));
        let server = tokio::spawn(async move {
            let start = Instant::now();
            while start.elapsed() < silent_from {
                iso.contact(); // a pong
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        (backend, stats, vec![lease, server])
    }

    #[tokio::test(start_paused = true)]
    async fn a_storage_blip_while_management_answers_stops_nothing() {
        let (host, stats, tasks) = start(Duration::from_secs(3600));
        tokio::time::sleep(Duration::from_secs(2)).await;
        host.set_storage(false); // 20 s without any lease: far past the timeout
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(host.running(), vec![VM], "the VM keeps running");
        host.set_storage(true);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(host.running(), vec![VM]);
        assert_eq!(stats.self_fenced.load(Relaxed), 0);
        tasks.iter().for_each(|t| t.abort());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_link_while_the_lease_renews_stops_nothing() {
        let (host, stats, tasks) = start(Duration::from_secs(2));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(host.running(), vec![VM]);
        assert_eq!(stats.self_fenced.load(Relaxed), 0);
        tasks.iter().for_each(|t| t.abort());
    }

    #[tokio::test(start_paused = true)]
    async fn the_hook_names_the_pools_and_none_means_no_watchdog() {
        let host = Arc::new(FakeHost::with_running(&[VM]));
        let pools = Arc::new(Mutex::new(Vec::<PoolId>::new()));
        let named = pools.clone();
        let hooks = Hooks {
            lease_pools: Some(Box::new(move || named.lock().unwrap().clone())),
            ..Default::default()
        };
        let stats = Arc::new(AgentStats::default());
        // Management is never heard from.
        let lease = tokio::spawn(lease_loop(
            host.clone(),
            HOST,
            vec![POOL],
            Duration::from_secs(1),
            Isolation::new(Duration::from_secs(3)),
            stats.clone(),
            Arc::new(hooks),
            None,
        ));
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(host.running(), vec![VM], "no shared pool yet: no lease to lose");
        pools.lock().unwrap().push(POOL);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(host.running(), vec![VM], "the pool the hook named is renewed");
        host.set_storage(false);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(host.running().is_empty(), "isolated: the watchdog stopped the VM");
        assert_eq!(stats.self_fenced.load(Relaxed), 1);
        lease.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn losing_both_stops_the_vms_once() {
        // Management is silent from 5 s on; storage fails at 5 s too.
        let (host, stats, tasks) = start(Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(5_500)).await;
        host.set_storage(false);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(host.running(), vec![VM], "not before the lease timeout");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(host.running().is_empty(), "the watchdog stopped the VM");
        assert_eq!(stats.self_fenced.load(Relaxed), 1);
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(stats.self_fenced.load(Relaxed), 1, "once per isolation");
        tasks.iter().for_each(|t| t.abort());
    }
}
