//! Host maintenance: prepareHostForMaintenance computes an evacuation plan,
//! records it, then a reconciler live-migrates the VMs away (a few at a time,
//! with retries) until the host is empty → Maintenance, or gives up →
//! ErrorInPrepareForMaintenance with per-VM reasons. Rolling maintenance takes
//! a cluster's hosts one at a time.

use super::{Controller, Request};
use crate::controller::EventKind;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::inventory::ResourceState;
use crate::settings::Scope;
use crate::units::Millis;
use crate::vm::{Charge, VmState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One VM's move in an evacuation plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlannedMove {
    pub vm: VmId,
    pub vm_name: String,
    /// Planned destination, or why none was found at planning time.
    pub destination: Result<String, String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Not retried before this (`migrate.retry.interval` after a failure).
    retry_at: Millis,
}

/// The evacuation of one host.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Evacuation {
    pub host: HostId,
    pub started: Millis,
    pub parallel: u32,
    pub moves: Vec<PlannedMove>,
}

/// Rolling maintenance of a cluster: one host at a time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rolling {
    pub cluster: ClusterId,
    pub queue: Vec<HostId>,
    pub current: Option<HostId>,
    /// Simulated hook durations (pre before entering, post before leaving), ms.
    pub pre_hook_ms: u64,
    pub post_hook_ms: u64,
    phase_until: Millis,
    phase: RollingPhase,
    /// A host not Up at its turn is waited for (else skipped, with the reason).
    #[serde(default)]
    pub wait_for_down: bool,
    /// Whether the "waiting for" event was given for the head of the queue.
    #[serde(default)]
    waiting: bool,
    /// Hosts skipped because they were not Up at their turn.
    #[serde(default)]
    skipped: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum RollingPhase {
    PreHook,
    Evacuating,
    PostHook,
}

impl Controller {
    /// prepareHostForMaintenance: plan, record the plan, start evacuating.
    pub fn prepare_maintenance(&mut self, host: HostId, now: Millis) -> CoreResult<Evacuation> {
        self.tick(now);
        let h = self.cloud.host_idx(host)?;
        let rs = self.cloud.inv.host(h).resource_state;
        if !matches!(
            rs,
            ResourceState::Enabled | ResourceState::Disabled | ResourceState::ErrorInPrepareForMaintenance
        ) {
            return Err(CoreError::InvalidState {
                entity: "host",
                name: self.cloud.inv.host(h).name.clone(),
                state: rs.to_string(),
                op: "prepare for maintenance",
            });
        }
        // A host entering maintenance is never a destination from here on.
        self.cloud.inv.host_mut(h).resource_state = ResourceState::PrepareForMaintenance;
        let plan = plan_moves(self.cloud.clone(), h);
        let parallel = self
            .cloud
            .settings
            .i64("maintenance.parallel.migrations", Scope::Global)
            .max(1) as u32;
        let name = self.cloud.inv.host(h).name.clone();
        let summary: Vec<String> = plan
            .iter()
            .map(|m| match &m.destination {
                Ok(d) => format!("{} -> {d}", m.vm_name),
                Err(e) => format!("{} -> none ({e})", m.vm_name),
            })
            .collect();
        self.event(
            EventKind::MaintenancePlan,
            name.clone(),
            format!(
                "{} VMs, {parallel} at a time: {}",
                plan.len(),
                if summary.is_empty() {
                    "nothing to move".into()
                } else {
                    summary.join("; ")
                }
            ),
        );
        let ev = Evacuation {
            host,
            started: self.now,
            parallel,
            moves: plan,
        };
        self.evacuations.insert(host, ev.clone());
        self.maintenance_tick();
        Ok(ev)
    }

    /// The plan prepareHostForMaintenance would make now, shown before an
    /// operator confirms; changes nothing (planned on a copy, with the host
    /// already out of the destinations as it would be).
    pub fn evacuation_preview(&self, host: HostId) -> CoreResult<Vec<PlannedMove>> {
        let h = self.cloud.host_idx(host)?;
        let mut copy = self.cloud.clone();
        copy.inv.host_mut(h).resource_state = ResourceState::PrepareForMaintenance;
        Ok(plan_moves(copy, h))
    }

    /// cancelHostMaintenance: back to Enabled; an evacuation in progress stops.
    pub fn cancel_maintenance(&mut self, host: HostId, now: Millis) -> CoreResult<()> {
        self.tick(now);
        let h = self.cloud.host_idx(host)?;
        let rs = self.cloud.inv.host(h).resource_state;
        if !matches!(
            rs,
            ResourceState::PrepareForMaintenance
                | ResourceState::ErrorInPrepareForMaintenance
                | ResourceState::ErrorInMaintenance
                | ResourceState::Maintenance
        ) {
            return Err(CoreError::InvalidState {
                entity: "host",
                name: self.cloud.inv.host(h).name.clone(),
                state: rs.to_string(),
                op: "cancel maintenance",
            });
        }
        self.evacuations.remove(&host);
        self.set_resource_state(h, ResourceState::Enabled, "maintenance cancelled");
        Ok(())
    }

    fn set_resource_state(&mut self, h: HostIdx, rs: ResourceState, why: &str) {
        let host = self.cloud.inv.host_mut(h);
        let from = host.resource_state;
        host.resource_state = rs;
        let name = host.name.clone();
        self.event(EventKind::HostResourceState, name, format!("{from} -> {rs}: {why}"));
    }

    /// Starts a rolling maintenance of a cluster.
    pub fn rolling_maintenance(
        &mut self,
        cluster: ClusterId,
        pre_hook_ms: u64,
        post_hook_ms: u64,
        wait_for_down: bool,
        now: Millis,
    ) -> CoreResult<()> {
        self.tick(now);
        let c = self.cloud.cluster_idx(cluster)?;
        if self.rolling.contains_key(&cluster) {
            return Err(CoreError::invalid(
                "clusterid",
                "a rolling maintenance of this cluster is already running",
            ));
        }
        let queue: Vec<HostId> = self
            .cloud
            .inv
            .cluster(c)
            .hosts
            .iter()
            .map(|h| self.cloud.host_id(*h))
            .collect();
        let name = self.cloud.inv.cluster(c).name.clone();
        self.event(
            EventKind::MaintenanceRolling,
            name,
            format!("{} hosts, one at a time", queue.len()),
        );
        self.rolling.insert(
            cluster,
            Rolling {
                cluster,
                queue,
                current: None,
                pre_hook_ms,
                post_hook_ms,
                phase_until: now,
                phase: RollingPhase::PreHook,
                wait_for_down,
                waiting: false,
                skipped: Vec::new(),
            },
        );
        self.maintenance_tick();
        Ok(())
    }

    /// The maintenance reconciler (runs on every tick and after each change).
    pub(crate) fn maintenance_tick(&mut self) {
        let now = self.now;
        let retries = self
            .cloud
            .settings
            .i64("host.maintenance.retries", Scope::Global)
            .max(0) as u32;
        let hosts: Vec<HostId> = self.evacuations.keys().copied().collect();
        for host in hosts {
            let Ok(h) = self.cloud.host_idx(host) else { continue };
            if self.cloud.inv.host(h).resource_state != ResourceState::PrepareForMaintenance {
                continue;
            }
            let here: Vec<VmIdx> = self.cloud.vms_on(h).to_vec();
            let (reserved, on_host): (Vec<VmIdx>, Vec<VmIdx>) = here
                .into_iter()
                .partition(|i| matches!(self.cloud.vm_at(*i).charge, Charge::Reserved { .. }));
            // Stopped VMs' reservations on the host are dropped: it will not take them back.
            for i in reserved {
                self.cloud.release_reservation(i);
            }
            if on_host.is_empty() {
                self.evacuations.remove(&host);
                // Only a host that answers was evacuated; a Down one merely holds nothing.
                let status = self.cloud.inv.host(h).status;
                let why = if status == crate::inventory::HostStatus::Up {
                    "evacuated".to_string()
                } else {
                    format!("host is {status}: nothing of it left to evacuate (not evacuated)")
                };
                self.set_resource_state(h, ResourceState::Maintenance, &why);
                continue;
            }
            let ev = self.evacuations.get(&host).expect("listed").clone();
            let in_flight = on_host
                .iter()
                .filter(|i| {
                    let vm = self.cloud.vm_at(**i).id;
                    self.vm_busy(vm)
                })
                .count() as u32;
            let mut slots = ev.parallel.saturating_sub(in_flight);
            let mut gave_up = Vec::new();
            for i in on_host {
                let v = self.cloud.vm_at(i);
                let (vm, state) = (v.id, v.state);
                if slots == 0 || state != VmState::Running || self.vm_busy(vm) {
                    continue;
                }
                let (attempts, retry_at) = self.evacuations[&host]
                    .moves
                    .iter()
                    .find(|m| m.vm == vm)
                    .map_or((0, Millis(0)), |m| (m.attempts, m.retry_at));
                if retry_at > now {
                    continue;
                }
                if attempts > retries {
                    gave_up.push(vm);
                    continue;
                }
                let planned = self.evacuations[&host]
                    .moves
                    .iter()
                    .find(|m| m.vm == vm)
                    .and_then(|m| m.destination.clone().ok());
                let dest = planned.and_then(|n| {
                    self.cloud
                        .inv
                        .live_hosts()
                        .map(|(_, x)| x)
                        .find(|x| x.name == n)
                        .map(|x| x.id)
                });
                // The planned host is used only while it is still Up and Enabled,
                // and not after a failed attempt (the planner then chooses).
                let dest = dest.filter(|d| {
                    attempts == 0
                        && self.cloud.host_idx(*d).is_ok_and(|di| {
                            let x = self.cloud.inv.host(di);
                            x.resource_state == ResourceState::Enabled && x.status == crate::inventory::HostStatus::Up
                        })
                });
                let r = self.submit(Request::Migrate { vm, host: dest }, now);
                let r = match r {
                    // The planned host no longer fits: let the planner choose.
                    Err(_) if dest.is_some() => self.submit(Request::Migrate { vm, host: None }, now),
                    other => other,
                };
                if r.is_ok() {
                    self.internal_jobs += 1;
                }
                let ev = self.evacuations.get_mut(&host).expect("listed");
                match ev.moves.iter_mut().find(|m| m.vm == vm) {
                    Some(m) => {
                        m.attempts += 1;
                        if let Err(e) = &r {
                            m.last_error = Some(e.to_string().lines().next().unwrap_or("").to_string());
                        }
                    }
                    None => ev.moves.push(PlannedMove {
                        vm,
                        vm_name: String::new(),
                        destination: Err("not planned".into()),
                        attempts: 1,
                        last_error: None,
                        retry_at: Millis(0),
                    }),
                }
                if r.is_ok() {
                    slots -= 1;
                }
            }
            if !gave_up.is_empty() {
                let ev = self.evacuations.remove(&host).expect("listed");
                let reasons: Vec<String> = ev
                    .moves
                    .iter()
                    .filter(|m| gave_up.contains(&m.vm))
                    .map(|m| {
                        format!(
                            "{}: {}",
                            m.vm_name,
                            m.last_error.clone().unwrap_or_else(|| "migration failed".into())
                        )
                    })
                    .collect();
                self.set_resource_state(
                    h,
                    ResourceState::ErrorInPrepareForMaintenance,
                    &format!("could not migrate: {}", reasons.join("; ")),
                );
            }
        }
        self.rolling_tick();
    }

    /// Records a failed evacuation migration's reason.
    pub(crate) fn evacuation_failed(&mut self, vm: VmId, error: &str) {
        let every = self.cloud.settings.i64("migrate.retry.interval", Scope::Global).max(1) as u64 * 1000;
        let retry_at = Millis(self.now.0 + every);
        for ev in self.evacuations.values_mut() {
            if let Some(m) = ev.moves.iter_mut().find(|m| m.vm == vm) {
                m.last_error = Some(error.lines().next().unwrap_or("").to_string());
                m.retry_at = retry_at;
            }
        }
    }

    fn rolling_tick(&mut self) {
        let now = self.now;
        let clusters: Vec<ClusterId> = self.rolling.keys().copied().collect();
        for cluster in clusters {
            let r = self.rolling.get(&cluster).expect("listed").clone();
            if r.phase_until > now {
                continue;
            }
            match (r.current, r.phase) {
                (None, _) => {
                    let mut r = r;
                    if r.queue.is_empty() {
                        self.rolling.remove(&cluster);
                        let name = self
                            .cloud
                            .cluster_idx(cluster)
                            .map(|c| self.cloud.inv.cluster(c).name.clone())
                            .unwrap_or_default();
                        let done = if r.skipped.is_empty() {
                            "done".to_string()
                        } else {
                            format!("done; skipped (not Up at their turn): {}", r.skipped.join(", "))
                        };
                        self.event(EventKind::MaintenanceRolling, name, done);
                        continue;
                    }
                    let head = r.queue[0];
                    let status = self
                        .cloud
                        .host_idx(head)
                        .map(|h| self.cloud.inv.host(h).status)
                        .unwrap_or(crate::inventory::HostStatus::Removed);
                    if status != crate::inventory::HostStatus::Up {
                        let name = self.host_name(head);
                        if r.wait_for_down {
                            if !r.waiting {
                                r.waiting = true;
                                self.event(
                                    EventKind::MaintenanceRolling,
                                    name,
                                    format!("waiting: host is {status}; its turn comes when it is Up again"),
                                );
                                self.rolling.insert(cluster, r);
                            }
                        } else {
                            r.queue.remove(0);
                            r.skipped.push(name.clone());
                            self.event(
                                EventKind::MaintenanceRolling,
                                name,
                                format!("skipped: host is {status}, so it cannot be evacuated or run its hooks; left as it is"),
                            );
                            self.rolling.insert(cluster, r);
                        }
                        continue;
                    }
                    r.waiting = false;
                    let host = r.queue.remove(0);
                    r.current = Some(host);
                    r.phase = RollingPhase::PreHook;
                    r.phase_until = Millis(now.0 + r.pre_hook_ms);
                    let name = self.host_name(host);
                    self.event(EventKind::MaintenanceHook, name, "pre-maintenance hook");
                    self.rolling.insert(cluster, r);
                }
                (Some(host), RollingPhase::PreHook) => {
                    // Record the new phase first: preparing re-enters this reconciler.
                    let mut r = r;
                    r.phase = RollingPhase::Evacuating;
                    self.rolling.insert(cluster, r.clone());
                    if let Err(e) = self.prepare_maintenance(host, now) {
                        let name = self.host_name(host);
                        self.event(EventKind::MaintenanceRolling, name, format!("skipped: {e}"));
                        r.current = None;
                        self.rolling.insert(cluster, r);
                    }
                }
                (Some(host), RollingPhase::Evacuating) => {
                    let Ok(h) = self.cloud.host_idx(host) else { continue };
                    match self.cloud.inv.host(h).resource_state {
                        ResourceState::Maintenance => {
                            let mut r = r;
                            r.phase = RollingPhase::PostHook;
                            r.phase_until = Millis(now.0 + r.post_hook_ms);
                            let name = self.host_name(host);
                            self.event(EventKind::MaintenanceHook, name, "post-maintenance hook");
                            self.rolling.insert(cluster, r);
                        }
                        ResourceState::PrepareForMaintenance => {}
                        other => {
                            // Stop the roll: an operator must look at this host.
                            let name = self.host_name(host);
                            self.event(EventKind::MaintenanceRolling, name, format!("stopped: host is {other}"));
                            self.rolling.remove(&cluster);
                        }
                    }
                }
                (Some(host), RollingPhase::PostHook) => {
                    let _ = self.cancel_maintenance(host, now);
                    let mut r = r;
                    r.current = None;
                    self.rolling.insert(cluster, r);
                }
            }
        }
    }

    fn host_name(&self, host: HostId) -> String {
        self.cloud
            .host_idx(host)
            .map(|h| self.cloud.inv.host(h).name.clone())
            .unwrap_or_else(|_| host.to_string())
    }

    /// Hosts in Maintenance that still hold a VM (an invariant breach).
    pub fn vms_on_maintenance_hosts(&self) -> Vec<(String, String)> {
        self.cloud
            .vms()
            .filter_map(|(_, v)| {
                let h = match v.charge {
                    Charge::Used { host } => host,
                    Charge::Migrating { from, .. } => from,
                    _ => return None,
                };
                (self.cloud.inv.host(h).resource_state == ResourceState::Maintenance)
                    .then(|| (v.name.clone(), self.cloud.inv.host(h).name.clone()))
            })
            .collect()
    }

    pub fn evacuation(&self, host: HostId) -> Option<&Evacuation> {
        self.evacuations.get(&host)
    }
}

pub(crate) type Evacuations = BTreeMap<HostId, Evacuation>;
pub(crate) type Rollings = BTreeMap<ClusterId, Rolling>;

/// Plans each VM's destination in turn, as if the earlier moves were done.
fn plan_moves(mut scratch: crate::cloud::Cloud, h: HostIdx) -> Vec<PlannedMove> {
    let vms: Vec<VmIdx> = scratch
        .vms_on(h)
        .iter()
        .copied()
        .filter(|i| {
            let v = scratch.vm_at(*i);
            v.state == VmState::Running && v.charge == Charge::Used { host: h }
        })
        .collect();
    let mut out = Vec::new();
    for i in vms {
        let v = scratch.vm_at(i);
        let (id, name) = (v.id, v.name.clone());
        let destination = match scratch.begin_migration(id, None) {
            Ok(dest) => {
                let _ = scratch.finish_migration(id, true);
                Ok(scratch
                    .inv
                    .host(scratch.host_idx(dest).expect("known host"))
                    .name
                    .clone())
            }
            Err(CoreError::InsufficientCapacity(x)) => Err(x.headline()),
            Err(e) => Err(e.to_string()),
        };
        out.push(PlannedMove {
            vm: id,
            vm_name: name,
            destination,
            attempts: 0,
            last_error: None,
            retry_at: Millis(0),
        });
    }
    out
}
