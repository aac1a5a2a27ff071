//! VM sync: what hosts say they run, reconciled with the ledger. A copy the
//! ledger expects elsewhere is adopted only when its expected host is known not
//! to run it; otherwise it is stopped. Never two copies, never silently.

use super::Controller;
use super::effects::DriverCall;
use super::hosts::Probe;
use crate::controller::EventKind;
use crate::ids::*;
use crate::inventory::HostStatus;
use crate::units::Millis;
use crate::vm::{Charge, VmState};
use std::collections::{BTreeMap, BTreeSet};

impl Controller {
    /// One host's full list of running domains (after it reconnects).
    pub fn on_vm_report(&mut self, host: HostId, running: &[VmId], now: Millis) {
        self.on_vm_reports(&[(host, running.to_vec())], now);
    }

    /// Full reports from several hosts at once (periodically, and after a
    /// management restart when every agent reconnects).
    pub fn on_vm_reports(&mut self, reports: &[(HostId, Vec<VmId>)], now: Millis) {
        self.tick(now);
        let reporters: BTreeMap<HostIdx, BTreeSet<VmId>> = reports
            .iter()
            .filter_map(|(h, vms)| {
                self.cloud
                    .inv
                    .find_host(*h)
                    .map(|hi| (hi, vms.iter().copied().collect()))
            })
            .collect();
        // Copies found where the ledger does not expect them (rare), by VM.
        let mut odd: BTreeMap<VmId, Vec<HostIdx>> = BTreeMap::new();
        for (h, vms) in &reporters {
            for vm in vms {
                let here = self.cloud.vm(*vm).is_some_and(|v| match v.charge {
                    Charge::Used { host } => host == *h && v.state != VmState::Error,
                    Charge::Migrating { from, to } => from == *h || to == *h,
                    _ => false,
                });
                if !here {
                    odd.entry(*vm).or_default().push(*h);
                }
            }
        }
        for (vm, hosts) in &odd {
            if self.vm_busy(*vm) {
                continue; // its saga decides
            }
            let home = match self.cloud.vm(*vm).map(|v| (v.state, v.charge)) {
                Some((VmState::Running | VmState::Starting | VmState::Stopping, Charge::Used { host })) => Some(host),
                _ => None,
            };
            // Adopt a copy only when its home is known not to run it.
            let keep = home.and_then(|home| {
                let clear = reporters.get(&home).is_some_and(|s| !s.contains(vm))
                    || self.cloud.inv.host(home).status == HostStatus::Down
                        && self.health.get(home.ix()).is_some_and(|x| x.fenced.is_some());
                clear.then_some(hosts[0])
            });
            if let (Some(k), Some(i)) = (keep, self.cloud.vm_index(*vm)) {
                let (name, to) = (self.vm_label(*vm), self.cloud.inv.host(k).name.clone());
                self.event(
                    EventKind::VmAdopted,
                    name,
                    format!("found running on {to}; the ledger follows"),
                );
                self.cloud.adopt_on(i, k);
            }
            for h in hosts.iter().filter(|h| Some(**h) != keep) {
                let (name, hname) = (self.vm_label(*vm), self.cloud.inv.host(*h).name.clone());
                self.event(
                    EventKind::VmStray,
                    name,
                    format!("running on {hname}, which the ledger does not expect: stopping it"),
                );
                let id = self.cloud.host_id(*h);
                self.probe(
                    *h,
                    Probe::StrayStop(*vm),
                    DriverCall::StopDomain {
                        vm: *vm,
                        host: id,
                        forced: true,
                    },
                );
            }
        }
        self.settle_unknown(&reporters, now);
        // VMs a reporting host should run but nobody reported: lost.
        for (h, vms) in &reporters {
            let lost: Vec<VmIdx> = self
                .cloud
                .vms_on(*h)
                .iter()
                .copied()
                .filter(|i| {
                    let v = self.cloud.vm_at(*i);
                    v.state == VmState::Running
                        && v.charge == Charge::Used { host: *h }
                        && !vms.contains(&v.id)
                        && !odd.contains_key(&v.id)
                        && !self.vm_busy(v.id)
                })
                .collect();
            for i in lost {
                self.vm_lost(i, None, now, "its domain is gone from a live host");
            }
        }
    }

    /// VMs held as Unknown (a start or migration got no answer): adopted where a
    /// candidate host runs them; lost once every candidate host is known not to.
    fn settle_unknown(&mut self, reporters: &BTreeMap<HostIdx, BTreeSet<VmId>>, now: Millis) {
        let mut unknown: BTreeSet<VmIdx> = BTreeSet::new();
        for h in reporters.keys() {
            unknown.extend(
                self.cloud
                    .vms_on(*h)
                    .iter()
                    .copied()
                    .filter(|i| self.cloud.vm_at(*i).state == VmState::Unknown),
            );
        }
        for i in unknown {
            let v = self.cloud.vm_at(i);
            let (vm, charge) = (v.id, v.charge);
            if self.vm_busy(vm) {
                continue;
            }
            let candidates: Vec<HostIdx> = charge.hosts().collect();
            let running_on: Vec<HostIdx> = candidates
                .iter()
                .copied()
                .filter(|c| reporters.get(c).is_some_and(|s| s.contains(&vm)))
                .collect();
            if let Some(&k) = running_on.first() {
                let (name, to) = (self.vm_label(vm), self.cloud.inv.host(k).name.clone());
                self.event(EventKind::VmAdopted, name, format!("Unknown VM found running on {to}"));
                let others: Vec<HostIdx> = candidates.iter().copied().filter(|c| *c != k).collect();
                self.cloud.adopt_on(i, k);
                self.unplug_elsewhere(i, &others);
                for h in running_on.iter().skip(1) {
                    let id = self.cloud.host_id(*h);
                    self.probe(
                        *h,
                        Probe::StrayStop(vm),
                        DriverCall::StopDomain {
                            vm,
                            host: id,
                            forced: true,
                        },
                    );
                }
                continue;
            }
            let clear = candidates
                .iter()
                .all(|c| reporters.contains_key(c) || self.is_fenced(*c));
            if clear {
                self.vm_lost(i, None, now, "it was Unknown and no candidate host runs it");
            }
        }
    }

    pub(crate) fn is_fenced(&self, h: HostIdx) -> bool {
        self.cloud.inv.host(h).status == HostStatus::Down && self.health.get(h.ix()).is_some_and(|x| x.fenced.is_some())
    }

    /// One domain stopped on its own (crash, guest shutdown, self-fencing).
    pub fn on_vm_stopped(&mut self, host: HostId, vm: VmId, now: Millis) {
        self.tick(now);
        let Some(h) = self.cloud.inv.find_host(host) else {
            return;
        };
        let Some(i) = self.cloud.vm_index(vm) else { return };
        let v = self.cloud.vm_at(i);
        if v.state == VmState::Running && v.charge == (Charge::Used { host: h }) && !self.vm_busy(vm) {
            self.vm_lost(i, None, now, "its domain stopped on a live host");
        }
    }
}
