//! Errors of the core, each mapped to CloudStack's HTTP error code and exception
//! code so the API layer can answer in CloudStack's format.

use crate::allocator::Explanation;
use crate::settings::SettingError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CoreError {
    #[error("Unable to find {kind} with id {id}")]
    NotFound { kind: &'static str, id: String },
    #[error("Invalid parameter {param}: {message}")]
    InvalidParameter { param: String, message: String },
    #[error("A {kind} named '{name}' already exists in {scope}")]
    Duplicate {
        kind: &'static str,
        name: String,
        scope: String,
    },
    #[error("{entity} {name} is {state}; cannot {op}")]
    InvalidState {
        entity: &'static str,
        name: String,
        state: String,
        op: &'static str,
    },
    #[error("{}", .0.headline())]
    InsufficientCapacity(Box<Explanation>),
    /// An operation CloudStack refuses with a CloudRuntimeException (530)
    /// because of what its target still holds (deleteHost with VMs on it,
    /// deleteCluster with hosts); the message names what remains.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// A bug: handling the input panicked. The runtime rebuilt the controller
    /// without it, so nothing changed.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::InvalidParameter {
            param: param.into(),
            message: message.into(),
        }
    }

    /// CloudStack's (HTTP errorcode, cserrorcode) for this error.
    pub fn cloudstack_codes(&self) -> (u16, u32) {
        match self {
            CoreError::NotFound { .. } | CoreError::InvalidParameter { .. } => (431, 4350),
            CoreError::Duplicate { .. } => (431, 4350),
            CoreError::Setting(_) => (431, 4350),
            // The caller asked for what the target's state does not allow:
            // CloudStack's usual InvalidParameterValueException. 530 is kept
            // for our own failures (found by the API fuzzer, api/tests/fuzz.rs).
            CoreError::InvalidState { .. } => (431, 4350),
            CoreError::InsufficientCapacity(_) => (533, 4325),
            CoreError::Refused(_) => (530, 4250),
            // CloudStack's INTERNAL_ERROR and CloudRuntimeException.
            CoreError::Internal(_) => (530, 4250),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
