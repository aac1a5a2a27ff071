//! VM HA: restarts of VMs whose host was fenced or whose domain vanished,
//! with retries, reasons when they give up, and the bounded-time check.

use super::Controller;

use super::hosts::{HaOutcome, HaWork};
use crate::controller::EventKind;
use crate::ids::*;
use crate::settings::Scope;
use crate::units::Millis;
use crate::vm::{Charge, VmState, VolumeType};

impl Controller {
    /// A Down host that could not be fenced for this long has its HA VMs put
    /// in Error with the reason: they may still run there, so they are not
    /// restarted, and an operator must decide.
    pub fn unfenceable_after_ms(&self) -> u64 {
        self.fence_proof_ms() + 300_000
    }

    pub(crate) fn block_unfenceable(&mut self, h: HostIdx) {
        let Some(down) = self.health_mut(h).down_since else {
            return;
        };
        if self.now.0.saturating_sub(down.0) < self.unfenceable_after_ms() {
            return;
        }
        let host = self.cloud.inv.host(h).name.clone();
        let stuck: Vec<VmIdx> = self
            .cloud
            .vms_on(h)
            .iter()
            .copied()
            .filter(|i| {
                let v = self.cloud.vm_at(*i);
                v.ha_enabled && v.state == VmState::Running && v.charge == Charge::Used { host: h }
            })
            .collect();
        for i in stuck {
            let vm = self.cloud.vm_at(i).id;
            if self.vm_busy(vm) {
                continue;
            }
            self.cloud.mark_error_in_place(i);
            let name = self.vm_label(vm);
            self.event(
                EventKind::HaBlocked,
                name,
                format!("host {host} is Down but cannot be proven fenced (no readable lease, no fence driver): not restarted, left in Error for an operator"),
            );
        }
    }

    /// A VM that is no longer running anywhere: Stopped, and HA-restarted if it may be.
    pub(crate) fn vm_lost(&mut self, i: VmIdx, host: Option<HostIdx>, since: Millis, why: &str) {
        // Its port may outlive the domain on a live host: clean it up (idempotent;
        // dropped if the VM runs there again first).
        let was_on: Vec<HostIdx> = self.cloud.vm_at(i).charge.hosts().collect();
        self.cloud.vm_lost(i);
        self.unplug_elsewhere(i, &was_on);
        let vm = self.cloud.vm_at(i);
        let (id, name) = (vm.id, vm.name.clone());
        let force = host.is_some_and(|h| {
            let cl = self.cloud.inv.host(h).cluster;
            self.cloud
                .settings
                .bool("force.ha", Scope::Cluster(self.cloud.inv.cluster(cl).id))
        });
        let local_root = vm.volumes.iter().any(|v| {
            let vol = self.cloud.volume_at(*v);
            vol.volume_type == VolumeType::Root && vol.pool.is_some_and(|p| self.cloud.inv.pool(p).is_local())
        });
        if !(vm.ha_enabled || force) {
            self.event(
                EventKind::VmStopped,
                name,
                format!("{why}; not HA-enabled: left Stopped"),
            );
        } else if local_root {
            self.event(
                EventKind::HaSkip,
                name.clone(),
                format!("{why}; not restarted: root volume on host-local storage"),
            );
            let host_id = host.map(|h| self.cloud.host_id(h));
            self.ha_log.push(HaOutcome {
                vm: id,
                host: host_id,
                lost_at: since,
                recovered_at: None,
                reason: "root volume on host-local storage".into(),
            });
        } else {
            self.event(EventKind::HaScheduled, name, why.to_string());
            self.ha.insert(
                id,
                HaWork {
                    since,
                    lost_host: host,
                    attempts: 0,
                    next_at: self.now,
                },
            );
            self.ha_tick();
        }
    }

    /// Starts due HA restarts.
    pub(crate) fn ha_tick(&mut self) {
        let now = self.now;
        let due: Vec<VmId> = self
            .ha
            .iter()
            .filter(|(vm, w)| w.next_at <= now && !self.vm_busy(**vm))
            .map(|(vm, _)| *vm)
            .collect();
        for vm in due {
            match self.cloud.vm(vm).map(|v| v.state) {
                Some(VmState::Stopped) => {
                    if let Err(e) = self.submit_ha_restart(vm) {
                        self.ha_failed(vm, &e.to_string());
                    }
                }
                Some(VmState::Running) => {
                    self.ha.remove(&vm);
                }
                _ => {
                    // Destroyed or in Error meanwhile: nothing to restart.
                    self.ha.remove(&vm);
                }
            }
        }
    }

    /// Records an HA attempt that failed; retries or gives up with a reason.
    pub(crate) fn ha_failed(&mut self, vm: VmId, error: &str) {
        let retries = self.cloud.settings.i64("max.retries", Scope::Global).max(0) as u32;
        let every = self.cloud.settings.i64("restart.retry.interval", Scope::Global).max(1) as u64 * 1000;
        let now = self.now;
        let name = self.vm_label(vm);
        let headline = error.lines().next().unwrap_or("").to_string();
        let Some(w) = self.ha.get_mut(&vm) else { return };
        w.attempts += 1;
        if w.attempts > retries {
            let (since, lost) = (w.since, w.lost_host);
            self.ha.remove(&vm);
            let host = lost.map(|h| self.cloud.host_id(h));
            let reason = format!("HA gave up after {} attempts: {headline}", retries + 1);
            self.event(EventKind::HaGaveUp, name, reason.clone());
            if let Some(i) = self.cloud.vm_index(vm) {
                self.cloud.mark_error(i);
            }
            self.ha_log.push(HaOutcome {
                vm,
                host,
                lost_at: since,
                recovered_at: None,
                reason,
            });
        } else {
            w.next_at = Millis(now.0 + every);
            let attempts = w.attempts;
            self.event(
                EventKind::HaRetry,
                name,
                format!("attempt {attempts} failed: {headline}"),
            );
        }
    }

    pub(crate) fn ha_succeeded(&mut self, vm: VmId) {
        if let Some(w) = self.ha.remove(&vm) {
            let now = self.now;
            let name = self.vm_label(vm);
            self.event(
                EventKind::HaRecovered,
                name,
                format!(
                    "running again {:.1} s after its host was lost",
                    (now.0 - w.since.0) as f64 / 1e3
                ),
            );
            let host = w.lost_host.map(|h| self.cloud.host_id(h));
            self.ha_log.push(HaOutcome {
                vm,
                host,
                lost_at: w.since,
                recovered_at: Some(now),
                reason: "restarted".into(),
            });
        }
    }

    /// HA restarts waiting or in progress: the VM, the host it was lost with
    /// and when (for the simulator's fencing invariant).
    pub fn ha_work(&self) -> impl Iterator<Item = (VmId, Option<HostId>, Millis)> + '_ {
        self.ha
            .iter()
            .map(|(vm, w)| (*vm, w.lost_host.map(|h| self.cloud.host_id(h)), w.since))
    }

    /// HA restarts waiting or in progress.
    pub fn ha_pending(&self) -> usize {
        self.ha.len()
    }

    /// HA VMs not back within `bound_ms` of losing their host (invariant check).
    pub fn ha_overdue(&self, bound_ms: u64) -> Vec<(VmId, u64)> {
        self.ha
            .iter()
            .filter(|(_, w)| self.now.0.saturating_sub(w.since.0) > bound_ms)
            .map(|(vm, w)| (*vm, self.now.0 - w.since.0))
            .collect()
    }
}
