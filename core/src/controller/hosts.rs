//! Host health, investigation, fencing and VM HA.
//!
//! A host that misses pings for `ping.interval × ping.timeout` goes **Alert** and
//! is investigated: its storage lease on every shared pool and up to two
//! neighbours. Leases are judged in one clock domain, the management server's:
//! the value a host writes is opaque (it changes at every renewal) and is only
//! compared with the previous read of itself; how long it stayed unchanged is
//! measured by this server's own reads (see [`LeaseObs`]). Any sign of life (a
//! lease that advanced since the last read, a neighbour that reaches it)
//! makes it **Disconnected**: link lost, host alive, its VMs are *not*
//! restarted. Only evidence of death makes it **Down**, and its VMs are
//! restarted elsewhere **only after fencing is proven**: its lease stale and the
//! host silent for `ha.lease.timeout` plus two ping intervals (a host that can
//! neither renew its lease nor reach management for `ha.lease.timeout` stops its
//! own VMs), or the fence driver powered it off. Every answer is kept as
//! evidence on the host.

use super::Controller;
use super::effects::{DriverCall, DriverResult, Effect, OpId, Timer};
pub use super::lease_obs::LeaseObs;
use super::lease_obs::{LeaseVerdict, observe_lease};
use crate::controller::EventKind;
use crate::ids::*;
use crate::inventory::{HostStatus, PoolScope};
use crate::settings::Scope;
use crate::units::Millis;
use crate::vm::Charge;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Probe {
    Lease(PoolIdx),
    Neighbour(HostIdx),
    PowerOff,
    /// Stopping a stray copy of a VM found running where it should not be.
    StrayStop(VmId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sign {
    Alive,
    Dead,
    Unknown,
}

impl std::fmt::Display for Sign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sign::Alive => "alive",
            Sign::Dead => "dead",
            Sign::Unknown => "unknown",
        })
    }
}

/// One answer about a host, kept so an operator can see why it is in its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub at: Millis,
    pub source: String,
    pub sign: Sign,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceProof {
    /// The lease was stale for this long (ms): the host has stopped its VMs.
    LeaseExpired {
        stale_ms: u64,
    },
    PoweredOff,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HostHealth {
    pub last_ping: Option<Millis>,
    pub evidence: VecDeque<Evidence>,
    /// Probes in flight and the tallies so far.
    pending: u32,
    alive: u32,
    dead: u32,
    /// Lower bound (ms, this server's clock) on how long every lease read this
    /// round has stayed unchanged: the smallest over the readable leases.
    min_lease_age: Option<u64>,
    any_lease_readable: bool,
    /// A readable lease of this round is not judged yet (first read, or
    /// unchanged but not for long enough): Down waits for the next read.
    lease_undecided: bool,
    /// The last lease value read on each shared pool, per this server's reads.
    /// Forgotten when the host comes back Up.
    leases: BTreeMap<PoolIdx, LeaseObs>,
    pub down_since: Option<Millis>,
    pub fenced: Option<FenceProof>,
    pub last_investigation: Option<Millis>,
    /// Whether the last investigation saw a fresh lease.
    lease_fresh: bool,
    power_off_tried: bool,
}

const EVIDENCE_KEPT: usize = 32;

/// A host as an operator sees it: state, capacity, and the evidence behind the state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostReport {
    #[serde(flatten)]
    pub view: crate::cloud::HostView,
    pub last_ping: Option<Millis>,
    pub down_since: Option<Millis>,
    pub fenced: Option<FenceProof>,
    pub evidence: Vec<Evidence>,
}

/// A VM waiting for (or in) an HA restart.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HaWork {
    pub since: Millis,
    pub lost_host: Option<HostIdx>,
    pub attempts: u32,
    pub next_at: Millis,
}

/// How an HA restart ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaOutcome {
    pub vm: VmId,
    /// The host the VM was lost with (None: its domain vanished on a live host).
    pub host: Option<HostId>,
    pub lost_at: Millis,
    pub recovered_at: Option<Millis>,
    pub reason: String,
}

impl Controller {
    pub(crate) fn ms_setting(&self, name: &str) -> u64 {
        (self.cloud.settings.f64(name, Scope::Global) * 1000.0) as u64
    }
    pub fn ping_interval_ms(&self) -> u64 {
        self.ms_setting("ping.interval").max(1)
    }
    fn late_after_ms(&self) -> u64 {
        (self.ping_interval_ms() as f64 * self.cloud.settings.f64("ping.timeout", Scope::Global)) as u64
    }
    /// A host renews its lease every ping interval: a lease that did not change
    /// for longer than this (by this server's clock) is a sign of death.
    fn lease_fresh_ms(&self) -> u64 {
        2 * self.ping_interval_ms()
    }
    /// A lease older than this proves the host stopped its VMs.
    pub fn fence_proof_ms(&self) -> u64 {
        self.ms_setting("ha.lease.timeout") + 2 * self.ping_interval_ms()
    }

    pub(crate) fn health_mut(&mut self, h: HostIdx) -> &mut HostHealth {
        if self.health.len() <= h.ix() {
            self.health
                .resize_with(self.cloud.inv.hosts.len().max(h.ix() + 1), HostHealth::default);
        }
        &mut self.health[h.ix()]
    }

    pub fn host_health(&self, h: HostIdx) -> Option<&HostHealth> {
        self.health.get(h.ix())
    }

    /// The host view with what the controller believes and why (its evidence).
    pub fn host_report(&self, h: HostIdx) -> HostReport {
        let hh = self.health.get(h.ix());
        HostReport {
            view: self.cloud.host_view(h),
            last_ping: hh.and_then(|x| x.last_ping),
            down_since: hh.and_then(|x| x.down_since),
            fenced: hh.and_then(|x| x.fenced),
            evidence: hh.map(|x| x.evidence.iter().cloned().collect()).unwrap_or_default(),
        }
    }

    fn evidence(&mut self, h: HostIdx, source: String, sign: Sign, detail: String) {
        let at = self.now;
        let name = self.cloud.inv.host(h).name.clone();
        self.event(EventKind::Evidence, name, format!("{source}: {sign:?}: {detail}"));
        let hh = self.health_mut(h);
        hh.evidence.push_back(Evidence {
            at,
            source,
            sign,
            detail,
        });
        while hh.evidence.len() > EVIDENCE_KEPT {
            hh.evidence.pop_front();
        }
    }

    fn set_status(&mut self, h: HostIdx, status: HostStatus, why: &str) {
        let host = self.cloud.inv.host_mut(h);
        if host.status == status {
            return;
        }
        let from = host.status;
        host.status = status;
        let name = host.name.clone();
        self.event(EventKind::HostState, name, format!("{from} -> {status}: {why}"));
    }

    /// Starts the periodic reconciler; every host counts as just pinged.
    pub fn start(&mut self, now: Millis) {
        self.tick(now);
        for h in 0..self.cloud.inv.hosts.len() {
            self.health_mut(HostIdx(h as u32)).last_ping = Some(now);
        }
        self.arm_tick();
    }

    fn arm_tick(&mut self) {
        let at = Millis(self.now.0 + self.ping_interval_ms());
        let epoch = self.tick_epoch;
        self.push_effect(Effect::Timer {
            at,
            timer: Timer::Tick(epoch),
        });
    }

    /// After a management restart: hosts get a grace period, probes are
    /// forgotten, and a new tick chain starts.
    pub(crate) fn after_restart_hosts(&mut self) {
        let now = self.now;
        for hh in &mut self.health {
            hh.last_ping = Some(now);
            hh.pending = 0;
        }
        self.tick_epoch += 1;
        self.arm_tick();
    }

    /// Hosts that pinged now.
    pub fn on_pings(&mut self, hosts: &[HostId], now: Millis) {
        self.tick(now);
        for id in hosts {
            let Some(h) = self.cloud.inv.find_host(*id) else {
                continue;
            };
            // Lease observations belong to one silence: a ping ends it.
            let hh = self.health_mut(h);
            hh.last_ping = Some(now);
            if !hh.leases.is_empty() {
                hh.leases.clear();
            }
            let status = self.cloud.inv.host(h).status;
            if matches!(
                status,
                HostStatus::Alert | HostStatus::Disconnected | HostStatus::Down | HostStatus::Connecting
            ) {
                self.evidence(h, "ping".into(), Sign::Alive, "pings resumed".into());
                let hh = self.health_mut(h);
                hh.down_since = None;
                hh.fenced = None;
                hh.power_off_tried = false;
                self.set_status(h, HostStatus::Up, "pings resumed");
                self.settle_calls_lost_with_link(h);
            }
        }
    }

    /// The periodic reconciler.
    pub(crate) fn on_tick(&mut self) {
        let now = self.now;
        let late = self.late_after_ms();
        for i in 0..self.cloud.inv.hosts.len() {
            let h = HostIdx(i as u32);
            let status = self.cloud.inv.host(h).status;
            let last = self.health_mut(h).last_ping.unwrap_or(now);
            let silent = now.0.saturating_sub(last.0);
            match status {
                HostStatus::Up if silent > late => {
                    self.evidence(
                        h,
                        "ping".into(),
                        Sign::Dead,
                        format!(
                            "no ping for {:.1} s (late after {:.1} s)",
                            silent as f64 / 1e3,
                            late as f64 / 1e3
                        ),
                    );
                    self.set_status(h, HostStatus::Alert, "missed pings; investigating");
                    self.investigate(h);
                }
                // One ping missed: start watching its leases, so that by the time
                // it is Alert a first reading is already there to compare with.
                HostStatus::Up if silent > self.ping_interval_ms() => {
                    let hh = self.health_mut(h);
                    if hh.pending == 0 && hh.leases.is_empty() {
                        self.read_leases(h);
                    }
                }
                HostStatus::Alert if self.health_mut(h).pending == 0 => self.investigate(h),
                // Alive but unreachable: with a fresh lease, look again every
                // investigate.retry.interval; alive only by its neighbours (its lease
                // going stale, e.g. a hung agent), keep watching the lease every tick.
                HostStatus::Disconnected if self.health_mut(h).pending == 0 => {
                    let every = self.ms_setting("investigate.retry.interval");
                    let hh = self.health_mut(h);
                    let due = hh
                        .last_investigation
                        .is_none_or(|last| now.0.saturating_sub(last.0) >= every);
                    if !hh.lease_fresh || due {
                        self.investigate(h);
                    }
                }
                HostStatus::Down => {
                    if self.health_mut(h).fenced.is_some() {
                        self.recover_vms_of(h);
                    } else {
                        if self.health_mut(h).pending == 0 {
                            self.investigate(h);
                        }
                        self.block_unfenceable(h);
                    }
                }
                _ => {}
            }
        }
        self.ha_tick();
        self.maintenance_tick();
        self.clean_leftovers();
        self.arm_tick();
    }

    pub(crate) fn probe(&mut self, h: HostIdx, probe: Probe, call: DriverCall) {
        // Investigations must not wait on a silent neighbour for minutes.
        let timeout = match probe {
            Probe::Lease(_) | Probe::Neighbour(_) => 2 * self.ping_interval_ms(),
            Probe::PowerOff | Probe::StrayStop(_) => super::op_timeout_ms(&call),
        };
        let op = self.call_untracked(call, timeout);
        self.probe_ops.insert(op, (h, probe));
        if !matches!(probe, Probe::StrayStop(_)) {
            self.health_mut(h).pending += 1;
        }
    }

    /// Reads a late (still Up) host's leases: first readings to judge by later.
    fn read_leases(&mut self, h: HostIdx) {
        let hid = self.cloud.inv.host(h).id;
        let now = self.now;
        let hh = self.health_mut(h);
        hh.last_investigation = Some(now);
        for p in self.shared_pools(h) {
            let pool = self.cloud.pool_id(p);
            self.probe(h, Probe::Lease(p), DriverCall::CheckLease { host: hid, pool });
        }
    }

    fn shared_pools(&self, h: HostIdx) -> Vec<PoolIdx> {
        let cl = self.cloud.inv.host(h).cluster;
        self.cloud.inv.cluster_pools[cl.ix()]
            .iter()
            .copied()
            .filter(|p| !matches!(self.cloud.inv.pool(*p).scope, PoolScope::Host(_)))
            .collect()
    }

    /// Asks storage and neighbours about a silent host.
    fn investigate(&mut self, h: HostIdx) {
        let host = self.cloud.inv.host(h);
        let (hid, cl) = (host.id, host.cluster);
        let pools = self.shared_pools(h);
        let neighbours: Vec<HostIdx> = self
            .cloud
            .inv
            .cluster(cl)
            .hosts
            .iter()
            .copied()
            .filter(|n| *n != h && self.cloud.inv.host(*n).status == HostStatus::Up)
            .take(2)
            .collect();
        let now = self.now;
        let hh = self.health_mut(h);
        hh.last_investigation = Some(now);
        hh.lease_fresh = false;
        hh.alive = 0;
        hh.dead = 0;
        hh.min_lease_age = None;
        hh.any_lease_readable = false;
        hh.lease_undecided = false;
        for p in pools {
            let pool = self.cloud.pool_id(p);
            self.probe(h, Probe::Lease(p), DriverCall::CheckLease { host: hid, pool });
        }
        for n in neighbours {
            let from = self.cloud.host_id(n);
            self.probe(h, Probe::Neighbour(n), DriverCall::PingNeighbour { from, target: hid });
        }
        if self.health_mut(h).pending == 0 {
            self.evidence(
                h,
                "investigation".into(),
                Sign::Unknown,
                "no shared pool and no neighbour to ask".into(),
            );
        }
    }

    pub(crate) fn probe_result(&mut self, op: OpId, result: DriverResult) {
        let Some((h, probe)) = self.probe_ops.remove(&op) else {
            return;
        };
        let now = self.now;
        if let Probe::StrayStop(vm) = probe {
            let name = self.vm_label(vm);
            let host = self.cloud.inv.host(h).name.clone();
            self.event(
                EventKind::VmStray,
                name,
                format!("stray copy on {host} stopped: {result:?}"),
            );
            return;
        }
        let fresh = self.lease_fresh_ms();
        let (source, sign, detail) = match (probe, &result) {
            (Probe::Lease(p), DriverResult::Lease { renewed_at }) => {
                let pool = self.cloud.inv.pool(p).name.clone();
                let hh = self.health_mut(h);
                // The probes of this round were sent at the investigation:
                // storage read the value no earlier than that.
                let sent_at = hh.last_investigation.unwrap_or(now).min(now);
                let verdict = observe_lease(&mut hh.leases, p, *renewed_at, now, sent_at);
                hh.any_lease_readable = true;
                // A conservative lower bound: never staler than proven by my own reads.
                let a = match verdict {
                    LeaseVerdict::Unchanged { for_ms } => for_ms,
                    LeaseVerdict::First | LeaseVerdict::Advanced { .. } => 0,
                };
                hh.min_lease_age = Some(hh.min_lease_age.map_or(a, |m| m.min(a)));
                let never = if renewed_at.is_some() { "" } else { " (never renewed)" };
                let source = format!("lease:{pool}");
                match verdict {
                    LeaseVerdict::Advanced { since_ms } => {
                        // Renewed within the fresh window only if my previous read
                        // is that recent; otherwise look again next tick.
                        if since_ms <= fresh {
                            hh.lease_fresh = true;
                        }
                        (
                            source,
                            Sign::Alive,
                            format!("renewed since my last read {:.1} s ago", since_ms as f64 / 1e3),
                        )
                    }
                    LeaseVerdict::Unchanged { for_ms } if for_ms > fresh => (
                        source,
                        Sign::Dead,
                        format!(
                            "not renewed for at least {:.1} s by my clock{never}",
                            for_ms as f64 / 1e3
                        ),
                    ),
                    LeaseVerdict::Unchanged { for_ms } => {
                        hh.lease_undecided = true;
                        (
                            source,
                            Sign::Unknown,
                            format!("unchanged for {:.1} s so far{never}", for_ms as f64 / 1e3),
                        )
                    }
                    LeaseVerdict::First => {
                        hh.lease_undecided = true;
                        (
                            source,
                            Sign::Unknown,
                            format!("first reading; judged by whether it advances{never}"),
                        )
                    }
                }
            }
            (Probe::Lease(p), other) => (
                format!("lease:{}", self.cloud.inv.pool(p).name),
                Sign::Unknown,
                format!("unreadable: {}", describe(other)),
            ),
            (Probe::Neighbour(n), DriverResult::Reachable { reachable: r }) => {
                let name = self.cloud.inv.host(n).name.clone();
                if *r {
                    (format!("neighbour:{name}"), Sign::Alive, "reaches it".into())
                } else {
                    (format!("neighbour:{name}"), Sign::Dead, "cannot reach it".into())
                }
            }
            (Probe::Neighbour(n), other) => (
                format!("neighbour:{}", self.cloud.inv.host(n).name),
                Sign::Unknown,
                describe(other),
            ),
            (Probe::PowerOff, DriverResult::Ok) => {
                self.health_mut(h).fenced = Some(FenceProof::PoweredOff);
                ("fence".into(), Sign::Dead, "powered off by the fence driver".into())
            }
            (Probe::PowerOff, other) => (
                "fence".into(),
                Sign::Unknown,
                format!("power-off failed: {}", describe(other)),
            ),
            (Probe::StrayStop(_), _) => unreachable!("handled above"),
        };
        self.evidence(h, source, sign, detail);
        let hh = self.health_mut(h);
        match sign {
            Sign::Alive => hh.alive += 1,
            Sign::Dead => hh.dead += 1,
            Sign::Unknown => {}
        }
        hh.pending = hh.pending.saturating_sub(1);
        if hh.pending == 0 {
            self.conclude(h);
        }
    }

    /// All probes answered: decide Disconnected, Down, fenced.
    fn conclude(&mut self, h: HostIdx) {
        let proof = self.fence_proof_ms();
        let status = self.cloud.inv.host(h).status;
        if status == HostStatus::Up {
            return; // it pinged while we were asking: the answers are stale
        }
        let hh = self.health_mut(h).clone();
        if hh.fenced.is_some() {
            self.fenced(h);
            return;
        }
        // Every readable lease stale past the deadline, and silent as long: the
        // host has been isolated from storage and from us, so it stopped its VMs.
        let silent = self.now.0.saturating_sub(hh.last_ping.map_or(0, |t| t.0));
        if hh.any_lease_readable && hh.min_lease_age.is_some_and(|a| a >= proof) && silent >= proof {
            self.health_mut(h).fenced = Some(FenceProof::LeaseExpired {
                stale_ms: hh.min_lease_age.unwrap_or(0),
            });
            if status != HostStatus::Down {
                self.mark_down(h, "lease expired");
            }
            self.fenced(h);
            return;
        }
        if hh.alive > 0 {
            if status != HostStatus::Down {
                self.set_status(
                    h,
                    HostStatus::Disconnected,
                    "link lost but the host is alive (fresh lease or neighbour); VMs not restarted",
                );
            }
            return;
        }
        if hh.dead == 0 || hh.lease_undecided {
            // Only unknowns: nothing proves death. Stay put and ask again. A
            // readable lease not judged yet (first read, or unchanged but not
            // for long enough) must be judged before Down: the neighbours alone
            // do not decide while a lease can tell. Alert and Down hosts are
            // asked again every tick.
            return;
        }
        if status != HostStatus::Down {
            self.mark_down(h, "no sign of life");
        }
        if canary::fencing_bypass() {
            // The planted bug: restart its VMs as if Down proved it fenced.
            self.recover_vms_of(h);
            return;
        }
        // Down but not yet proven fenced: wait for the lease, or power it off
        // when no lease can tell.
        if !hh.any_lease_readable && !hh.power_off_tried {
            self.health_mut(h).power_off_tried = true;
            let id = self.cloud.host_id(h);
            self.probe(h, Probe::PowerOff, DriverCall::PowerOff { host: id });
        } else if !hh.any_lease_readable {
            let name = self.cloud.inv.host(h).name.clone();
            self.event(EventKind::Alert, name, "cannot prove the host is fenced (no readable lease, power-off failed): its VMs are not restarted; retrying");
        }
    }

    fn mark_down(&mut self, h: HostIdx, why: &str) {
        let now = self.now;
        let id = self.cloud.host_id(h);
        self.host_downs.push((id, now));
        self.health_mut(h).down_since = Some(now);
        self.set_status(h, HostStatus::Down, why);
    }

    fn fenced(&mut self, h: HostIdx) {
        let name = self.cloud.inv.host(h).name.clone();
        let proof = match self.health_mut(h).fenced {
            Some(FenceProof::LeaseExpired { stale_ms }) => {
                format!(
                    "lease stale for {:.1} s: the host has stopped its VMs",
                    stale_ms as f64 / 1e3
                )
            }
            Some(FenceProof::PoweredOff) => "powered off by the fence driver".to_string(),
            None => "unknown".to_string(),
        };
        self.event(EventKind::HostFenced, name, proof);
        self.recover_vms_of(h);
    }

    /// The host is proven fenced: its VMs are not running. Restart the HA ones.
    fn recover_vms_of(&mut self, h: HostIdx) {
        let lost: Vec<VmIdx> = self
            .cloud
            .vms_on(h)
            .iter()
            .copied()
            .filter(|i| match self.cloud.vm_at(*i).charge {
                Charge::Used { host } | Charge::Reserved { host, .. } => host == h,
                // A copy may be on the other end: only lost when both ends are fenced.
                Charge::Migrating { from, to } => (from == h || to == h) && self.is_fenced(from) && self.is_fenced(to),
                Charge::None => false,
            })
            .collect();
        if lost.is_empty() {
            return;
        }
        let since = self.health_mut(h).down_since.unwrap_or(self.now);
        for i in lost {
            let vm = self.cloud.vm_at(i).id;
            if self.vm_busy(vm) {
                continue; // its saga times out and unwinds first; next tick
            }
            if let Charge::Reserved { .. } = self.cloud.vm_at(i).charge {
                self.cloud.release_reservation(i);
                continue;
            }
            self.vm_lost(i, Some(h), since, "its host was fenced");
        }
    }
}

fn describe(r: &DriverResult) -> String {
    match r {
        DriverResult::Failed(e) => e.to_string(),
        other => format!("{other:?}"),
    }
}

/// The fuzz canary's switch: off unless the test-only cargo feature is on and
/// a test turned it on at run time.
pub mod canary {
    #[cfg(feature = "canary-fencing-bypass")]
    pub static FENCING_BYPASS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    #[inline]
    pub fn fencing_bypass() -> bool {
        #[cfg(feature = "canary-fencing-bypass")]
        {
            FENCING_BYPASS.load(std::sync::atomic::Ordering::Relaxed)
        }
        #[cfg(not(feature = "canary-fencing-bypass"))]
        {
            false
        }
    }
}
