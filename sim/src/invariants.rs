//! The safety claims, checked against the simulated world's truth after every
//! event. Each invariant has a name (it prefixes every violation) and exactly
//! one implementation, here or in `stratus_core::cloud::safety` for the rules
//! over the ledger alone; runs, fuzz and tests all call these.

use crate::world::World;
use std::collections::{BTreeMap, BTreeSet};
use stratus_core::controller::effects::DriverCall;
use stratus_core::controller::{Command, Controller, Job, JobStatus};
use stratus_core::ids::*;
use stratus_core::inventory::ResourceState;
use stratus_core::units::Millis;
use stratus_core::vm::VmState;

pub const NO_VM_RUNS_TWICE: &str = "no-vm-runs-twice";
pub const FENCED_BEFORE_HA_RESTART: &str = "fenced-before-ha-restart";
pub const NO_DOWN_WITH_FRESH_LEASE: &str = "no-down-with-fresh-lease";
pub const FAILED_OP_HOLDS_NOTHING: &str = "failed-op-holds-nothing";
pub const NO_VM_ON_MAINTENANCE_HOST: &str = "no-vm-on-maintenance-host";

/// Where the per-event checks left off: HA losses already checked, and the
/// controller's list of Down transitions.
#[derive(Clone, Debug, Default)]
pub struct Cursor {
    pub ha_losses: BTreeSet<(VmId, Millis)>,
    pub host_downs: usize,
}

/// A VM whose domain runs on two hosts at once (the world counts copies).
pub fn vm_runs_twice(ctl: &Controller, vm: VmId) -> String {
    let name = ctl.cloud().vm(vm).map_or_else(|| vm.to_string(), |v| v.name.clone());
    format!("[{NO_VM_RUNS_TWICE}] VM {name} runs on two hosts at once")
}

/// No VM is declared lost with its host (and so restarted elsewhere by HA)
/// before that host is proven fenced, and none while its domain still runs
/// there: the rule for one loss, checked when the loss happens.
pub fn fenced_before_ha_restart(ctl: &Controller, world: &World, vm: VmId, host: HostId) -> Vec<String> {
    let mut out = Vec::new();
    let Some(hi) = ctl.cloud().inv.find_host(host) else {
        return out;
    };
    let name = &ctl.cloud().inv.host(hi).name;
    let label = ctl.vm_label(vm);
    if ctl.host_health(hi).and_then(|x| x.fenced).is_none() {
        out.push(format!(
            "[{FENCED_BEFORE_HA_RESTART}] VM {label} declared lost with host {name} before {name} was proven fenced"
        ));
    }
    if world
        .hosts
        .get(&host)
        .is_some_and(|wh| wh.domains.get(&vm).is_some_and(|d| d.running))
    {
        out.push(format!(
            "[{FENCED_BEFORE_HA_RESTART}] VM {label} declared lost with host {name} while its domain still runs there"
        ));
    }
    out
}

/// [`fenced_before_ha_restart`] for every HA loss that appeared since `seen`
/// (updated to the current ones).
pub fn new_ha_losses_fenced(ctl: &Controller, world: &World, seen: &mut BTreeSet<(VmId, Millis)>) -> Vec<String> {
    let now: BTreeSet<(VmId, Millis)> = ctl.ha_work().map(|(vm, _, since)| (vm, since)).collect();
    let mut out = Vec::new();
    if now.iter().any(|k| !seen.contains(k)) {
        for (vm, host, since) in ctl.ha_work() {
            if let Some(h) = host
                && !seen.contains(&(vm, since))
            {
                out.extend(fenced_before_ha_restart(ctl, world, vm, h));
            }
        }
    }
    *seen = now;
    out
}

/// A host that renewed its storage lease within the last ping interval is
/// never marked Down (management can only prove a lease stale after two).
pub fn no_down_with_fresh_lease(ctl: &Controller, world: &World, from: usize, now: u64, ping_ms: u64) -> Vec<String> {
    let mut out = Vec::new();
    for (h, _) in ctl.host_downs().get(from..).unwrap_or_default() {
        let Some(wh) = world.hosts.get(h) else { continue };
        // Fresh, and renewing for two ping intervals already: a read of
        // management's could not miss it. A host that resumed renewing just
        // now (back from a crash or a hang) may be judged on a read made
        // just before its first renewal, and rightly so.
        if let Some(at) = wh.last_renewal_at
            && !wh.crashed
            && now.saturating_sub(at) <= ping_ms
            && wh.renewing_since.is_some_and(|since| since + 2 * ping_ms <= now)
        {
            out.push(format!(
                "[{NO_DOWN_WITH_FRESH_LEASE}] host {} marked Down {:.1} s after it renewed its lease",
                wh.name,
                now.saturating_sub(at) as f64 / 1e3
            ));
        }
    }
    out
}

/// A VM whose deploy failed holds no address, and nothing the deploy created
/// is left in the world (domain, NIC port, volume) unless the reconciler
/// holds it as a leftover to clean up.
pub fn failed_op_holds_nothing(ctl: &Controller, world: &World) -> Vec<String> {
    let c = ctl.cloud();
    // The failed deploy must be the VM's last job: a deploy that failed with
    // its start in doubt holds the VM's resources by design, and an HA restart
    // or VM sync may then run it; if it ends in Error later (HA gave up), it
    // keeps its address and volumes like any VM that ran.
    let mut last_job: BTreeMap<VmId, &Job> = BTreeMap::new();
    for j in ctl.jobs() {
        if let Some(vm) = j.vm {
            last_job.insert(vm, j); // jobs are listed in submission order
        }
    }
    let failed: BTreeSet<VmId> = last_job
        .iter()
        .filter(|(_, j)| j.command == Command::DeployVirtualMachine && j.status == JobStatus::Failed)
        .map(|(vm, _)| *vm)
        .filter(|vm| !ctl.vm_busy(*vm))
        .filter(|vm| c.vm(*vm).is_some_and(|v| v.state == VmState::Error))
        .collect();
    if failed.is_empty() {
        return Vec::new();
    }
    let (mut held_vms, mut held_volumes) = (BTreeSet::new(), BTreeSet::new());
    for l in ctl.leftovers() {
        match &l.call {
            DriverCall::DeleteVolume { volume, .. } => {
                held_volumes.insert(*volume);
            }
            DriverCall::UndefineDomain { vm, .. }
            | DriverCall::StopDomain { vm, .. }
            | DriverCall::UnplugNic { vm, .. } => {
                held_vms.insert(*vm);
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for vm in &failed {
        let v = c.vm(*vm).expect("filtered");
        if let Some(nic) = v.nic {
            out.push(format!(
                "[{FAILED_OP_HOLDS_NOTHING}] VM {} failed to deploy but holds address {}",
                v.name, nic.ip
            ));
        }
        if held_vms.contains(vm) {
            continue;
        }
        for (h, wh) in &world.hosts {
            if wh.domains.contains_key(vm) {
                out.push(format!(
                    "[{FAILED_OP_HOLDS_NOTHING}] VM {} failed to deploy but its domain is on {}",
                    v.name, wh.name
                ));
            }
            if wh.ports.iter().any(|(pv, _)| pv == vm) {
                out.push(format!(
                    "[{FAILED_OP_HOLDS_NOTHING}] VM {} failed to deploy but its NIC port is on {} ({h})",
                    v.name, wh.name
                ));
            }
        }
    }
    for pool in world.pools.values() {
        for vol in &pool.volumes {
            let Some(record) = c.volume(*vol) else { continue };
            if record.vm.is_some_and(|i| failed.contains(&c.vm_at(i).id)) && !held_volumes.contains(vol) {
                out.push(format!(
                    "[{FAILED_OP_HOLDS_NOTHING}] volume {} of a failed deploy is still on pool {}",
                    record.name, pool.name
                ));
            }
        }
    }
    out
}

/// No VM is charged to a host in Maintenance, and no domain runs on one.
pub fn no_vm_on_maintenance_host(ctl: &Controller, world: &World) -> Vec<String> {
    let mut out: Vec<String> = ctl
        .vms_on_maintenance_hosts()
        .into_iter()
        .map(|(vm, host)| {
            format!("[{NO_VM_ON_MAINTENANCE_HOST}] VM {vm} is still on host {host}, which is in Maintenance")
        })
        .collect();
    let c = ctl.cloud();
    for h in c
        .inv
        .hosts
        .iter()
        .filter(|h| h.resource_state == ResourceState::Maintenance)
    {
        let Some(wh) = world.hosts.get(&h.id) else { continue };
        for (vm, _) in wh.domains.iter().filter(|(_, d)| d.running) {
            out.push(format!(
                "[{NO_VM_ON_MAINTENANCE_HOST}] VM {} still runs on host {}, which is in Maintenance",
                ctl.vm_label(*vm),
                h.name
            ));
        }
    }
    out
}
