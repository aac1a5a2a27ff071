//! Running saga steps and their undos against the ledger and the drivers.

use super::Controller;
use super::effects::{
    DiskBus, DiskDetail, DiskFormat, DomainDevices, DomainSpec, DriverCall, DriverResult, Effect, Mac, NicDetail,
    NicModel, Timer,
};
use super::saga::{Mode, Step, Undo};
use crate::controller::{EventKind, SagaId};
use crate::ids::*;
use crate::units::Millis;
use crate::vm::{Charge, Nic, VolumeType};

pub(crate) enum Act {
    Done(Option<Undo>),
    Wait(DriverCall, Option<Undo>),
    WaitCopy(DriverCall, (TemplateIdx, PoolIdx)),
    Park((TemplateIdx, PoolIdx)),
    Fail(String),
    /// The allocator found no place (CloudStack's 533).
    NoCapacity(String),
}

impl Controller {
    /// Runs a saga as far as it can go without waiting.
    pub(crate) fn drive(&mut self, sid: SagaId) {
        loop {
            let Some(s) = self.saga_mut(sid) else { return };
            if s.pending.is_some() || s.parked || s.retry_at.is_some() {
                return;
            }
            match s.mode {
                Mode::Forward => {
                    let Some(step) = s.steps.pop_front() else {
                        self.finish(sid);
                        return;
                    };
                    match self.act(sid, step) {
                        Act::Done(undo) => {
                            let s = self.saga_mut(sid).expect("live saga");
                            s.done.extend(undo);
                        }
                        Act::Wait(call, undo) => {
                            // The undo is registered before the call goes out: a call
                            // that times out may still have happened, and a restart
                            // must unwind it too. Undos are idempotent.
                            let op = self.call(sid, call.clone());
                            let s = self.saga_mut(sid).expect("live saga");
                            s.done.extend(undo);
                            s.pending = Some((op, Some(step), undo));
                            s.call = Some(call);
                            return;
                        }
                        Act::WaitCopy(call, key) => {
                            let op = self.call(sid, call);
                            self.set_copy_in_progress(key, op);
                            self.saga_mut(sid).expect("live saga").pending = Some((op, Some(step), None));
                            return;
                        }
                        Act::Park(key) => {
                            let s = self.saga_mut(sid).expect("live saga");
                            s.steps.push_front(step);
                            s.parked = true;
                            self.park(key, sid);
                            return;
                        }
                        Act::Fail(msg) => {
                            let s = self.saga_mut(sid).expect("live saga");
                            s.mode = Mode::Unwinding;
                            s.failure = Some(msg);
                        }
                        Act::NoCapacity(msg) => {
                            let s = self.saga_mut(sid).expect("live saga");
                            s.mode = Mode::Unwinding;
                            s.failure = Some(msg);
                            s.capacity_refusal = true;
                        }
                    }
                }
                Mode::Unwinding => {
                    let Some(undo) = s.done.pop() else {
                        self.finish(sid);
                        return;
                    };
                    if let Some(call) = self.undo(sid, undo) {
                        let op = self.call(sid, call.clone());
                        let s = self.saga_mut(sid).expect("live saga");
                        s.pending = Some((op, None, Some(undo)));
                        s.call = Some(call);
                        return;
                    }
                }
            }
        }
    }

    pub(crate) fn step_result(&mut self, sid: SagaId, op: super::OpId, result: DriverResult) {
        let Some(s) = self.saga_mut(sid) else { return };
        match s.pending {
            Some((p, _, _)) if p == op => {}
            _ => return,
        }
        let (_, step, undo) = s.pending.take().expect("checked");
        let mode = s.mode;
        // Only failures log the saga's label: look it up then, not on every answer.
        let label = |c: &Controller| c.sagas.get(&sid).map(|s| c.saga_label(s)).unwrap_or_default();
        match (mode, step, result) {
            (Mode::Forward, Some(step), DriverResult::Ok) => {
                self.after_ok(step);
                if step == Step::MigrateDomain {
                    // The domain now runs on the destination: no way back.
                    let s = self.saga_mut(sid).expect("live saga");
                    s.forward_only = true;
                    s.done.clear();
                }
            }
            (Mode::Forward, Some(step), DriverResult::Failed(e))
                if step.starts_a_domain() && e.kind == super::effects::ErrorKind::InDoubt =>
            {
                let s = self.saga_mut(sid).expect("live saga");
                s.in_doubt = true;
                s.done.clear();
                s.mode = Mode::Unwinding;
                s.failure = Some(format!(
                    "{} got no answer: the VM is held as Unknown until its host reports",
                    step.name()
                ));
            }
            (Mode::Forward, Some(step), DriverResult::Failed(e)) => {
                // A call that surely did not happen needs no undo; one in doubt
                // keeps its (idempotent) undo.
                if !e.kind.may_have_happened() {
                    let s = self.saga_mut(sid).expect("live saga");
                    if undo.is_some() && s.done.last().copied() == undo {
                        s.done.pop();
                    }
                    // A snapshot that was not taken leaves no record.
                    if let Step::TakeSnapshot { snapshot, .. } = step {
                        self.cloud.remove_snapshot(snapshot);
                    }
                }
                if step.tolerant() {
                    let label = label(self);
                    self.event(
                        EventKind::Tolerated,
                        label.clone(),
                        format!("{} failed: {e}", step.name()),
                    );
                    // The saga carries on; what the call should have removed (a
                    // port, a definition) is left to the reconciler.
                    if let Some(call) = self.saga_mut(sid).and_then(|s| s.call.take()) {
                        self.leave_behind(call, format!("{} of {label}", step.name()), e.to_string());
                    }
                } else {
                    let s = self.saga_mut(sid).expect("live saga");
                    s.mode = Mode::Unwinding;
                    s.failure = Some(format!("{} failed: {e}", step.name()));
                    s.undo_cautious |= e.kind.may_have_happened();
                }
            }
            // Undoing what is already gone is done, unless the call it undoes may
            // still land (it went out before a restart or timed out): then absence
            // is believed only after the retries with backoff.
            (_, None, DriverResult::Failed(e))
                if e.kind == super::effects::ErrorKind::NotFound
                    && !self
                        .sagas
                        .get(&sid)
                        .is_some_and(|s| s.undo_cautious && s.undo_attempts + 1 < super::saga::UNDO_ATTEMPTS) =>
            {
                let s = self.saga_mut(sid).expect("live saga");
                s.undo_attempts = 0;
                s.call = None;
            }
            (_, _, DriverResult::Failed(e)) => {
                let now = self.now;
                let kind = self.sagas.get(&sid).map(|s| s.kind);
                let label = label(self);
                let s = self.saga_mut(sid).expect("live saga");
                s.undo_attempts += 1;
                if s.undo_attempts < super::saga::UNDO_ATTEMPTS {
                    s.done.extend(undo);
                    let wait = super::cleanup::undo_backoff_ms(s.undo_attempts);
                    s.retry_at = Some(Millis(now.0 + wait));
                    self.event(
                        EventKind::UndoRetry,
                        label,
                        format!("{e}; retry in {:.0} s", wait as f64 / 1e3),
                    );
                    self.push_effect(super::effects::Effect::Timer {
                        at: Millis(now.0 + wait),
                        timer: super::effects::Timer::SagaRetry(sid),
                    });
                    return;
                }
                s.undo_attempts = 0;
                let call = s.call.take();
                self.event(
                    EventKind::UndoFailed,
                    label.clone(),
                    format!("{e}; after {} attempts", super::saga::UNDO_ATTEMPTS),
                );
                if let Some(call) = call {
                    let what = format!("{} of {label}", kind.map(|k| k.as_str()).unwrap_or("-"));
                    self.leave_behind(call, what, e.to_string());
                }
            }
            (Mode::Unwinding, None, DriverResult::Ok) => {
                let s = self.saga_mut(sid).expect("live saga");
                s.undo_attempts = 0;
                s.call = None;
            }
            _ => {}
        }
        self.drive(sid);
    }

    fn after_ok(&mut self, step: Step) {
        match step {
            Step::TakeSnapshot { snapshot, .. } => self.cloud.mark_snapshot_backed_up(snapshot),
            Step::RemoveSnapshot { snapshot } => self.cloud.remove_snapshot(snapshot),
            Step::CreateVolume { volume } => self.cloud.set_volume_created(volume, true),
            Step::DeleteVolume { volume } | Step::RemoveVolume { volume } => {
                self.cloud.set_volume_created(volume, false)
            }
            _ => {}
        }
    }

    fn vm_host(&self, i: VmIdx) -> Option<HostIdx> {
        match self.cloud.vm_at(i).charge {
            Charge::Used { host } | Charge::Migrating { from: host, .. } => Some(host),
            _ => self.cloud.vm_at(i).host,
        }
    }

    fn act(&mut self, sid: SagaId, step: Step) -> Act {
        // Volume-only steps need no VM.
        match step {
            Step::RemoveVolume { volume } => {
                let v = self.cloud.volume_at(volume);
                return match (v.created, v.pool) {
                    (true, Some(p)) => Act::Wait(
                        DriverCall::DeleteVolume {
                            volume: v.id,
                            pool: self.cloud.pool_id(p),
                        },
                        None,
                    ),
                    _ => Act::Done(None),
                };
            }
            Step::CommitRemoveVolume { volume } => {
                self.cloud.remove_volume(volume);
                return Act::Done(None);
            }
            Step::TakeSnapshot { snapshot, volume, pool } => {
                let volume = self.cloud.volume_at(volume).id;
                let pool = self.cloud.pool_id(pool);
                let call = DriverCall::CreateSnapshot { volume, pool, snapshot };
                return Act::Wait(call, Some(Undo::DropSnapshot { snapshot }));
            }
            Step::RemoveSnapshot { snapshot } => {
                return Act::Wait(DriverCall::DeleteSnapshot { snapshot }, None);
            }
            _ => {}
        }
        let vm_id = self.saga_mut(sid).expect("live saga").vm;
        let Some((vm, i)) = vm_id.and_then(|vm| self.cloud.vm_index(vm).map(|i| (vm, i))) else {
            return Act::Fail("the VM no longer exists".into());
        };
        let c = &self.cloud;
        let host_id = |h: HostIdx| c.host_id(h);
        match step {
            Step::Reserve { host, ha } => match self.cloud.begin_start_mode(i, host, ha) {
                Err(e) => self.fail_act(e),
                Ok(_) => {
                    let v = self.cloud.vm_at(i);
                    let mut next = Vec::new();
                    for &vol in &v.volumes {
                        let volume = self.cloud.volume_at(vol);
                        if volume.created {
                            continue;
                        }
                        if volume.volume_type == VolumeType::Root {
                            next.push(Step::CopyTemplate {
                                pool: volume.pool.expect("placed"),
                            });
                        }
                        next.push(Step::CreateVolume { volume: vol });
                    }
                    if v.network.is_some() {
                        next.push(Step::AllocateNic);
                        next.push(Step::PlugNic);
                    }
                    next.extend([Step::Define, Step::StartDomain, Step::CommitRunning]);
                    let s = self.saga_mut(sid).expect("live saga");
                    for st in next.into_iter().rev() {
                        s.steps.push_front(st);
                    }
                    Act::Done(Some(Undo::ReleaseStart))
                }
            },
            Step::CopyTemplate { pool } => {
                let t = c.vm_at(i).template;
                let key = (t, pool);
                match self.copy_state(key) {
                    Some(None) => Act::Done(None),
                    Some(Some(_)) => Act::Park(key),
                    None => {
                        let tpl = c.inv.template(t);
                        let call = DriverCall::CopyTemplate {
                            template: tpl.id,
                            pool: c.pool_id(pool),
                            size_bytes: tpl.size_bytes,
                            // The template's origin is its secondary-storage copy.
                            source: None,
                        };
                        Act::WaitCopy(call, key)
                    }
                }
            }
            Step::CreateVolume { volume } => {
                let v = c.volume_at(volume);
                let pool = v.pool.expect("placed by Reserve");
                let template = (v.volume_type == VolumeType::Root).then(|| c.inv.template(c.vm_at(i).template).id);
                let call = DriverCall::CreateVolume {
                    volume: v.id,
                    pool: c.pool_id(pool),
                    size_bytes: v.size_bytes,
                    template,
                };
                Act::Wait(call, Some(Undo::DeleteVolume { volume, pool }))
            }
            Step::AllocateNic => {
                let v = c.vm_at(i);
                let Some(n) = v.network else { return Act::Done(None) };
                if v.nic.is_some() {
                    return Act::Done(None);
                }
                let net = c.inv.network(n).clone();
                match self.ipam.allocate(n, &net) {
                    None => Act::Fail(format!("network {} ({}) has no free address", net.name, net.cidr)),
                    Some((ip, mac)) => {
                        self.cloud.set_nic(i, Some(Nic { network: n, ip, mac }));
                        Act::Done(Some(Undo::ReleaseNic))
                    }
                }
            }
            Step::PlugNic | Step::PlugNicDest => {
                let v = c.vm_at(i);
                let Some(nic) = v.nic else { return Act::Done(None) };
                let host = if step == Step::PlugNicDest {
                    match v.charge {
                        Charge::Migrating { to, .. } => to,
                        _ => return Act::Fail("not migrating".into()),
                    }
                } else {
                    match self.vm_host(i) {
                        Some(h) => h,
                        None => return Act::Fail("no host".into()),
                    }
                };
                let net = c.inv.network(nic.network);
                let call = DriverCall::PlugNic {
                    vm,
                    host: host_id(host),
                    network: net.id,
                    mac: Mac(nic.mac),
                    ip: nic.ip,
                    vlan: net.vlan,
                };
                Act::Wait(call, Some(Undo::UnplugNic { host }))
            }
            Step::Define => {
                let v = c.vm_at(i);
                let Some(host) = self.vm_host(i) else {
                    return Act::Fail("no host".into());
                };
                let spec = DomainSpec {
                    name: v.name.clone(),
                    cpu: v.size.cpu_number,
                    mhz: v.size.cpu_speed_mhz,
                    memory_mb: v.size.memory_mb,
                    disks: v
                        .volumes
                        .iter()
                        .filter_map(|x| {
                            let vol = c.volume_at(*x);
                            vol.pool.map(|p| (vol.id, c.pool_id(p)))
                        })
                        .collect(),
                    nics: v
                        .nic
                        .iter()
                        .map(|n| (Mac(n.mac), c.inv.network(n.network).id))
                        .collect(),
                    devices: DomainDevices {
                        disks: v
                            .volumes
                            .iter()
                            .map(|x| {
                                let vol = c.volume_at(*x);
                                DiskDetail {
                                    volume: vol.id,
                                    format: DiskFormat::Qcow2,
                                    bus: DiskBus::Virtio,
                                    root: vol.volume_type == VolumeType::Root,
                                }
                            })
                            .collect(),
                        // Each NIC carries its guest network's tag: the host
                        // tags the port with it (OVS) or uses its sub-bridge.
                        nics: v
                            .nic
                            .iter()
                            .filter_map(|n| {
                                let vlan = c.inv.network(n.network).vlan?;
                                Some(NicDetail {
                                    mac: Mac(n.mac),
                                    vlan: Some(vlan),
                                    bridge: None,
                                    model: NicModel::Virtio,
                                })
                            })
                            .collect(),
                    },
                };
                Act::Wait(
                    DriverCall::DefineDomain {
                        vm,
                        host: host_id(host),
                        spec,
                    },
                    Some(Undo::Undefine { host }),
                )
            }
            Step::StartDomain => {
                let Some(host) = self.vm_host(i) else {
                    return Act::Fail("no host".into());
                };
                Act::Wait(
                    DriverCall::StartDomain {
                        vm,
                        host: host_id(host),
                    },
                    Some(Undo::StopDomain { host }),
                )
            }
            Step::CommitRunning => {
                self.cloud.finish_start(i, true);
                Act::Done(None)
            }
            Step::StopDomain { forced } => match self.vm_host(i) {
                None => Act::Done(None),
                Some(h) => Act::Wait(
                    DriverCall::StopDomain {
                        vm,
                        host: host_id(h),
                        forced,
                    },
                    None,
                ),
            },
            Step::Undefine => match self.vm_host(i) {
                None => Act::Done(None),
                Some(h) => Act::Wait(DriverCall::UndefineDomain { vm, host: host_id(h) }, None),
            },
            Step::UnplugNic | Step::UnplugNicSource => {
                // While migrating, vm_host is the source: that is where the old port is.
                let v = c.vm_at(i);
                let (Some(nic), Some(h)) = (v.nic, self.vm_host(i)) else {
                    return Act::Done(None);
                };
                let call = DriverCall::UnplugNic {
                    vm,
                    host: host_id(h),
                    network: c.inv.network(nic.network).id,
                    mac: Mac(nic.mac),
                };
                Act::Wait(call, None)
            }
            Step::CommitStopped => match self.cloud.stop_vm(vm, true) {
                Ok(()) => Act::Done(None),
                Err(e) => Act::Fail(e.to_string()),
            },
            Step::Reboot => match self.vm_host(i) {
                None => Act::Fail("the VM has no host".into()),
                Some(h) => Act::Wait(DriverCall::RebootDomain { vm, host: host_id(h) }, None),
            },
            Step::MigrateReserve { dest } => {
                let dest = dest.map(host_id);
                match self.cloud.begin_migration(vm, dest) {
                    Ok(_) => Act::Done(Some(Undo::AbortMigration)),
                    Err(e) => self.fail_act(e),
                }
            }
            Step::MigrateDomain => match c.vm_at(i).charge {
                Charge::Migrating { from, to } => Act::Wait(
                    DriverCall::MigrateDomain {
                        vm,
                        from: host_id(from),
                        to: host_id(to),
                        to_uri: None,
                    },
                    None,
                ),
                _ => Act::Fail("not migrating".into()),
            },
            Step::CommitMigrated => match self.cloud.finish_migration(vm, true) {
                Ok(()) => Act::Done(None),
                Err(e) => Act::Fail(e.to_string()),
            },
            Step::CommitDestroyed { expunge } => match self.cloud.destroy_vm(vm, false) {
                Err(e) => Act::Fail(e.to_string()),
                Ok(()) => {
                    if expunge {
                        let steps = self.expunge_steps(i);
                        let s = self.saga_mut(sid).expect("live saga");
                        for st in steps.into_iter().rev() {
                            s.steps.push_front(st);
                        }
                    } else {
                        let delay = self
                            .cloud
                            .settings
                            .i64("expunge.delay", crate::settings::Scope::Global)
                            .max(0) as u64;
                        let at = Millis(self.cloud.now().0 + delay * 1000);
                        self.push_effect(Effect::Timer {
                            at,
                            timer: Timer::Expunge(vm),
                        });
                    }
                    Act::Done(None)
                }
            },
            Step::DeleteVolume { volume } => {
                let v = c.volume_at(volume);
                match (v.created, v.pool) {
                    (true, Some(p)) => Act::Wait(
                        DriverCall::DeleteVolume {
                            volume: v.id,
                            pool: c.pool_id(p),
                        },
                        None,
                    ),
                    _ => Act::Done(None),
                }
            }
            Step::ReleaseNic => {
                if let Some(nic) = c.vm_at(i).nic {
                    self.ipam.release(nic.network, nic.ip);
                    self.cloud.set_nic(i, None);
                }
                Act::Done(None)
            }
            Step::CommitExpunged => match self.cloud.expunge_vm(vm) {
                Ok(()) => Act::Done(None),
                Err(e) => Act::Fail(e.to_string()),
            },
            Step::PlaceVolume { volume } => self.place_volume_for(i, volume),
            Step::AttachDisk { volume } => {
                let v = c.volume_at(volume);
                let (Some(h), Some(p)) = (self.vm_host(i), v.pool) else {
                    return Act::Fail("the VM has no host or the volume no pool".into());
                };
                let call = DriverCall::AttachDisk {
                    vm,
                    host: host_id(h),
                    volume: v.id,
                    pool: c.pool_id(p),
                };
                Act::Wait(call, Some(Undo::DetachDisk { volume, host: h }))
            }
            Step::CommitAttach { volume } => {
                self.cloud.commit_attach(volume, i);
                Act::Done(None)
            }
            Step::DetachDisk { volume } => match self.vm_host(i) {
                None => Act::Fail("the VM has no host".into()),
                Some(h) => Act::Wait(
                    DriverCall::DetachDisk {
                        vm,
                        host: host_id(h),
                        volume: c.volume_at(volume).id,
                    },
                    None,
                ),
            },
            Step::CommitDetach { volume } => {
                self.cloud.commit_detach(volume);
                Act::Done(None)
            }
            Step::RemoveVolume { .. }
            | Step::CommitRemoveVolume { .. }
            | Step::TakeSnapshot { .. }
            | Step::RemoveSnapshot { .. } => unreachable!("handled above"),
        }
    }

    /// Places a data volume on a pool the VM's host reaches: a storage-only
    /// placement (zero compute) pinned to that host, so pool filters and
    /// explanations are the allocator's.
    fn place_volume_for(&mut self, i: VmIdx, volume: VolumeIdx) -> Act {
        let Some(h) = self.vm_host(i) else {
            return Act::Fail("the VM has no host".into());
        };
        let vm = self.cloud.vm_at(i);
        let vol = self.cloud.volume_at(volume);
        let size = crate::vm::VmSize {
            cpu_number: 0,
            cpu_speed_mhz: 0,
            memory_mb: 0,
        };
        let mut req = crate::allocator::PlacementRequest::new(vol.name.clone(), vm.account, vm.zone, size);
        req.vm = Some(i);
        req.explicit_host = Some(h);
        req.new_disks.push(crate::allocator::DiskNeed {
            label: "DATA",
            size_bytes: vol.size_bytes,
            tags: vol.storage_tags.clone(),
            storage_type: vol.storage_type,
        });
        match self.cloud.place(&req) {
            Err(x) => Act::NoCapacity(x.to_text()),
            Ok(p) => {
                self.cloud.place_volume(volume, p.pools[0]);
                Act::Done(Some(Undo::UnplaceVolume { volume }))
            }
        }
    }
}
