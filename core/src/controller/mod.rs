//! The controller: a pure state machine. It consumes inputs (API requests,
//! driver results, timers) and emits effects (driver calls, timers) plus an
//! event log. It never performs I/O; a runtime (the simulator, or the real
//! server) executes the effects and feeds the results back.

pub mod admin;
mod admin_audit;
mod cleanup;
mod describe;
pub mod directory;
pub mod effects;
mod external_jobs;
pub mod input;
pub mod journal;
pub mod kinds;
mod lease_obs;
mod steps_undo;
pub use cleanup::Leftover;
pub use hosts::{Evidence, FenceProof, HaOutcome, HostHealth, HostReport, Sign};
mod ha;
mod hosts;
pub use hosts::canary;
pub mod ipam;
pub mod maintenance;
mod reconcile;
mod remove;
mod restart;
pub mod saga;
mod steps;
mod submit;

use crate::Cloud;
use crate::cloud::DeploySpec;
use crate::error::CoreError;
use crate::ids::*;
use crate::inventory::TemplateZoneState;
use crate::units::Millis;
use crate::vm::VmState;
use describe::describe_call;
use effects::{DriverCall, DriverResult, Effect, OpId, Timer};
use ipam::Ipam;
use saga::{Mode, OnFailure, Saga, Step};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use input::{Input, Output, Reply};
pub use kinds::{Command, EventKind};

/// Async job identifier (a UUID, as CloudStack's `jobid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub uuid::Uuid);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Identifies a saga (one per job that works through steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SagaId(pub u64);

/// An API request the controller runs as an async job.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // built once per API call; boxing buys nothing
pub enum Request {
    Deploy(DeploySpec),
    Start {
        vm: VmId,
        host: Option<HostId>,
    },
    Stop {
        vm: VmId,
        forced: bool,
    },
    Reboot {
        vm: VmId,
    },
    Destroy {
        vm: VmId,
        expunge: bool,
    },
    Recover {
        vm: VmId,
    },
    Expunge {
        vm: VmId,
    },
    Migrate {
        vm: VmId,
        host: Option<HostId>,
    },
    /// changeServiceForVirtualMachine (VM stopped).
    ChangeOffering {
        vm: VmId,
        offering: ServiceOfferingId,
        cpu: Option<u32>,
        memory_mb: Option<u64>,
    },
    CreateVolume {
        name: String,
        account: AccountId,
        zone: ZoneId,
        disk_offering: DiskOfferingId,
        size_gib: Option<u64>,
    },
    AttachVolume {
        volume: VolumeId,
        vm: VmId,
    },
    DetachVolume {
        volume: VolumeId,
    },
    DeleteVolume {
        volume: VolumeId,
    },
    CreateSnapshot {
        volume: VolumeId,
        name: String,
    },
    DeleteSnapshot {
        snapshot: SnapshotId,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    Pending,
    Succeeded,
    Failed,
}

/// An async job record (queryAsyncJobResult).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub command: Command,
    pub vm: Option<VmId>,
    pub volume: Option<VolumeId>,
    pub status: JobStatus,
    pub error: Option<String>,
    /// CloudStack error code of a failure (533 capacity, 530 otherwise).
    pub error_code: Option<u16>,
    pub created: Millis,
    pub completed: Option<Millis>,
    /// The API user who submitted it (None: the operator's tools or the controller).
    pub user: Option<directory::UserId>,
    /// The entity of a job that has no VM or volume (host, public IP, snapshot).
    pub instance: Option<uuid::Uuid>,
    /// The result of a job that works on no entity (a what-if's report, as
    /// JSON text): what queryAsyncJobResult returns as `jobresult`.
    #[serde(default)]
    pub result: Option<String>,
}

impl Job {
    /// Whether the job runs outside the controller's sagas (a what-if).
    pub fn saga_free(&self) -> bool {
        self.command == Command::RunWhatIf
    }
}

/// One line of the event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub t: u64,
    pub kind: EventKind,
    pub subject: String,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Copy_ {
    InProgress(OpId),
    Ready,
}

/// Driver timeouts, by call: a call with no answer by then has failed.
pub fn op_timeout_ms(call: &DriverCall) -> u64 {
    match call {
        DriverCall::CopyTemplate { .. } => 3_600_000,
        DriverCall::MigrateDomain { .. } => 600_000,
        _ => 120_000,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Controller {
    pub(crate) cloud: Cloud,
    pub(crate) ipam: Ipam,
    jobs: Vec<Job>,
    sagas: BTreeMap<SagaId, Saga>,
    ops: BTreeMap<OpId, SagaId>,
    #[serde(with = "crate::serde_util::pairs")]
    copies: BTreeMap<(TemplateIdx, PoolIdx), Copy_>,
    copy_ops: BTreeMap<OpId, (TemplateIdx, PoolIdx)>,
    /// Host investigations and fencing calls in flight.
    probe_ops: BTreeMap<OpId, (HostIdx, hosts::Probe)>,
    /// Per host: pings, evidence, investigation, fencing.
    pub(crate) health: Vec<hosts::HostHealth>,
    /// HA restarts waiting or in progress, by VM.
    pub(crate) ha: BTreeMap<VmId, hosts::HaWork>,
    /// HA outcomes, for reports: (VM, host lost, lost at, recovered at).
    pub(crate) ha_log: Vec<hosts::HaOutcome>,
    /// Every time a host was declared Down.
    pub(crate) host_downs: Vec<(HostId, Millis)>,
    pub(crate) evacuations: maintenance::Evacuations,
    pub(crate) tick_epoch: u64,
    /// VMs with a saga in flight (one at a time per VM).
    #[serde(with = "crate::serde_util::sorted_map")]
    pub(crate) busy: rustc_hash::FxHashMap<VmId, SagaId>,
    #[serde(with = "crate::serde_util::sorted_map")]
    job_index: rustc_hash::FxHashMap<JobId, usize>,
    /// Volumes with a saga in flight (jobs on one volume run one at a time).
    #[serde(with = "crate::serde_util::sorted_map")]
    pub(crate) busy_volumes: rustc_hash::FxHashMap<VolumeId, SagaId>,
    /// Undo calls that kept failing, retried by the reconciler.
    leftovers: BTreeMap<u64, cleanup::Leftover>,
    next_leftover: u64,
    cleanup_ops: BTreeMap<OpId, u64>,
    pub(crate) rolling: maintenance::Rollings,
    #[serde(with = "crate::serde_util::pairs")]
    parked: BTreeMap<(TemplateIdx, PoolIdx), Vec<SagaId>>,
    next_op: u64,
    next_saga: u64,
    now: Millis,
    /// Effects and log lines not yet taken by the runtime (empty between inputs).
    #[serde(skip)]
    out: Vec<Effect>,
    #[serde(skip)]
    log: Vec<Event>,
    /// Disable to skip event logging (benchmarks). Not part of the state.
    #[serde(skip, default = "logging_default")]
    pub(crate) logging: bool,
    internal_jobs: u64,
    /// Users, keys, public IPs and API metadata (see `directory`).
    pub(crate) directory: directory::Directory,
}

fn logging_default() -> bool {
    true
}

impl Controller {
    pub fn new(cloud: Cloud) -> Controller {
        // Addresses the inventory's VMs already hold stay theirs.
        let mut ipam = Ipam::default();
        for (_, v) in cloud.vms() {
            if let Some(nic) = &v.nic {
                ipam.hold(nic.network, nic.ip, nic.mac);
            }
        }
        Controller {
            cloud,
            ipam,
            jobs: Vec::new(),
            sagas: BTreeMap::new(),
            ops: BTreeMap::new(),
            copies: BTreeMap::new(),
            copy_ops: BTreeMap::new(),
            probe_ops: BTreeMap::new(),
            health: Vec::new(),
            ha: BTreeMap::new(),
            ha_log: Vec::new(),
            host_downs: Vec::new(),
            evacuations: Default::default(),
            tick_epoch: 0,
            busy: Default::default(),
            job_index: Default::default(),
            busy_volumes: Default::default(),
            leftovers: BTreeMap::new(),
            next_leftover: 0,
            cleanup_ops: BTreeMap::new(),
            rolling: Default::default(),
            parked: BTreeMap::new(),
            next_op: 0,
            next_saga: 0,
            now: Millis(0),
            out: Vec::new(),
            log: Vec::new(),
            logging: true,
            internal_jobs: 0,
            directory: Default::default(),
        }
    }

    /// Whether a saga is working on this VM.
    pub fn vm_busy(&self, vm: VmId) -> bool {
        self.busy.contains_key(&vm)
    }

    pub(crate) fn push_job(&mut self, job: Job) -> usize {
        self.job_index.insert(job.id, self.jobs.len());
        self.jobs.push(job);
        self.jobs.len() - 1
    }

    /// Whether a saga is working on this volume.
    pub fn volume_busy(&self, v: VolumeId) -> bool {
        self.busy_volumes.contains_key(&v)
    }

    pub(crate) fn insert_saga(&mut self, sid: SagaId, saga: Saga) {
        if let Some(vm) = saga.vm {
            self.busy.insert(vm, sid);
        }
        if let Some(v) = self.jobs[saga.job].volume {
            self.busy_volumes.insert(v, sid);
        }
        self.sagas.insert(sid, saga);
    }

    /// The state, read-only: every change goes through `handle`/`apply`.
    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }
    pub fn ipam(&self) -> &Ipam {
        &self.ipam
    }
    /// HA outcomes, for reports: (VM, host lost, lost at, recovered at).
    pub fn ha_log(&self) -> &[hosts::HaOutcome] {
        &self.ha_log
    }
    /// Every time a host was declared Down.
    pub fn host_downs(&self) -> &[(HostId, Millis)] {
        &self.host_downs
    }
    /// Event logging on or off (benchmarks, replay); not part of the state.
    pub fn set_logging(&mut self, on: bool) {
        self.logging = on;
    }

    /// The controller's clock: the latest input time it has seen (epoch ms).
    pub fn now(&self) -> Millis {
        self.now
    }

    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }
    pub fn job(&self, id: JobId) -> Option<&Job> {
        self.job_index.get(&id).map(|i| &self.jobs[*i])
    }
    pub(crate) fn job_mut(&mut self, id: JobId) -> Option<&mut Job> {
        self.job_index.get(&id).map(|i| &mut self.jobs[*i])
    }
    /// Jobs the controller started itself (expunge after `expunge.delay`).
    pub fn internal_jobs(&self) -> u64 {
        self.internal_jobs
    }
    pub fn in_flight(&self) -> usize {
        self.sagas.len()
    }
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.out)
    }
    pub fn take_log(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.log)
    }
    pub fn template_ready_on(&self, t: TemplateIdx, p: PoolIdx) -> bool {
        self.copies.get(&(t, p)) == Some(&Copy_::Ready)
    }

    pub(crate) fn event(&mut self, kind: EventKind, subject: impl Into<String>, detail: impl Into<String>) {
        if self.logging {
            self.log.push(Event {
                t: self.now.0,
                kind,
                subject: subject.into(),
                detail: detail.into(),
            });
        }
    }

    pub(crate) fn tick(&mut self, now: Millis) {
        if now > self.now {
            self.now = now;
        }
        self.cloud.advance_to(self.now);
    }

    pub(crate) fn saga_label(&self, s: &Saga) -> String {
        match (s.vm, self.jobs[s.job].volume) {
            (Some(vm), _) => self.vm_label(vm),
            (None, Some(v)) => self
                .cloud
                .volume(v)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| v.to_string()),
            (None, None) => "-".into(),
        }
    }

    pub fn vm_label(&self, vm: VmId) -> String {
        self.cloud
            .vm(vm)
            .map(|v| v.name.clone())
            .unwrap_or_else(|| vm.to_string())
    }

    /// Steps that delete a destroyed VM's volumes and records.
    pub(crate) fn expunge_steps(&self, i: VmIdx) -> Vec<Step> {
        let mut steps: Vec<Step> = self
            .cloud
            .vm_at(i)
            .volumes
            .iter()
            .filter(|v| self.cloud.volume_at(**v).created)
            .map(|v| Step::DeleteVolume { volume: *v })
            .collect();
        steps.push(Step::ReleaseNic);
        steps.push(Step::CommitExpunged);
        steps
    }

    /// Issues a driver call on behalf of a saga, with its timeout.
    pub(crate) fn call(&mut self, saga: SagaId, call: DriverCall) -> OpId {
        let op = OpId(self.next_op);
        self.next_op += 1;
        self.ops.insert(op, saga);
        let at = Millis(self.now.0 + op_timeout_ms(&call));
        self.event(
            EventKind::Call,
            call.name(),
            format!("op {} {}", op.0, describe_call(&self.cloud, &call)),
        );
        self.out.push(Effect::Call { op, call });
        self.out.push(Effect::Timer {
            at,
            timer: Timer::OpTimeout(op),
        });
        op
    }

    /// Issues a call that no saga waits for (probes), with its timeout.
    pub(crate) fn call_untracked(&mut self, call: DriverCall, timeout_ms: u64) -> OpId {
        let op = OpId(self.next_op);
        self.next_op += 1;
        let at = Millis(self.now.0 + timeout_ms);
        self.event(
            EventKind::Call,
            call.name(),
            format!("op {} {}", op.0, describe_call(&self.cloud, &call)),
        );
        self.out.push(Effect::Call { op, call });
        self.out.push(Effect::Timer {
            at,
            timer: Timer::OpTimeout(op),
        });
        op
    }

    /// A driver answered.
    pub fn on_result(&mut self, op: OpId, result: DriverResult, now: Millis) {
        self.tick(now);
        if self.probe_ops.contains_key(&op) {
            self.probe_result(op, result);
            return;
        }
        if self.cleanup_result(op, &result) {
            return;
        }
        let Some(sid) = self.ops.remove(&op) else {
            return; // late answer to a call that timed out or predates a restart
        };
        if let DriverResult::Failed(e) = &result {
            self.event(EventKind::Result, format!("op {}", op.0), format!("failed: {e}"));
        }
        // Template copies are shared: settle them for every waiting saga.
        if let Some(key) = self.copy_ops.remove(&op) {
            if result == DriverResult::Ok {
                self.copies.insert(key, Copy_::Ready);
            } else {
                self.copies.remove(&key);
            }
            for waiter in self.parked.remove(&key).unwrap_or_default() {
                if let Some(s) = self.sagas.get_mut(&waiter) {
                    s.parked = false;
                    if let DriverResult::Failed(e) = &result {
                        s.mode = Mode::Unwinding;
                        s.failure = Some(format!("template copy failed: {e}"));
                    }
                }
                self.drive(waiter);
            }
        }
        self.step_result(sid, op, result);
    }

    pub fn on_timer(&mut self, timer: Timer, now: Millis) {
        self.tick(now);
        match timer {
            Timer::OpTimeout(op) => {
                if self.ops.contains_key(&op) || self.probe_ops.contains_key(&op) || self.cleanup_ops.contains_key(&op)
                {
                    self.event(EventKind::Timeout, format!("op {}", op.0), "no answer");
                    // No answer: the call may or may not have happened.
                    let e = effects::DriverError::in_doubt("timed out waiting for the host");
                    self.on_result(op, DriverResult::Failed(e), now);
                }
            }
            Timer::Tick(epoch) if epoch == self.tick_epoch => {
                self.on_tick();
                // Capacity notifications (listAlerts) follow the book at the reconciler's pace.
                self.cloud.check_capacity_alerts();
            }
            Timer::Tick(_) => {} // a chain from before a restart
            Timer::SagaRetry(sid) => {
                if let Some(s) = self.sagas.get_mut(&sid)
                    && s.retry_at.take().is_some()
                {
                    self.drive(sid);
                }
            }
            Timer::Expunge(vm) => {
                let Some(i) = self.cloud.vm_index(vm) else { return };
                if self.cloud.vm_at(i).state == VmState::Destroyed
                    && !self.vm_busy(vm)
                    && self.submit(Request::Expunge { vm }, now).is_ok()
                {
                    self.internal_jobs += 1;
                }
            }
        }
    }

    pub(crate) fn finish(&mut self, sid: SagaId) {
        let Some(s) = self.sagas.remove(&sid) else { return };
        if let Some(vm) = s.vm {
            self.busy.remove(&vm);
        }
        if let Some(v) = self.jobs[s.job].volume {
            self.busy_volumes.remove(&v);
        }
        let vm_name = if s.label.is_empty() {
            self.saga_label(&s)
        } else {
            s.label.clone()
        };
        let job = &mut self.jobs[s.job];
        job.completed = Some(self.now);
        match s.failure {
            None => {
                job.status = JobStatus::Succeeded;
                self.event(EventKind::JobDone, vm_name, s.kind.as_str());
                if let (Some(vm), Command::HaRestartVirtualMachine) = (s.vm, s.kind) {
                    self.ha_succeeded(vm);
                }
            }
            Some(err) => {
                job.status = JobStatus::Failed;
                job.error_code = Some(if s.capacity_refusal { 533 } else { 530 });
                let headline = err.lines().next().unwrap_or("").to_string();
                job.error = Some(err);
                self.event(EventKind::JobFail, vm_name, format!("{}: {headline}", s.kind));
                if let (true, Some(i)) = (s.in_doubt, s.vm.and_then(|vm| self.cloud.vm_index(vm))) {
                    self.cloud.mark_unknown(i);
                    let name = self.cloud.vm_at(i).name.clone();
                    self.event(
                        EventKind::VmUnknown,
                        name,
                        "held with its resources until a host reports it",
                    );
                    if let Some(vm) = s.vm {
                        self.ha.remove(&vm);
                    }
                    return;
                }
                if let Some(i) = s.vm.and_then(|vm| self.cloud.vm_index(vm)) {
                    self.after_failure(i, s.on_failure);
                }
                let error = self.jobs[s.job].error.clone().unwrap_or_default();
                match (s.vm, s.kind) {
                    (Some(vm), Command::HaRestartVirtualMachine) => self.ha_failed(vm, &error),
                    (Some(vm), Command::MigrateVirtualMachine) => self.evacuation_failed(vm, &error),
                    _ => {}
                }
            }
        }
    }

    fn after_failure(&mut self, i: VmIdx, mode: OnFailure) {
        match mode {
            OnFailure::MarkError => {
                if self.cloud.vm_at(i).state != VmState::Destroyed {
                    self.cloud.mark_error(i);
                }
            }
            OnFailure::Revert | OnFailure::RetryExpunge => {
                // A stop that never reached the host leaves the VM running.
                if self.cloud.vm_at(i).state == VmState::Stopping {
                    self.cloud.revert_to_running(i);
                }
            }
        }
        // An expunge that failed part-way is retried after `expunge.interval`.
        if self.cloud.vm_at(i).state == VmState::Destroyed {
            let every = self
                .cloud
                .settings
                .i64("expunge.interval", crate::settings::Scope::Global)
                .max(1) as u64;
            let vm = self.cloud.vm_at(i).id;
            self.out.push(Effect::Timer {
                at: Millis(self.now.0 + every * 1000),
                timer: Timer::Expunge(vm),
            });
        }
    }

    /// Jobs that failed, with their full error text (capacity refusals explain themselves).
    pub fn failed_jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.iter().filter(|j| j.status == JobStatus::Failed)
    }

    /// Whether the template is ready in the VM's zone (deploy-time check).
    pub fn template_ready(&self, t: TemplateIdx, z: ZoneIdx) -> bool {
        self.cloud.inv.template(t).state_in(z) == Some(TemplateZoneState::Ready)
    }

    pub(crate) fn push_effect(&mut self, e: Effect) {
        self.out.push(e);
    }
    pub(crate) fn park(&mut self, key: (TemplateIdx, PoolIdx), sid: SagaId) {
        self.parked.entry(key).or_default().push(sid);
    }
    pub(crate) fn copy_state(&self, key: (TemplateIdx, PoolIdx)) -> Option<Option<OpId>> {
        self.copies.get(&key).map(|c| match c {
            Copy_::Ready => None,
            Copy_::InProgress(op) => Some(*op),
        })
    }
    pub(crate) fn set_copy_in_progress(&mut self, key: (TemplateIdx, PoolIdx), op: OpId) {
        self.copies.insert(key, Copy_::InProgress(op));
        self.copy_ops.insert(op, key);
    }
    pub(crate) fn saga_mut(&mut self, sid: SagaId) -> Option<&mut Saga> {
        self.sagas.get_mut(&sid)
    }
    fn fail_act(&self, e: CoreError) -> steps::Act {
        match e {
            CoreError::InsufficientCapacity(x) => steps::Act::NoCapacity(x.to_text()),
            other => steps::Act::Fail(other.to_string()),
        }
    }
}

pub(crate) fn stop_steps(forced: bool) -> Vec<Step> {
    // Domains are transient (as CloudStack's KVM agent makes them): stopping one
    // also removes its definition.
    vec![Step::StopDomain { forced }, Step::UnplugNic, Step::CommitStopped]
}
