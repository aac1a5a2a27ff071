//! The simulated datacenter: hosts with their domains and NIC ports, storage
//! pools with volumes and template copies, and the faults that break them. It
//! executes the controller's driver calls and decides when (and whether) each
//! answer comes back.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use stratus_core::Cloud;
use stratus_core::controller::effects::{DriverCall, DriverError, DriverResult, Mac};
use stratus_core::ids::*;
use stratus_core::inventory::Host;
use stratus_core::rng::DetRng;
use stratus_drivers::Watchdog;

pub use crate::host_fault::HostFault;

/// Where every simulated host's wall clock starts (2026-01-01T00:00:00Z, epoch ms).
pub const HOST_CLOCK_BASE_MS: u64 = 1_767_225_600_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SimDomain {
    pub running: bool,
    pub disks: BTreeSet<VolumeId>,
    /// The 802.1Q tag of each tagged NIC, as the domain spec gave it (a real
    /// host tags the NIC's OVS port with it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nic_vlans: Vec<(Mac, u16)>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SimHost {
    pub name: String,
    /// Facts the host reports: cores, MHz per core, memory bytes.
    pub facts: (u32, u32, u64),
    /// Powered off (crashed): no domains, no answers.
    pub crashed: bool,
    /// The whole host is hung (kernel included): it answers nobody and renews
    /// no lease; its domains keep running until its watchdog stops them.
    pub hung: bool,
    /// Cut off from the management server (both directions).
    pub partitioned: bool,
    /// Only the agent process hangs: management hears nothing from it, but the
    /// host, its lease daemon and its domains live and neighbours reach it.
    #[serde(default)]
    pub agent_hung: bool,
    /// Its neighbours cannot reach it (cluster network cut, or a frozen kernel).
    #[serde(default)]
    pub neighbour_cut: bool,
    /// The lease writer stopped; the host still answers management and its
    /// domains keep running.
    #[serde(default)]
    pub lease_stopped: bool,
    /// Asymmetric link: its pings reach management, management's calls to it
    /// are lost.
    #[serde(default)]
    pub calls_lost: bool,
    /// How many faults of each kind are on (they may overlap).
    #[serde(default)]
    pub fault_depth: BTreeMap<HostFault, u32>,
    pub domains: BTreeMap<VmId, SimDomain>,
    pub ports: BTreeSet<(VmId, Mac)>,
    /// Bridges made by `EnsureNetwork` (ports do not need them: older
    /// controllers never ask).
    #[serde(default)]
    pub bridges: BTreeSet<String>,
    /// Pools made reachable by `EnsurePool`.
    #[serde(default)]
    pub attached_pools: BTreeSet<PoolId>,
    /// Answers from one host come back in the order the calls were sent.
    pub last_reply: u64,
    /// Shared pools this host holds a heartbeat lease on, with the stamp of
    /// its last renewal there: the time (ms) by the host's own clock
    /// ([`SimHost::local_clock`]), which management treats as opaque.
    pub leases: Vec<(PoolId, Option<u64>)>,
    /// How far this host's wall clock is off the simulation's (ms, either
    /// sign): its lease stamps use it; its watchdog is monotonic.
    pub clock_skew_ms: i64,
    /// When (simulation time, ms) it last renewed a lease: the truth the
    /// fresh-lease invariant compares management's verdicts with.
    #[serde(default)]
    pub last_renewal_at: Option<u64>,
    /// Since when it has renewed without a gap of `ha.lease.timeout`.
    #[serde(default)]
    pub renewing_since: Option<u64>,
    /// Whether management heard from it in the last ping round.
    pub was_reachable: bool,
    /// The isolation watchdog (lease renewals and management contact, as
    /// seen at each ping round); it says when the host stops its own VMs.
    pub watchdog: Watchdog,
}

/// The ways a powered-on host can fail, each undone when its fault ends.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SimPool {
    pub name: String,
    pub down: bool,
    pub volumes: BTreeSet<VolumeId>,
    pub templates: BTreeSet<TemplateId>,
}

/// Operation latencies in ms, each a uniform [lo, hi] range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latencies {
    pub start: (u64, u64),
    pub stop: (u64, u64),
    pub create_volume: (u64, u64),
    pub copy_template: (u64, u64),
    pub migrate: (u64, u64),
    pub other: (u64, u64),
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            start: (2_000, 8_000),
            stop: (1_000, 5_000),
            create_volume: (500, 2_000),
            copy_template: (20_000, 60_000),
            migrate: (5_000, 30_000),
            other: (50, 500),
        }
    }
}

/// What happens to a call: an answer at a time, or silence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Reply { at: u64, result: DriverResult },
    Silence,
}

/// "Fail the next `left` calls of this kind" (`configureSimulator … count=N`),
/// on one host (calls that name it) or anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailNext {
    pub host: Option<HostId>,
    /// A `DriverCall` variant name (`DriverCall::name`).
    pub call: String,
    pub left: u32,
}

/// Serde keeps what a restarted simulation needs (hosts, domains, ports,
/// leases, pools, volumes, snapshots, pending failures); the scripted test
/// faults keyed by call number and the call counters start over.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct World {
    pub hosts: BTreeMap<HostId, SimHost>,
    pub pools: BTreeMap<PoolId, SimPool>,
    pub latency: Latencies,
    /// The next this-many migrations fail.
    pub migration_failures: u32,
    /// Every call fails with this probability until `op_failure_until`.
    pub op_failure_rate: f64,
    pub op_failure_until: u64,
    /// Calls that take effect but whose reply is lost, with this probability,
    /// until `lost_reply_until`.
    #[serde(default)]
    pub lost_reply_rate: f64,
    #[serde(default)]
    pub lost_reply_until: u64,
    /// Scripted failures: fail the n-th call of a kind (0-based), for saga tests.
    #[serde(skip)]
    pub fail_nth: BTreeMap<&'static str, BTreeSet<u64>>,
    /// Calls (by kind and number) that take effect but whose reply is lost.
    #[serde(skip)]
    pub lose_reply_nth: BTreeMap<&'static str, BTreeSet<u64>>,
    /// Calls delivered twice (a retried request): the reply is the second one's.
    #[serde(skip)]
    pub twice_nth: BTreeMap<&'static str, BTreeSet<u64>>,
    /// Calls after whose reply the management server crashes.
    #[serde(skip)]
    pub crash_after_nth: BTreeMap<&'static str, BTreeSet<u64>>,
    /// Set by such a call: when the management server should crash.
    pub crash_at: Option<u64>,
    #[serde(skip)]
    pub calls_by_kind: BTreeMap<&'static str, u64>,
    /// How many domains run for each VM, across all hosts.
    pub running_copies: BTreeMap<VmId, u32>,
    /// VMs seen running twice at once since the last drain (an invariant breach).
    pub duplicates: Vec<VmId>,
    /// Snapshots kept on secondary storage.
    pub snapshots: std::collections::BTreeSet<SnapshotId>,
    /// Templates made from volumes (`CreateTemplate`) on secondary storage.
    #[serde(default)]
    pub templates: BTreeSet<TemplateId>,
    /// Whether hosts have a working out-of-band power control (fence driver).
    pub fence_available: bool,
    /// Every this many ping rounds, every host sends its full VM report (VM sync).
    pub full_report_every: u64,
    pub(crate) rounds: u64,
    /// The backend's notion of "now" (ms) for calls made through the async
    /// driver traits, which carry no time; runtimes advance it.
    pub clock_ms: u64,
    /// Domains that crashed on their own since the last ping round.
    pub(crate) crashed_vms: Vec<(HostId, VmId)>,
    /// Calls to fail next, consumed in order (`FailNext`).
    #[serde(default)]
    pub fail_next: Vec<FailNext>,
    /// Bumped by every change worth saving (calls, crashes, inventory), not
    /// by lease renewals: whoever persists the world compares it.
    #[serde(skip)]
    pub generation: u64,
    rng: DetRng,
    /// Seed of the latency streams: one per (host, call kind), so a new call
    /// on one host never shifts the timing of any other host's calls.
    #[serde(default)]
    latency_seed: u64,
    #[serde(skip)]
    latency_rngs: BTreeMap<(Option<HostId>, &'static str), DetRng>,
}

impl World {
    pub fn new(seed: u64) -> World {
        World {
            hosts: BTreeMap::new(),
            pools: BTreeMap::new(),
            latency: Latencies::default(),
            migration_failures: 0,
            op_failure_rate: 0.0,
            op_failure_until: 0,
            lost_reply_rate: 0.0,
            lost_reply_until: 0,
            fail_nth: BTreeMap::new(),
            lose_reply_nth: BTreeMap::new(),
            twice_nth: BTreeMap::new(),
            crash_after_nth: BTreeMap::new(),
            crash_at: None,
            calls_by_kind: BTreeMap::new(),
            running_copies: BTreeMap::new(),
            duplicates: Vec::new(),
            fence_available: true,
            snapshots: Default::default(),
            templates: BTreeSet::new(),
            full_report_every: 20,
            rounds: 0,
            crashed_vms: Vec::new(),
            clock_ms: 0,
            fail_next: Vec::new(),
            generation: 0,
            rng: DetRng::child(seed, "world"),
            latency_seed: seed,
            latency_rngs: BTreeMap::new(),
        }
    }

    /// Mirrors a cloud: its hosts and pools (with leases) and the workload
    /// its ledger records (`world_mirror`), so a live inventory's world agrees with it.
    pub fn from_cloud(cloud: &Cloud, seed: u64) -> World {
        let mut w = World::new(seed);
        w.sync_inventory(cloud);
        w.mirror_workload(cloud);
        w
    }

    /// Learns the cloud's inventory again: adds every host and pool it does
    /// not have yet (empty), and gives existing hosts a lease on shared pools
    /// their cluster gained. Nothing is removed or reset; idempotent. Returns
    /// how many hosts, pools and leases were added.
    pub fn sync_inventory(&mut self, cloud: &Cloud) -> usize {
        let lease_timeout_ms = (cloud
            .settings
            .i64("ha.lease.timeout", stratus_core::settings::Scope::Global)
            .max(1) as u64)
            * 1000;
        let mut added = 0;
        for (_, h) in cloud.inv.live_hosts() {
            let pools = lease_pools(cloud, h);
            match self.hosts.get_mut(&h.id) {
                Some(known) => {
                    for p in pools {
                        if !known.leases.iter().any(|(lp, _)| *lp == p) {
                            known.leases.push((p, None));
                            added += 1;
                        }
                    }
                }
                None => {
                    self.hosts.insert(
                        h.id,
                        SimHost {
                            name: h.name.clone(),
                            facts: (h.cpu_cores, h.cpu_mhz_per_core, h.memory_bytes),
                            leases: pools.into_iter().map(|p| (p, None)).collect(),
                            was_reachable: true,
                            watchdog: Watchdog::new(lease_timeout_ms),
                            ..Default::default()
                        },
                    );
                    added += 1;
                }
            }
        }
        for p in cloud.inv.pools.iter().filter(|p| !p.removed) {
            if let std::collections::btree_map::Entry::Vacant(e) = self.pools.entry(p.id) {
                e.insert(SimPool {
                    name: p.name.clone(),
                    ..Default::default()
                });
                added += 1;
            }
        }
        // A deleted host (deleteHost needs it empty) leaves the datacenter.
        for h in cloud.inv.hosts.iter().filter(|h| h.is_removed()) {
            if self.hosts.get(&h.id).is_some_and(|x| x.domains.is_empty()) {
                self.hosts.remove(&h.id);
                added += 1;
            }
        }
        if added > 0 {
            self.generation += 1;
        }
        added
    }

    /// Takes one pending [`FailNext`] matching this call, if any.
    fn take_fail_next(&mut self, kind: &str, host: Option<HostId>) -> bool {
        let Some(i) = self
            .fail_next
            .iter()
            .position(|f| f.left > 0 && f.call == kind && (f.host.is_none() || f.host == host))
        else {
            return false;
        };
        self.fail_next[i].left -= 1;
        if self.fail_next[i].left == 0 {
            self.fail_next.remove(i);
        }
        true
    }

    /// A latency for a call of `kind` on `host`, from that pair's own stream.
    fn draw(&mut self, host: Option<HostId>, kind: &'static str, (lo, hi): (u64, u64)) -> u64 {
        if hi <= lo {
            return lo;
        }
        let seed = self.latency_seed;
        let rng = self.latency_rngs.entry((host, kind)).or_insert_with(|| {
            let who = host.map_or_else(|| "any".to_string(), |h| h.to_string());
            DetRng::child(seed, &format!("latency/{who}/{kind}"))
        });
        lo + rng.below((hi - lo + 1) as usize) as u64
    }

    pub(crate) fn set_running(&mut self, vm: VmId, host: HostId, running: bool) {
        let Some(h) = self.hosts.get_mut(&host) else { return };
        let Some(d) = h.domains.get_mut(&vm) else { return };
        if d.running == running {
            return;
        }
        d.running = running;
        let c = self.running_copies.entry(vm).or_insert(0);
        if running {
            *c += 1;
            if *c > 1 {
                self.duplicates.push(vm);
            }
        } else {
            *c -= 1;
            if *c == 0 {
                self.running_copies.remove(&vm);
            }
        }
    }

    /// Executes a call sent at `now`.
    pub fn execute(&mut self, call: &DriverCall, now: u64) -> Outcome {
        let kind = call.name();
        let n = self.calls_by_kind.entry(kind).or_insert(0);
        let nth = *n;
        *n += 1;
        if let Some(h) = call.host() {
            match self.hosts.get(&h) {
                Some(host) if host.answers_calls() => {}
                _ => return Outcome::Silence,
            }
        }
        let lat = match call {
            DriverCall::StartDomain { .. } | DriverCall::RebootDomain { .. } => self.latency.start,
            DriverCall::StopDomain { .. } => self.latency.stop,
            DriverCall::CreateVolume { .. } => self.latency.create_volume,
            DriverCall::CopyTemplate { .. } => self.latency.copy_template,
            DriverCall::MigrateDomain { .. } => self.latency.migrate,
            _ => self.latency.other,
        };
        let mut at = now + self.draw(call.host(), kind, lat).max(1);
        // Neighbour pings do not queue behind the host's domain operations.
        let queued = !matches!(call, DriverCall::PingNeighbour { .. });
        if let Some(h) = call.host().and_then(|h| self.hosts.get_mut(&h)).filter(|_| queued) {
            at = at.max(h.last_reply + 1);
            h.last_reply = at;
        }
        if let Some(result) = self.answer_probe(call) {
            return Outcome::Reply { at, result };
        }
        self.generation += 1;
        let injected = self.take_fail_next(kind, call.host())
            || self.fail_nth.get(kind).is_some_and(|s| s.contains(&nth))
            || (now < self.op_failure_until && self.op_failure_rate > 0.0 && self.rng.unit() < self.op_failure_rate);
        let has = |m: &BTreeMap<&'static str, BTreeSet<u64>>| m.get(kind).is_some_and(|s| s.contains(&nth));
        let result = if injected {
            Err(DriverError::refused("injected failure"))
        } else if has(&self.twice_nth) {
            let _ = self.apply(call);
            self.apply(call)
        } else {
            self.apply(call)
        };
        if has(&self.crash_after_nth) {
            self.crash_at = Some(at + 1);
        }
        let lost = now < self.lost_reply_until && self.lost_reply_rate > 0.0 && self.rng.unit() < self.lost_reply_rate;
        if has(&self.lose_reply_nth) || lost {
            return Outcome::Silence;
        }
        Outcome::Reply {
            at,
            result: result.map_or_else(DriverResult::Failed, |_| DriverResult::Ok),
        }
    }

    fn pool_up(&self, p: PoolId) -> Result<&SimPool, DriverError> {
        match self.pools.get(&p) {
            None => Err(DriverError::not_found("unknown storage pool")),
            Some(pool) if pool.down => Err(DriverError::unavailable(format!(
                "storage pool {} is unavailable",
                pool.name
            ))),
            Some(pool) => Ok(pool),
        }
    }

    fn apply(&mut self, call: &DriverCall) -> Result<(), DriverError> {
        match call {
            DriverCall::DefineDomain { vm, host, spec } => {
                for (v, p) in &spec.disks {
                    if !self.pool_up(*p)?.volumes.contains(v) {
                        return Err(DriverError::not_found(format!("disk {v} not found on its pool")));
                    }
                }
                let d = self
                    .hosts
                    .get_mut(host)
                    .expect("checked")
                    .domains
                    .entry(*vm)
                    .or_default();
                d.disks = spec.disks.iter().map(|(v, _)| *v).collect();
                d.nic_vlans = spec
                    .nics
                    .iter()
                    .filter_map(|(mac, _)| Some((*mac, spec.nic_detail(*mac).vlan?)))
                    .collect();
                Ok(())
            }
            DriverCall::UndefineDomain { vm, host } => {
                let h = self.hosts.get_mut(host).expect("checked");
                if h.domains.get(vm).is_some_and(|d| d.running) {
                    return Err(DriverError::refused("domain is running"));
                }
                h.domains.remove(vm);
                Ok(())
            }
            DriverCall::StartDomain { vm, host } => {
                if !self.hosts[host].domains.contains_key(vm) {
                    return Err(DriverError::not_found("domain not defined"));
                }
                self.set_running(*vm, *host, true);
                Ok(())
            }
            DriverCall::StopDomain { vm, host, .. } => {
                // Transient domains: stopping removes the definition too.
                self.set_running(*vm, *host, false);
                self.hosts.get_mut(host).expect("checked").domains.remove(vm);
                Ok(())
            }
            DriverCall::RebootDomain { vm, host } => match self.hosts[host].domains.get(vm) {
                Some(d) if d.running => Ok(()),
                _ => Err(DriverError::refused("domain is not running")),
            },
            DriverCall::MigrateDomain { vm, from, to, .. } => {
                if self.migration_failures > 0 {
                    self.migration_failures -= 1;
                    return Err(DriverError::refused("migration failed: injected"));
                }
                if !self.hosts.get(to).is_some_and(|h| h.answers_calls()) {
                    return Err(DriverError::unavailable("destination host unreachable"));
                }
                if !self.hosts[from].domains.get(vm).is_some_and(|d| d.running) {
                    // Idempotent: a retried migration that already completed is done.
                    if self.hosts[to].domains.get(vm).is_some_and(|d| d.running) {
                        return Ok(());
                    }
                    return Err(DriverError::refused("domain is not running on the source"));
                }
                self.set_running(*vm, *from, false);
                let d = self
                    .hosts
                    .get_mut(from)
                    .expect("checked")
                    .domains
                    .remove(vm)
                    .unwrap_or_default();
                self.hosts.get_mut(to).expect("checked").domains.insert(*vm, d);
                self.set_running(*vm, *to, true);
                Ok(())
            }
            DriverCall::CopyTemplate { template, pool, .. } => {
                self.pool_up(*pool)?;
                self.pools.get_mut(pool).expect("checked").templates.insert(*template);
                Ok(())
            }
            DriverCall::CreateVolume {
                volume, pool, template, ..
            } => {
                let p = self.pool_up(*pool)?;
                if let Some(t) = template
                    && !p.templates.contains(t)
                {
                    return Err(DriverError::not_found("template is not on the pool"));
                }
                self.pools.get_mut(pool).expect("checked").volumes.insert(*volume);
                Ok(())
            }
            DriverCall::DeleteVolume { volume, pool } => {
                self.pool_up(*pool)?;
                if self
                    .hosts
                    .values()
                    .any(|h| h.domains.values().any(|d| d.disks.contains(volume)))
                {
                    return Err(DriverError::refused("volume is in use by a domain"));
                }
                self.pools.get_mut(pool).expect("checked").volumes.remove(volume);
                Ok(())
            }
            DriverCall::AttachDisk { vm, host, volume, pool } => {
                if !self.pool_up(*pool)?.volumes.contains(volume) {
                    return Err(DriverError::not_found("volume not found on its pool"));
                }
                match self.hosts.get_mut(host).expect("checked").domains.get_mut(vm) {
                    Some(d) => {
                        d.disks.insert(*volume);
                        Ok(())
                    }
                    None => Err(DriverError::not_found("domain not found")),
                }
            }
            DriverCall::DetachDisk { vm, host, volume } => {
                if let Some(d) = self.hosts.get_mut(host).expect("checked").domains.get_mut(vm) {
                    d.disks.remove(volume);
                }
                Ok(())
            }
            DriverCall::PlugNic { vm, host, mac, .. } => {
                self.hosts.get_mut(host).expect("checked").ports.insert((*vm, *mac));
                Ok(())
            }
            DriverCall::UnplugNic { vm, host, mac, .. } => {
                self.hosts.get_mut(host).expect("checked").ports.remove(&(*vm, *mac));
                Ok(())
            }
            DriverCall::CreateSnapshot { volume, pool, snapshot } => {
                if !self.pool_up(*pool)?.volumes.contains(volume) {
                    return Err(DriverError::not_found("volume not found on its pool"));
                }
                self.snapshots.insert(*snapshot);
                Ok(())
            }
            DriverCall::DeleteSnapshot { snapshot } => {
                self.snapshots.remove(snapshot);
                Ok(())
            }
            DriverCall::CancelCopy { .. } => {
                // Copies complete when applied: none is ever in progress.
                Err(DriverError::not_found("no template copy in progress"))
            }
            DriverCall::CreateTemplate { volume, pool, template } => {
                if !self.pool_up(*pool)?.volumes.contains(volume) {
                    return Err(DriverError::not_found("volume not found on its pool"));
                }
                if self.volume_in_running_domain(*volume) {
                    return Err(DriverError::refused("volume is in use by a running domain"));
                }
                self.templates.insert(*template);
                Ok(())
            }
            DriverCall::RevertSnapshot { volume, pool, snapshot } => {
                if !self.pool_up(*pool)?.volumes.contains(volume) {
                    return Err(DriverError::not_found("volume not found on its pool"));
                }
                if !self.snapshots.contains(snapshot) {
                    return Err(DriverError::not_found("snapshot not found"));
                }
                if self.volume_in_running_domain(*volume) {
                    return Err(DriverError::refused("volume is in use by a running domain"));
                }
                Ok(())
            }
            DriverCall::EnsurePool { host, pool, .. } => {
                self.pool_up(*pool)?;
                self.hosts.get_mut(host).expect("checked").attached_pools.insert(*pool);
                Ok(())
            }
            DriverCall::EnsureNetwork { host, bridge, .. } => {
                self.hosts
                    .get_mut(host)
                    .expect("checked")
                    .bridges
                    .insert(bridge.clone());
                Ok(())
            }
            DriverCall::CheckLease { .. } | DriverCall::PingNeighbour { .. } | DriverCall::PowerOff { .. } => {
                unreachable!("answered by answer_probe")
            }
        }
    }

    fn volume_in_running_domain(&self, volume: VolumeId) -> bool {
        self.hosts
            .values()
            .any(|h| h.domains.values().any(|d| d.running && d.disks.contains(&volume)))
    }

    /// A host powers off: every domain on it is gone.
    pub fn crash_host(&mut self, h: HostId) {
        let vms: Vec<VmId> = self.hosts[&h].domains.keys().copied().collect();
        for vm in vms {
            self.set_running(vm, h, false);
        }
        self.generation += 1;
        let host = self.hosts.get_mut(&h).expect("known host");
        host.crashed = true;
        host.domains.clear();
        host.ports.clear();
    }

    pub fn total_running(&self) -> usize {
        self.running_copies.len()
    }
}

/// The shared pools a host holds a heartbeat lease on: its cluster's (and
/// zone's) pools that are not host-local.
pub fn lease_pools(cloud: &Cloud, h: &Host) -> Vec<PoolId> {
    cloud.inv.cluster_pools[h.cluster.ix()]
        .iter()
        .map(|p| cloud.inv.pool(*p))
        .filter(|p| !p.is_local())
        .map(|p| p.id)
        .collect()
}
