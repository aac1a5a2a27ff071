//! The commands, by area. Each module exports `COMMANDS`, a static table the
//! registry indexes; `listApis` reads the same tables.

pub mod access;
pub mod accounts;
pub mod apis;
pub mod delete_infra;
pub mod events;
pub mod hosts;
pub mod infra;
pub mod jobs;
pub mod misc;
pub mod network;
pub mod offerings;
pub mod placement;
pub mod pools;
pub mod rules;
pub mod storage;
pub mod templates;
pub mod vlans;
mod vm_spec;
pub mod vms;
pub mod whatif;

use crate::registry::Command;

pub static GROUPS: &[&[Command]] = &[
    hosts::COMMANDS,
    delete_infra::COMMANDS,
    infra::COMMANDS,
    pools::COMMANDS,
    jobs::COMMANDS,
    network::COMMANDS,
    storage::COMMANDS,
    vms::COMMANDS,
    offerings::COMMANDS,
    templates::COMMANDS,
    accounts::COMMANDS,
    rules::COMMANDS,
    misc::COMMANDS,
    events::COMMANDS,
    vlans::COMMANDS,
    apis::COMMANDS,
    placement::COMMANDS,
    whatif::COMMANDS,
];

/// What command modules use.
pub mod prelude {
    pub use crate::caller::{Caller, Role, Scope};
    pub use crate::errors::ApiError;
    pub use crate::registry::{Command, Ctx, Fut, PAGING, Ty, boxed, p, req};
    pub use crate::render::{self, Obj};
    pub use crate::views;
    pub use stratus_core::controller::{Controller, JobId};
    pub use stratus_core::ids::*;
    pub use uuid::Uuid;

    /// "Unable to find <kind> by id <id>" (431), CloudStack's not-found answer.
    pub fn not_found(kind: &str, id: impl std::fmt::Display) -> ApiError {
        ApiError::param(format!("Unable to find {kind} by id {id}"))
    }
}
