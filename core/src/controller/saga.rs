//! Sagas: multi-step operations as data. Each step either completes at once
//! (ledger work) or waits for one driver call; each completed step leaves an undo,
//! run in reverse when a later step fails.

use super::effects::{DriverCall, OpId};
use super::{Command, SagaId};
use crate::ids::*;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Plan and charge capacity, place new volumes (ledger).
    Reserve {
        host: Option<HostIdx>,
        /// An HA restart: the allocator honours `ha.tag` hosts.
        ha: bool,
    },
    CopyTemplate {
        pool: PoolIdx,
    },
    CreateVolume {
        volume: VolumeIdx,
    },
    AllocateNic,
    PlugNic,
    Define,
    StartDomain,
    CommitRunning,
    StopDomain {
        forced: bool,
    },
    Undefine,
    UnplugNic,
    CommitStopped,
    Reboot,
    MigrateReserve {
        dest: Option<HostIdx>,
    },
    PlugNicDest,
    MigrateDomain,
    UnplugNicSource,
    CommitMigrated,
    CommitDestroyed {
        expunge: bool,
    },
    DeleteVolume {
        volume: VolumeIdx,
    },
    ReleaseNic,
    CommitExpunged,
    /// Storage-only placement of a data volume for the VM's host (ledger).
    PlaceVolume {
        volume: VolumeIdx,
    },
    AttachDisk {
        volume: VolumeIdx,
    },
    CommitAttach {
        volume: VolumeIdx,
    },
    DetachDisk {
        volume: VolumeIdx,
    },
    CommitDetach {
        volume: VolumeIdx,
    },
    /// Deletes a detached volume from storage (if created).
    RemoveVolume {
        volume: VolumeIdx,
    },
    CommitRemoveVolume {
        volume: VolumeIdx,
    },
    /// Copies the volume to secondary storage; the record is dropped on failure.
    TakeSnapshot {
        snapshot: SnapshotId,
        volume: VolumeIdx,
        pool: PoolIdx,
    },
    RemoveSnapshot {
        snapshot: SnapshotId,
    },
}

impl Step {
    /// The step's name, for logs and errors (without internal indices).
    pub fn name(self) -> &'static str {
        match self {
            Step::Reserve { .. } => "Reserve",
            Step::CopyTemplate { .. } => "CopyTemplate",
            Step::CreateVolume { .. } => "CreateVolume",
            Step::AllocateNic => "AllocateNic",
            Step::PlugNic => "PlugNic",
            Step::Define => "Define",
            Step::StartDomain => "StartDomain",
            Step::CommitRunning => "CommitRunning",
            Step::StopDomain { .. } => "StopDomain",
            Step::Undefine => "Undefine",
            Step::UnplugNic => "UnplugNic",
            Step::CommitStopped => "CommitStopped",
            Step::Reboot => "Reboot",
            Step::MigrateReserve { .. } => "MigrateReserve",
            Step::PlugNicDest => "PlugNicDest",
            Step::MigrateDomain => "MigrateDomain",
            Step::UnplugNicSource => "UnplugNicSource",
            Step::CommitMigrated => "CommitMigrated",
            Step::CommitDestroyed { .. } => "CommitDestroyed",
            Step::DeleteVolume { .. } => "DeleteVolume",
            Step::ReleaseNic => "ReleaseNic",
            Step::CommitExpunged => "CommitExpunged",
            Step::PlaceVolume { .. } => "PlaceVolume",
            Step::AttachDisk { .. } => "AttachDisk",
            Step::CommitAttach { .. } => "CommitAttach",
            Step::DetachDisk { .. } => "DetachDisk",
            Step::CommitDetach { .. } => "CommitDetach",
            Step::RemoveVolume { .. } => "RemoveVolume",
            Step::CommitRemoveVolume { .. } => "CommitRemoveVolume",
            Step::TakeSnapshot { .. } => "TakeSnapshot",
            Step::RemoveSnapshot { .. } => "RemoveSnapshot",
        }
    }

    /// Steps whose effect (a running domain) may have happened without an answer.
    pub fn starts_a_domain(self) -> bool {
        matches!(self, Step::StartDomain | Step::MigrateDomain)
    }

    /// Steps that take things down and may simply be done again: a restarted
    /// management server re-issues one that was in flight (the saga rolls
    /// forward) rather than unwinding a stop or an expunge half done.
    pub fn redone_after_restart(self) -> bool {
        matches!(
            self,
            Step::StopDomain { .. } | Step::Undefine | Step::UnplugNic | Step::DeleteVolume { .. }
        )
    }

    /// Failures of these steps are logged and the saga carries on: there is no
    /// way back once a domain was stopped or a migration completed.
    pub fn tolerant(self) -> bool {
        matches!(
            self,
            Step::StopDomain { forced: true } | Step::Undefine | Step::UnplugNic | Step::UnplugNicSource
        )
    }
}

/// How to take a completed step back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Undo {
    ReleaseStart,
    DeleteVolume { volume: VolumeIdx, pool: PoolIdx },
    ReleaseNic,
    UnplugNic { host: HostIdx },
    Undefine { host: HostIdx },
    StopDomain { host: HostIdx },
    AbortMigration,
    UnplaceVolume { volume: VolumeIdx },
    DetachDisk { volume: VolumeIdx, host: HostIdx },
    DropSnapshot { snapshot: SnapshotId },
}

impl Undo {
    pub fn name(self) -> &'static str {
        match self {
            Undo::ReleaseStart => "ReleaseStart",
            Undo::DeleteVolume { .. } => "DeleteVolume",
            Undo::ReleaseNic => "ReleaseNic",
            Undo::UnplugNic { .. } => "UnplugNic",
            Undo::Undefine { .. } => "Undefine",
            Undo::StopDomain { .. } => "StopDomain",
            Undo::AbortMigration => "AbortMigration",
            Undo::UnplaceVolume { .. } => "UnplaceVolume",
            Undo::DetachDisk { .. } => "DetachDisk",
            Undo::DropSnapshot { .. } => "DropSnapshot",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    Forward,
    Unwinding,
}

/// What the VM becomes when the saga fails and has unwound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnFailure {
    /// Deploy: the VM is left in Error, holding nothing.
    MarkError,
    /// Start: back to Stopped. Stop/reboot/migrate: as the undos leave it.
    Revert,
    /// Expunge: stay Destroyed and retry after `expunge.interval`.
    RetryExpunge,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saga {
    pub id: SagaId,
    pub job: usize,
    /// The VM the saga works on (volume-only sagas have none).
    pub vm: Option<VmId>,
    pub kind: Command,
    pub steps: VecDeque<Step>,
    pub done: Vec<Undo>,
    pub mode: Mode,
    /// The driver call in flight: for a forward step, the step and the undo it
    /// will leave; for an undo call, `None`.
    pub pending: Option<(OpId, Option<Step>, Option<Undo>)>,
    /// Waiting for another saga's template copy to finish.
    pub parked: bool,
    pub failure: Option<String>,
    pub on_failure: OnFailure,
    /// Failed attempts of the undo in flight (undo calls are retried).
    pub undo_attempts: u32,
    /// A StartDomain or MigrateDomain got no answer: the domain may be running.
    /// Nothing is undone; the VM is held as Unknown until its host reports.
    pub in_doubt: bool,
    /// Past the point of no return (a migration completed): nothing is undone;
    /// after a failure or a management restart the saga rolls forward.
    pub forward_only: bool,
    /// The failure is the allocator's refusal (error code 533, not 530).
    pub capacity_refusal: bool,
    /// The driver call in flight (kept to hand to the reconciler if it keeps failing).
    pub call: Option<DriverCall>,
    /// Waiting to retry a failed undo call (a `SagaRetry` timer is armed).
    pub retry_at: Option<crate::units::Millis>,
    /// The saga unwinds calls that may still land (sent before a restart, or
    /// timed out): an undo answered "not found" is retried before it is believed.
    pub undo_cautious: bool,
    /// The name the job was submitted under (the VM's or volume's), so its
    /// end is logged under the same name even after an expunge.
    #[serde(default)]
    pub label: String,
}

/// An undo call is tried this many times (with backoff) before the saga hands
/// it to the reconciler (`cleanup`).
pub const UNDO_ATTEMPTS: u32 = 5;

impl Saga {
    pub fn new(
        id: SagaId,
        job: usize,
        vm: Option<VmId>,
        kind: Command,
        steps: Vec<Step>,
        on_failure: OnFailure,
    ) -> Saga {
        Saga {
            id,
            job,
            vm,
            kind,
            steps: steps.into(),
            done: Vec::new(),
            mode: Mode::Forward,
            pending: None,
            parked: false,
            failure: None,
            on_failure,
            undo_attempts: 0,
            in_doubt: false,
            forward_only: false,
            capacity_refusal: false,
            label: String::new(),
            call: None,
            retry_at: None,
            undo_cautious: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Step;

    /// Operators read the step's name in a failed job's error ("PlugNic
    /// failed: ...") and in the undo events: it names the step, not its indices.
    #[test]
    fn a_step_is_named_as_operators_read_it_in_errors() {
        assert_eq!(Step::PlugNic.name(), "PlugNic");
        assert_eq!(Step::StartDomain.name(), "StartDomain");
        assert_eq!(Step::UnplugNic.name(), "UnplugNic");
        assert_eq!(Step::Define.name(), "Define");
    }
}
