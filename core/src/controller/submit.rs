//! Turning API requests into jobs: synchronous validation (a refused request
//! changes nothing), then the saga that does the work.

use super::saga::{OnFailure, Saga, Step};
use super::{Controller, Job, JobStatus, Request, stop_steps};
use crate::controller::{Command, EventKind, SagaId};
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::units::Millis;
use crate::vm::VmState;

/// What a request becomes: the job's command, its VM and volume, the saga.
struct Plan {
    command: Command,
    vm: Option<VmId>,
    volume: Option<VolumeId>,
    /// The entity a job without VM or volume works on (a snapshot).
    instance: Option<uuid::Uuid>,
    steps: Vec<Step>,
    on_failure: OnFailure,
}

fn plan(command: Command, vm: VmId, steps: Vec<Step>, on_failure: OnFailure) -> Plan {
    Plan {
        command,
        vm: Some(vm),
        volume: None,
        instance: None,
        steps,
        on_failure,
    }
}

impl Controller {
    /// Validates a request synchronously (errors change nothing) and starts its job.
    pub fn submit(&mut self, req: Request, now: Millis) -> CoreResult<super::JobId> {
        self.submit_as(req, None, now)
    }

    /// `submit` on behalf of an API user (recorded on the job).
    pub fn submit_as(
        &mut self,
        req: Request,
        user: Option<super::directory::UserId>,
        now: Millis,
    ) -> CoreResult<super::JobId> {
        self.tick(now);
        self.refuse_removed(&req)?;
        // Jobs on one VM (or volume) run one at a time (CloudStack queues them; we refuse).
        if let Some(v) = Self::target_volume(&req) {
            self.ensure_volume_idle(v)?;
        }
        if let Some(vm) = self.target_vm(&req)? {
            self.ensure_idle(vm)?;
        }
        let p = self.plan(req)?;
        let job_id = super::JobId(self.cloud.new_uuid());
        let job = self.push_job(Job {
            id: job_id,
            command: p.command,
            vm: p.vm,
            volume: p.volume,
            status: JobStatus::Pending,
            error: None,
            error_code: None,
            created: self.now,
            completed: None,
            user,
            instance: p.instance,
            result: None,
        });
        let sid = SagaId(self.next_saga);
        self.next_saga += 1;
        let mut saga = Saga::new(sid, job, p.vm, p.command, p.steps, p.on_failure);
        let name = self.saga_label(&saga);
        saga.label = name.clone();
        self.event(EventKind::JobSubmit, name, p.command.as_str());
        self.insert_saga(sid, saga);
        self.drive(sid);
        Ok(job_id)
    }

    /// Starts an HA restart of a stopped VM (placement in HA mode).
    pub(crate) fn submit_ha_restart(&mut self, vm: VmId) -> CoreResult<super::JobId> {
        let job_id = super::JobId(self.cloud.new_uuid());
        let job = self.push_job(Job {
            id: job_id,
            command: Command::HaRestartVirtualMachine,
            vm: Some(vm),
            volume: None,
            status: JobStatus::Pending,
            error: None,
            error_code: None,
            created: self.now,
            completed: None,
            user: None,
            instance: None,
            result: None,
        });
        self.internal_jobs += 1;
        let sid = SagaId(self.next_saga);
        self.next_saga += 1;
        let steps = vec![Step::Reserve { host: None, ha: true }];
        let mut saga = Saga::new(
            sid,
            job,
            Some(vm),
            Command::HaRestartVirtualMachine,
            steps,
            OnFailure::Revert,
        );
        let name = self.vm_label(vm);
        saga.label = name.clone();
        self.event(EventKind::JobSubmit, name, Command::HaRestartVirtualMachine.as_str());
        self.insert_saga(sid, saga);
        self.drive(sid);
        Ok(job_id)
    }

    /// The VM a request works on, if any (volumes map to their VM).
    fn target_vm(&self, req: &Request) -> CoreResult<Option<VmId>> {
        Ok(match req {
            Request::Deploy(_)
            | Request::CreateVolume { .. }
            | Request::DeleteVolume { .. }
            | Request::CreateSnapshot { .. }
            | Request::DeleteSnapshot { .. } => None,
            Request::Start { vm, .. }
            | Request::Stop { vm, .. }
            | Request::Reboot { vm }
            | Request::Destroy { vm, .. }
            | Request::Recover { vm }
            | Request::Expunge { vm }
            | Request::Migrate { vm, .. }
            | Request::ChangeOffering { vm, .. }
            | Request::AttachVolume { vm, .. } => Some(*vm),
            Request::DetachVolume { volume } => {
                let (_, i) = self.cloud.check_detach(*volume)?;
                Some(self.cloud.vm_at(i).id)
            }
        })
    }

    fn ensure_idle(&self, vm: VmId) -> CoreResult<()> {
        match self.busy.get(&vm).and_then(|sid| self.sagas.get(sid)) {
            None => Ok(()),
            Some(s) => Err(CoreError::InvalidState {
                entity: "VM",
                name: self.vm_label(vm),
                state: format!("busy with {}", s.kind),
                op: "run another job until it finishes",
            }),
        }
    }

    /// The volume a request works on, if any.
    fn target_volume(req: &Request) -> Option<VolumeId> {
        match req {
            Request::AttachVolume { volume, .. }
            | Request::DetachVolume { volume }
            | Request::DeleteVolume { volume }
            | Request::CreateSnapshot { volume, .. } => Some(*volume),
            _ => None,
        }
    }

    /// Jobs on one volume run one at a time, like jobs on one VM.
    fn ensure_volume_idle(&self, v: VolumeId) -> CoreResult<()> {
        match self.busy_volumes.get(&v).and_then(|sid| self.sagas.get(sid)) {
            None => Ok(()),
            Some(s) => Err(CoreError::InvalidState {
                entity: "volume",
                name: self
                    .cloud
                    .volume(v)
                    .map(|x| x.name.clone())
                    .unwrap_or_else(|| v.to_string()),
                state: format!("busy with {}", s.kind),
                op: "run another job until it finishes",
            }),
        }
    }

    fn plan(&mut self, req: Request) -> CoreResult<Plan> {
        Ok(match req {
            Request::Deploy(mut spec) => {
                let start = spec.start;
                spec.start = false;
                // `hostid`: validated here so a bad one refuses the deploy outright.
                let host = spec.host.map(|h| self.cloud.host_idx(h)).transpose()?;
                let id = self.cloud.deploy_vm(spec)?;
                let steps = if start {
                    vec![Step::Reserve { host, ha: false }]
                } else {
                    vec![]
                };
                plan(Command::DeployVirtualMachine, id, steps, OnFailure::MarkError)
            }
            Request::Start { vm, host } => {
                let i = self.cloud.vm_idx(vm)?;
                if self.cloud.vm_at(i).state != VmState::Stopped {
                    return Err(self.cloud.bad_state(i, "start"));
                }
                let host = host.map(|h| self.cloud.host_idx(h)).transpose()?;
                plan(
                    Command::StartVirtualMachine,
                    vm,
                    vec![Step::Reserve { host, ha: false }],
                    OnFailure::Revert,
                )
            }
            Request::Stop { vm, forced } => {
                let i = self.cloud.vm_idx(vm)?;
                let st = self.cloud.vm_at(i).state;
                if !(st == VmState::Running || forced && matches!(st, VmState::Error | VmState::Unknown)) {
                    return Err(self.cloud.bad_state(i, "stop"));
                }
                self.cloud.mark_stopping(i);
                plan(Command::StopVirtualMachine, vm, stop_steps(forced), OnFailure::Revert)
            }
            Request::Reboot { vm } => {
                let i = self.cloud.vm_idx(vm)?;
                if self.cloud.vm_at(i).state != VmState::Running {
                    return Err(self.cloud.bad_state(i, "reboot"));
                }
                plan(Command::RebootVirtualMachine, vm, vec![Step::Reboot], OnFailure::Revert)
            }
            Request::Destroy { vm, expunge } => {
                let i = self.cloud.vm_idx(vm)?;
                let mut steps = match self.cloud.vm_at(i).state {
                    VmState::Running => {
                        // Not forced: if the domain cannot be stopped, the destroy
                        // fails rather than orphan a running domain.
                        self.cloud.mark_stopping(i);
                        stop_steps(false)
                    }
                    VmState::Stopped | VmState::Error | VmState::Shutdown => vec![],
                    _ => return Err(self.cloud.bad_state(i, "destroy")),
                };
                steps.push(Step::CommitDestroyed { expunge });
                plan(Command::DestroyVirtualMachine, vm, steps, OnFailure::Revert)
            }
            Request::Recover { vm } => {
                self.cloud.recover_vm(vm)?;
                plan(Command::RecoverVirtualMachine, vm, vec![], OnFailure::Revert)
            }
            Request::Expunge { vm } => {
                let i = self.cloud.vm_idx(vm)?;
                if self.cloud.vm_at(i).state != VmState::Destroyed {
                    return Err(self.cloud.bad_state(i, "expunge"));
                }
                plan(
                    Command::ExpungeVirtualMachine,
                    vm,
                    self.expunge_steps(i),
                    OnFailure::RetryExpunge,
                )
            }
            Request::Migrate { vm, host } => {
                let i = self.cloud.vm_idx(vm)?;
                if self.cloud.vm_at(i).state != VmState::Running {
                    return Err(self.cloud.bad_state(i, "migrate"));
                }
                let dest = host.map(|h| self.cloud.host_idx(h)).transpose()?;
                let steps = vec![
                    Step::MigrateReserve { dest },
                    Step::PlugNicDest,
                    Step::MigrateDomain,
                    Step::UnplugNicSource,
                    Step::CommitMigrated,
                ];
                plan(Command::MigrateVirtualMachine, vm, steps, OnFailure::Revert)
            }
            Request::ChangeOffering {
                vm,
                offering,
                cpu,
                memory_mb,
            } => {
                self.cloud.change_offering(vm, offering, cpu, memory_mb)?;
                plan(Command::ChangeServiceForVirtualMachine, vm, vec![], OnFailure::Revert)
            }
            Request::CreateVolume {
                name,
                account,
                zone,
                disk_offering,
                size_gib,
            } => {
                let id = self
                    .cloud
                    .create_volume(&name, account, zone, disk_offering, size_gib)?;
                Plan {
                    command: Command::CreateVolume,
                    vm: None,
                    volume: Some(id),
                    instance: None,
                    steps: vec![],
                    on_failure: OnFailure::Revert,
                }
            }
            Request::AttachVolume { volume, vm } => {
                let (v, i) = self.cloud.check_attach(volume, vm)?;
                let steps = if self.cloud.vm_at(i).state == VmState::Running {
                    let mut steps = Vec::new();
                    if self.cloud.volume_at(v).pool.is_none() {
                        steps.push(Step::PlaceVolume { volume: v });
                    }
                    if !self.cloud.volume_at(v).created {
                        steps.push(Step::CreateVolume { volume: v });
                    }
                    steps.extend([Step::AttachDisk { volume: v }, Step::CommitAttach { volume: v }]);
                    steps
                } else {
                    vec![Step::CommitAttach { volume: v }]
                };
                Plan {
                    command: Command::AttachVolume,
                    vm: Some(vm),
                    volume: Some(volume),
                    instance: None,
                    steps,
                    on_failure: OnFailure::Revert,
                }
            }
            Request::DetachVolume { volume } => {
                let (v, i) = self.cloud.check_detach(volume)?;
                let vm = self.cloud.vm_at(i).id;
                let steps = if self.cloud.vm_at(i).state == VmState::Running {
                    vec![Step::DetachDisk { volume: v }, Step::CommitDetach { volume: v }]
                } else {
                    vec![Step::CommitDetach { volume: v }]
                };
                Plan {
                    command: Command::DetachVolume,
                    vm: Some(vm),
                    volume: Some(volume),
                    instance: None,
                    steps,
                    on_failure: OnFailure::Revert,
                }
            }
            Request::CreateSnapshot { volume, name } => {
                let (snapshot, v, pool) = self.cloud.allocate_snapshot(volume, &name)?;
                Plan {
                    command: Command::CreateSnapshot,
                    vm: None,
                    volume: Some(volume),
                    instance: Some(snapshot.0),
                    steps: vec![Step::TakeSnapshot {
                        snapshot,
                        volume: v,
                        pool,
                    }],
                    on_failure: OnFailure::Revert,
                }
            }
            Request::DeleteSnapshot { snapshot } => {
                let s = self.cloud.snapshot(snapshot).ok_or_else(|| CoreError::NotFound {
                    kind: "snapshot",
                    id: snapshot.to_string(),
                })?;
                Plan {
                    command: Command::DeleteSnapshot,
                    vm: None,
                    volume: Some(s.volume),
                    instance: Some(snapshot.0),
                    steps: vec![Step::RemoveSnapshot { snapshot }],
                    on_failure: OnFailure::Revert,
                }
            }
            Request::DeleteVolume { volume } => {
                let v = self.cloud.check_delete_volume(volume)?;
                if self
                    .sagas
                    .values()
                    .any(|s| s.steps.iter().any(|st| *st == Step::RemoveVolume { volume: v }))
                {
                    return Err(CoreError::invalid("id", "the volume is already being deleted"));
                }
                let steps = vec![Step::RemoveVolume { volume: v }, Step::CommitRemoveVolume { volume: v }];
                Plan {
                    command: Command::DeleteVolume,
                    vm: None,
                    volume: Some(volume),
                    instance: None,
                    steps,
                    on_failure: OnFailure::Revert,
                }
            }
        })
    }
}

impl Controller {
    /// Deleted offerings stay in the inventory (dense indices) but take no new work.
    fn refuse_removed(&self, req: &Request) -> CoreResult<()> {
        let ids: Vec<uuid::Uuid> = match req {
            Request::Deploy(s) => [s.offering.map(|o| o.0), s.disk_offering.map(|o| o.0)]
                .into_iter()
                .flatten()
                .collect(),
            Request::ChangeOffering { offering, .. } => vec![offering.0],
            Request::CreateVolume { disk_offering, .. } => vec![disk_offering.0],
            _ => Vec::new(),
        };
        match ids.into_iter().find(|id| self.directory.is_removed(*id)) {
            Some(id) => Err(CoreError::NotFound {
                kind: "offering",
                id: id.to_string(),
            }),
            None => Ok(()),
        }
    }
}
