//! Leftovers and their reconciler. An undo call that still fails after the
//! saga's own retries (with backoff) does not leave its resource behind
//! silently: the call is kept as a `Leftover` and retried by the periodic
//! reconciler, with growing pauses, once its host is back, until the driver
//! says it is done (or that the thing is already gone). Undo calls are
//! idempotent: deleting what is absent succeeds.

use super::effects::{DriverCall, DriverResult, ErrorKind, OpId};
use super::{Controller, EventKind};
use crate::inventory::HostStatus;
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// Pause before the saga retries a failed undo call: 1 s, 2 s, 4 s, …
pub const UNDO_BACKOFF_MS: u64 = 1_000;
/// First pause of the reconciler after a failed cleanup; doubles up to the cap.
pub const LEFTOVER_BACKOFF_MS: u64 = 30_000;
pub const LEFTOVER_BACKOFF_CAP_MS: u64 = 900_000;

/// Whether a leftover's cleanup call should go out now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CleanupState {
    Due,
    /// A job is putting the VM back on that host: wait for its outcome.
    Held,
    /// The ledger owns the thing again: the cleanup is dropped.
    Obsolete,
}

/// A resource an unwound operation could not clean up yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Leftover {
    pub id: u64,
    /// The undo call that removes it.
    pub call: DriverCall,
    /// The operation and VM or volume it belonged to.
    pub what: String,
    pub since: Millis,
    pub attempts: u32,
    pub next_at: Millis,
    pub last_error: String,
    #[serde(default)]
    pub in_flight: Option<OpId>,
}

/// The pause before attempt `n + 1` of a saga's undo call.
pub fn undo_backoff_ms(attempts: u32) -> u64 {
    UNDO_BACKOFF_MS << attempts.saturating_sub(1).min(10)
}

fn leftover_backoff_ms(attempts: u32) -> u64 {
    (LEFTOVER_BACKOFF_MS << attempts.min(10)).min(LEFTOVER_BACKOFF_CAP_MS)
}

impl Controller {
    /// Resources waiting for the reconciler.
    pub fn leftovers(&self) -> impl Iterator<Item = &Leftover> {
        self.leftovers.values()
    }

    /// Schedules an idempotent cleanup call (a port or domain on a host the VM
    /// no longer runs on) for the reconciler's next pass.
    pub(crate) fn clean_up_later(&mut self, call: DriverCall, what: String) {
        let id = self.next_leftover;
        self.next_leftover += 1;
        self.leftovers.insert(
            id,
            Leftover {
                id,
                call,
                what,
                since: self.now,
                attempts: 0,
                next_at: self.now,
                last_error: String::new(),
                in_flight: None,
            },
        );
        // Issued at once when its host answers (else on a later pass).
        self.clean_leftovers();
    }

    /// Removes a VM's leftovers (its domain definition and NIC port) from each
    /// of `hosts`, where it may have been and no longer runs (after a lost VM or
    /// a settled in-doubt migration). Idempotent; retried until its host answers.
    pub(crate) fn unplug_elsewhere(&mut self, vm: crate::ids::VmIdx, hosts: &[crate::ids::HostIdx]) {
        let v = self.cloud.vm_at(vm);
        let (id, name, nic) = (v.id, v.name.clone(), v.nic);
        for h in hosts {
            let host = self.cloud.host_id(*h);
            self.clean_up_later(DriverCall::UndefineDomain { vm: id, host }, format!("domain of {name}"));
            if let Some(nic) = nic {
                let network = self.cloud.inv.network(nic.network).id;
                self.clean_up_later(
                    DriverCall::UnplugNic {
                        vm: id,
                        host,
                        network,
                        mac: super::effects::Mac(nic.mac),
                    },
                    format!("port of {name}"),
                );
            }
        }
    }

    /// What the reconciler does with a cleanup now. It is obsolete once the
    /// ledger owns the thing again for good (the VM settled on that host, the
    /// volume re-created): undoing it would destroy live state. While a job is
    /// still putting the VM on that host, it is held, not dropped: if that job
    /// fails, its own undo removes only what it created, and the older
    /// definition or port would otherwise stay behind unknown to the ledger.
    fn cleanup_state(&self, call: &DriverCall) -> CleanupState {
        let on = |vm: crate::ids::VmId, host: crate::ids::HostId| {
            self.cloud.vm(vm).is_some_and(|v| {
                self.cloud.inv.find_host(host).is_some_and(|h| match v.charge {
                    // A reservation holds capacity, not a port or a domain.
                    crate::vm::Charge::Used { host } => host == h,
                    crate::vm::Charge::Migrating { from, to } => from == h || to == h,
                    _ => false,
                })
            })
        };
        let owned = |yes: bool| if yes { CleanupState::Obsolete } else { CleanupState::Due };
        match call {
            DriverCall::UnplugNic { vm, host, .. }
            | DriverCall::UndefineDomain { vm, host }
            | DriverCall::StopDomain { vm, host, .. }
            | DriverCall::DetachDisk { vm, host, .. } => match (on(*vm, *host), self.vm_busy(*vm)) {
                (true, true) => CleanupState::Held,
                (owned_there, _) => owned(owned_there),
            },
            DriverCall::DeleteVolume { volume, .. } => owned(self.cloud.volume(*volume).is_some_and(|v| v.created)),
            DriverCall::DeleteSnapshot { snapshot } => owned(self.cloud.snapshot(*snapshot).is_some()),
            _ => CleanupState::Due,
        }
    }

    /// Hands an undo call that kept failing to the reconciler.
    pub(crate) fn leave_behind(&mut self, call: DriverCall, what: String, error: String) {
        let id = self.next_leftover;
        self.next_leftover += 1;
        self.event(
            EventKind::Leftover,
            what.clone(),
            format!("{} left for the reconciler: {error}", call.name()),
        );
        let next_at = Millis(self.now.0 + leftover_backoff_ms(0));
        self.leftovers.insert(
            id,
            Leftover {
                id,
                call,
                what,
                since: self.now,
                attempts: 0,
                next_at,
                last_error: error,
                in_flight: None,
            },
        );
    }

    /// The reconciler's pass (every tick): retries the leftovers that are due
    /// and whose host answers again.
    pub(crate) fn clean_leftovers(&mut self) {
        let now = self.now;
        let stale: Vec<u64> = self
            .leftovers
            .values()
            .filter(|l| l.in_flight.is_none() && self.cleanup_state(&l.call) == CleanupState::Obsolete)
            .map(|l| l.id)
            .collect();
        for id in stale {
            self.leftovers.remove(&id);
        }
        let due: Vec<u64> = self
            .leftovers
            .values()
            .filter(|l| l.in_flight.is_none() && l.next_at <= now)
            .filter(|l| self.cleanup_state(&l.call) == CleanupState::Due)
            .filter(|l| match l.call.host() {
                Some(h) => self
                    .cloud
                    .inv
                    .find_host(h)
                    .is_some_and(|i| self.cloud.inv.host(i).status == HostStatus::Up),
                None => true,
            })
            .map(|l| l.id)
            .collect();
        for id in due {
            let call = self.leftovers[&id].call.clone();
            let timeout = super::op_timeout_ms(&call);
            let op = self.call_untracked(call, timeout);
            self.cleanup_ops.insert(op, id);
            if let Some(l) = self.leftovers.get_mut(&id) {
                l.in_flight = Some(op);
            }
        }
    }

    /// Whether `op` is a reconciler call; if so, settles it.
    pub(crate) fn cleanup_result(&mut self, op: OpId, result: &DriverResult) -> bool {
        let Some(id) = self.cleanup_ops.remove(&op) else {
            return false;
        };
        let Some(l) = self.leftovers.get_mut(&id) else {
            return true;
        };
        l.in_flight = None;
        match result {
            DriverResult::Failed(e) if e.kind != ErrorKind::NotFound => {
                l.attempts += 1;
                l.last_error = e.to_string();
                l.next_at = Millis(self.now.0 + leftover_backoff_ms(l.attempts));
            }
            _ => {
                let l = self.leftovers.remove(&id).expect("present");
                self.event(
                    EventKind::LeftoverCleaned,
                    l.what,
                    format!("{} done after {} retries", l.call.name(), l.attempts + 1),
                );
            }
        }
        true
    }

    /// After a management restart: reconciler calls in flight are forgotten
    /// and retried on the next pass (they are idempotent).
    pub(crate) fn forget_cleanup_calls(&mut self) {
        self.cleanup_ops.clear();
        for l in self.leftovers.values_mut() {
            l.in_flight = None;
        }
    }
}
