//! What the simulated datacenter does for HA: hosts renew storage leases and
//! ping management every round. A host that for `lease_timeout_ms` could
//! neither renew a lease nor reach management is isolated and stops its own
//! VMs (the watchdog); a storage blip alone or a lost link alone never does.
//! Lease reads, neighbour pings and power-off answer the investigations.

use crate::world::World;
use stratus_core::controller::effects::{DriverCall, DriverResult};
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
                Some(p) => DriverResult::Failed(format!("storage pool {} is unavailable", p.name)),
                None => DriverResult::Failed("unknown storage pool".into()),
            },
            // A neighbour reaches a host that is powered on, hung or not
            // (the hang is in the agent; the kernel still answers).
            DriverCall::PingNeighbour { target, .. } => {
                DriverResult::Reachable(self.hosts.get(target).is_some_and(|h| !h.crashed))
            }
            DriverCall::PowerOff { host } => {
                if !self.fence_available {
                    DriverResult::Failed("no fence driver (out-of-band power control) for this host".into())
                } else if self.hosts.contains_key(host) {
                    self.crash_host(*host);
                    DriverResult::Ok
                } else {
                    DriverResult::Failed("unknown host".into())
                }
            }
            _ => return None,
        })
    }

    /// One round of heartbeats: lease renewals, watchdogs, pings, reports.
    pub fn ping_round(&mut self, now: u64) -> PingRound {
        let mut out = PingRound::default();
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
        for (id, h) in self.hosts.iter_mut() {
            if h.crashed {
                h.was_reachable = false;
                continue;
            }
            // A hung agent renews nothing; a partitioned one still reaches storage.
            let mut last = None;
            for (p, t) in h.leases.iter_mut() {
                if !h.hung && pools.get(p).is_some_and(|pool| !pool.down) {
                    *t = Some(now);
                }
                last = last.max(*t);
            }
            let reachable = h.reachable();
            if reachable {
                h.last_contact = now;
            }
            let isolated_since = last.unwrap_or(0).max(h.last_contact);
            let lost = !h.leases.is_empty() && now.saturating_sub(isolated_since) >= self.lease_timeout_ms;
            if lost && h.domains.values().any(|d| d.running) {
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
        // The watchdog: no lease, no VMs.
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
            h.self_fenced_at = Some(now);
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

    /// Records a lease renewal by `host` on `pool` (the async backend's heartbeat).
    pub fn renew_lease(&mut self, host: HostId, pool: PoolId, now: u64) {
        let down = self.pools.get(&pool).is_none_or(|p| p.down);
        let Some(h) = self.hosts.get_mut(&host) else { return };
        let alive = !down && !h.hung && !h.crashed;
        if let Some((_, t)) = h.leases.iter_mut().find(|(p, _)| *p == pool)
            && alive
        {
            *t = Some(now);
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
