//! The controller's single entry point. Everything that changes its state is
//! an `Input`; `Controller::handle` applies one and returns what must leave the
//! process (effects), the event-log lines and the synchronous answer. Because
//! the controller is deterministic, journaling inputs (with their time) is
//! enough to rebuild its state after a crash.

use super::admin::{AdminChange, Created};
use super::directory::UserId;
use super::effects::{DriverResult, Effect, OpId, Timer};
use super::{Controller, Event, JobId, Request};
use crate::error::CoreError;
use crate::ids::{ClusterId, HostId, VmId};
use crate::settings::Scope;
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// One input to the controller. Serialized into the journal before its
/// effects leave the process.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // one per call; boxing buys nothing
pub enum Input {
    /// The runtime started (or recovered): arms the periodic reconciler.
    Boot,
    /// The management server restarted: calls in flight are forgotten and
    /// sagas unwind, roll forward or wait for host reports.
    Restart,
    /// An API request that runs as an async job.
    Request {
        request: Request,
    },
    /// An API request by an API user (recorded on the job).
    UserRequest {
        request: Request,
        user: UserId,
    },
    /// An operator or account change (inventory, users, public IPs, maintenance jobs).
    Admin {
        change: AdminChange,
        by: Option<UserId>,
    },
    /// A driver answered.
    Result {
        op: OpId,
        result: DriverResult,
    },
    /// A timer the controller asked for fired.
    Timer {
        timer: Timer,
    },
    /// Heartbeats received since the last batch.
    Pings {
        hosts: Vec<HostId>,
    },
    /// Full lists of running domains.
    VmReports {
        reports: Vec<(HostId, Vec<VmId>)>,
    },
    /// A host saw one of its domains stop on its own.
    VmStopped {
        host: HostId,
        vm: VmId,
    },
    PrepareMaintenance {
        host: HostId,
    },
    CancelMaintenance {
        host: HostId,
    },
    RollingMaintenance {
        cluster: ClusterId,
        pre_hook_ms: u64,
        post_hook_ms: u64,
        /// A host that is not Up when its turn comes: wait for it (true) or
        /// skip it with the reason (false).
        #[serde(default)]
        wait_for_down: bool,
    },
    /// updateConfiguration.
    UpdateSetting {
        name: String,
        scope: Scope,
        value: String,
    },
    /// Tests only (feature `test-panic`): applies `inner`, then panics, as a
    /// bug in the middle of handling would (the controller is left changed).
    #[cfg(feature = "test-panic")]
    PanicForTest {
        inner: Box<Input>,
    },
}

impl Input {
    /// The journal form of an input (MessagePack: compact, and it keeps the
    /// tagged enums of the driver vocabulary).
    pub fn to_bytes(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("inputs serialize")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Input, String> {
        rmp_serde::from_slice(bytes).map_err(|e| format!("journal entry does not decode: {e}"))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Input::Boot => "boot",
            Input::Restart => "restart",
            Input::Request { .. } => "request",
            Input::UserRequest { .. } => "user_request",
            Input::Admin { .. } => "admin",
            Input::Result { .. } => "result",
            Input::Timer { .. } => "timer",
            Input::Pings { .. } => "pings",
            Input::VmReports { .. } => "vm_reports",
            Input::VmStopped { .. } => "vm_stopped",
            Input::PrepareMaintenance { .. } => "prepare_maintenance",
            Input::CancelMaintenance { .. } => "cancel_maintenance",
            Input::RollingMaintenance { .. } => "rolling_maintenance",
            Input::UpdateSetting { .. } => "update_setting",
            #[cfg(feature = "test-panic")]
            Input::PanicForTest { .. } => "panic_for_test",
        }
    }

    /// The answer to this input's caller when it could not be handled: a
    /// refused job for a request, a refused action for anything else.
    pub fn error_reply(&self, err: CoreError) -> Reply {
        match self {
            Input::Request { .. } | Input::UserRequest { .. } => Reply::Job(Err(err)),
            Input::Admin { .. } => Reply::Created(Err(err)),
            #[cfg(feature = "test-panic")]
            Input::PanicForTest { inner } => inner.error_reply(err),
            _ => Reply::Done(Err(err)),
        }
    }
}

/// The synchronous answer to an input.
#[derive(Debug)]
pub enum Reply {
    /// Nothing to answer (driver results, timers, reports).
    None,
    /// A job was accepted (its id) or the request was refused (nothing changed).
    Job(Result<JobId, CoreError>),
    /// An action was done or refused (nothing changed).
    Done(Result<(), CoreError>),
    /// An admin change made or refused (nothing changed).
    Created(Result<Created, CoreError>),
}

impl Reply {
    /// The refusal, if the input was refused.
    pub fn error(&self) -> Option<&CoreError> {
        match self {
            Reply::Job(Err(e)) | Reply::Done(Err(e)) | Reply::Created(Err(e)) => Some(e),
            _ => None,
        }
    }
}

/// Everything one input produced.
#[derive(Debug)]
pub struct Output {
    pub effects: Vec<Effect>,
    pub events: Vec<Event>,
    pub reply: Reply,
}

impl Controller {
    /// Applies one input at time `now` (epoch milliseconds from the runtime).
    pub fn handle(&mut self, now: Millis, input: Input) -> Output {
        let reply = self.apply(now, input);
        Output {
            effects: self.take_effects(),
            events: self.take_log(),
            reply,
        }
    }

    /// Applies one input, leaving effects and log lines queued (the simulator
    /// collects them in its own loop).
    pub fn apply(&mut self, now: Millis, input: Input) -> Reply {
        match input {
            Input::Boot => {
                self.start(now);
                Reply::None
            }
            Input::Restart => {
                self.restart(now);
                Reply::None
            }
            Input::Request { request } => Reply::Job(self.submit(request, now)),
            Input::UserRequest { request, user } => Reply::Job(self.submit_as(request, Some(user), now)),
            Input::Admin { change, by } => Reply::Created(self.admin(change, by, now)),
            Input::Result { op, result } => {
                self.on_result(op, result, now);
                Reply::None
            }
            Input::Timer { timer } => {
                self.on_timer(timer, now);
                Reply::None
            }
            Input::Pings { hosts } => {
                self.on_pings(&hosts, now);
                Reply::None
            }
            Input::VmReports { reports } => {
                self.on_vm_reports(&reports, now);
                Reply::None
            }
            Input::VmStopped { host, vm } => {
                self.on_vm_stopped(host, vm, now);
                Reply::None
            }
            Input::PrepareMaintenance { host } => Reply::Done(self.prepare_maintenance(host, now).map(|_| ())),
            Input::CancelMaintenance { host } => Reply::Done(self.cancel_maintenance(host, now)),
            Input::RollingMaintenance {
                cluster,
                pre_hook_ms,
                post_hook_ms,
                wait_for_down,
            } => Reply::Done(self.rolling_maintenance(cluster, pre_hook_ms, post_hook_ms, wait_for_down, now)),
            Input::UpdateSetting { name, scope, value } => {
                self.tick(now);
                Reply::Done(self.cloud.update_setting(&name, scope, &value))
            }
            #[cfg(feature = "test-panic")]
            Input::PanicForTest { inner } => {
                let name = inner.name();
                self.apply(now, *inner);
                panic!("test-panic: a {name} input was applied, then handling panicked");
            }
        }
    }

    /// The canonical serialized state (a snapshot, MessagePack with structs as
    /// arrays: compact, UUIDs as 16 bytes, and it keeps the tagged enums of the
    /// driver vocabulary). Effects and log lines not yet taken are not part of
    /// it: snapshots are taken between inputs.
    pub fn state_bytes(&self) -> Vec<u8> {
        rmp_serde::to_vec(self).expect("controller state serializes")
    }

    /// SHA-256 of the canonical state, hex: equal hashes mean equal states.
    pub fn state_hash(&self) -> String {
        hash_hex(&self.state_bytes())
    }

    /// Rebuilds a controller from `state_bytes`.
    pub fn from_state_bytes(bytes: &[u8]) -> Result<Controller, String> {
        rmp_serde::from_slice(bytes).map_err(|e| format!("snapshot does not decode: {e}"))
    }
}

/// SHA-256 of bytes, lower-case hex.
pub fn hash_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}
