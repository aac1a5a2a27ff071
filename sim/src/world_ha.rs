//! What the simulated datacenter does for HA: hosts renew storage leases and
//! ping management every round. Each host's isolation watchdog
//! (`stratus_drivers::Watchdog`, the same one the real agent runs) stops its
//! VMs once it could neither renew a lease nor reach management for
//! `ha.lease.timeout`; a storage blip alone or a lost link alone never does.
//! Lease reads, neighbour pings and power-off answer the investigations.

use crate::world::World;
use stratus_core::controller::effects::{DriverCall, DriverError, DriverResult};
use stratus_core::ids::*;

/// What one ping round produced, for the controller. Hosts that come back
/// into reach report their running domains, and every host does so every
/// `full_report_every` rounds (the VM sync that lets the ledger converge).
#[derive(Clone, Debug, Default)]
pub struct PingRound {
    /// Hosts whose ping reached management.
    pub pings: Vec<HostId>,
    /// Hosts that came back into reach: their full list of running domains.
    pub full_reports: Vec<(HostId, Vec<VmId>)>,
    /// Domains a reachable host saw stop on their own (watchdog).
    pub stopped: Vec<(HostId, VmId)>,
    /// Hosts whose watchdog fired this round.
    pub self_fenced: Vec<HostId>,
}

impl World {
    /// Answers investigation and fencing calls; `None` for every other call.
    pub fn answer_probe(&mut self, call: &DriverCall) -> Option<DriverResult> {
        Some(match call {
            DriverCall::CheckLease { host, pool } => match self.pools.get(pool) {
                Some(p) if !p.down => DriverResult::Lease {
                    renewed_at: self
                        .hosts
                        .get(host)
                        .and_then(|h| h.leases.iter().find(|(lp, _)| lp == pool))
                        .and_then(|(_, t)| *t),
                },
                Some(p) => DriverResult::Failed(DriverError::unavailable(format!(
                    "storage pool {} is unavailable",
                    p.name
                ))),
                None => DriverResult::Failed(DriverError::not_found("unknown storage pool")),
            },
            // A neighbour reaches a host that is powered on, not frozen and
            // not cut off from the cluster network (an agent-only hang or a
            // management partition does not stop it answering).
            DriverCall::PingNeighbour { target, .. } => DriverResult::Reachable {
                reachable: self.hosts.get(target).is_some_and(|h| h.neighbours_reach()),
            },
            DriverCall::PowerOff { host } => {
                if !self.fence_available {
                    DriverResult::Failed(DriverError::refused(
                        "no fence driver (out-of-band power control) for this host",
                    ))
                } else if self.hosts.contains_key(host) {
                    self.crash_host(*host);
                    DriverResult::Ok
                } else {
                    DriverResult::Failed(DriverError::not_found("unknown host"))
                }
            }
            _ => return None,
        })
    }

    /// One round of heartbeats: lease renewals, watchdogs, pings, reports.
    pub fn ping_round(&mut self, now: u64) -> PingRound {
        let mut out = PingRound {
            pings: Vec::with_capacity(self.hosts.len()),
            ..PingRound::default()
        };
        // Domains that died since the last round, reported by their (reachable) hosts.
        for (h, vm) in std::mem::take(&mut self.crashed_vms) {
            if self.hosts.get(&h).is_some_and(|x| x.reachable()) {
                out.stopped.push((h, vm));
            }
        }
        let mut fence: Vec<HostId> = Vec::new();
        self.rounds += 1;
        let sync = self.full_report_every > 0 && self.rounds.is_multiple_of(self.full_report_every);
        let pools = &self.pools;
        // Leases are only ever on pools of the world (`from_cloud`): with none of
        // them down, every lease renews without looking its pool up.
        let all_up = pools.values().all(|p| !p.down);
        for (id, h) in self.hosts.iter_mut() {
            if h.crashed {
                h.was_reachable = false;
                continue;
            }
            // A hung host renews nothing; a partitioned one, or one whose agent
            // alone hangs, still reaches storage. The lease stamp is in the
            // host's own (possibly skewed) wall clock; the watchdog runs on a
            // monotonic clock, as the agent's does (a clock jump moves stamps,
            // never the watchdog's deadline).
            let local = h.local_clock(now);
            let renews = h.renews_leases();
            let mut renewed = false;
            for (p, t) in h.leases.iter_mut() {
                if renews && (all_up || pools.get(p).is_some_and(|pool| !pool.down)) {
                    *t = Some(local);
                    renewed = true;
                }
            }
            if renewed {
                h.note_renewal(now);
                h.watchdog.on_lease_renewed(now);
            }
            let reachable = h.reachable();
            if reachable {
                h.watchdog.on_management_contact(now);
            }
            // No lease to lose, no watchdog. While isolated nothing may run:
            // the watchdog fences at the boundary, and stops anything found
            // running later in the same isolation.
            let isolated = !h.leases.is_empty() && h.watchdog.is_isolated(now);
            if isolated && h.domains.values().any(|d| d.running) {
                fence.push(*id);
            }
            if reachable {
                out.pings.push(*id);
                if !h.was_reachable || sync {
                    let list = h.domains.iter().filter(|(_, d)| d.running).map(|(vm, _)| *vm).collect();
                    out.full_reports.push((*id, list));
                }
            }
            h.was_reachable = reachable;
        }
        // The watchdog: no lease and no management, no VMs.
        for id in fence {
            let running: Vec<VmId> = self.hosts[&id]
                .domains
                .iter()
                .filter(|(_, d)| d.running)
                .map(|(vm, _)| *vm)
                .collect();
            for vm in &running {
                self.stop_domain_now(id, *vm);
            }
            let h = self.hosts.get_mut(&id).expect("listed");
            h.watchdog.fenced(now);
            out.self_fenced.push(id);
            if h.reachable() {
                out.stopped.extend(running.iter().map(|vm| (id, *vm)));
            }
        }
        out
    }

    /// One running domain on `host` dies (its host stays up and reports it).
    pub fn crash_one_vm(&mut self, host: HostId) -> Option<VmId> {
        let vm = self
            .hosts
            .get(&host)?
            .domains
            .iter()
            .find(|(_, d)| d.running)
            .map(|(vm, _)| *vm)?;
        self.stop_domain_now(host, vm);
        self.crashed_vms.push((host, vm));
        Some(vm)
    }

    /// Records a lease renewal by `host` on `pool` (the async backend's heartbeat),
    /// stamped by the host's own clock.
    pub fn renew_lease(&mut self, host: HostId, pool: PoolId, now: u64) {
        let down = self.pools.get(&pool).is_none_or(|p| p.down);
        let Some(h) = self.hosts.get_mut(&host) else { return };
        let alive = !down && h.renews_leases();
        let local = h.local_clock(now);
        if let Some((_, t)) = h.leases.iter_mut().find(|(p, _)| *p == pool)
            && alive
        {
            *t = Some(local);
            h.note_renewal(now);
        }
    }

    /// Every reachable host's full list of running domains.
    pub fn full_reports(&self) -> Vec<(HostId, Vec<VmId>)> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.reachable())
            .map(|(id, h)| {
                (
                    *id,
                    h.domains.iter().filter(|(_, d)| d.running).map(|(vm, _)| *vm).collect(),
                )
            })
            .collect()
    }

    /// Stops and removes a domain outside any driver call (watchdog).
    fn stop_domain_now(&mut self, host: HostId, vm: VmId) {
        self.generation += 1;
        let Some(h) = self.hosts.get_mut(&host) else { return };
        if h.domains.remove(&vm).is_some_and(|d| d.running)
            && let Some(c) = self.running_copies.get_mut(&vm)
        {
            *c -= 1;
            if *c == 0 {
                self.running_copies.remove(&vm);
            }
        }
    }
}
