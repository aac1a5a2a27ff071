//! Typed driver errors. What matters to the caller of a failed call is
//! whether it may have happened: the kind says so; the message is for people.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a driver call failed, from the caller's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The thing the call is about is absent (domain, volume, template copy,
    /// pool, host). Nothing happened.
    NotFound,
    /// The host or pool is unreachable or down: the call surely did not happen.
    Unavailable,
    /// The driver refused (bad state, no space, injected failure, not this
    /// host's call, no fence device…): it did not happen.
    Refused,
    /// Timed out, or the connection was lost mid-call: it may have happened.
    /// Only asking the host settles it.
    InDoubt,
}

impl ErrorKind {
    /// The snake_case name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Refused => "refused",
            ErrorKind::InDoubt => "in_doubt",
        }
    }

    /// Whether the call may have taken effect despite the failure.
    pub fn may_have_happened(self) -> bool {
        self == ErrorKind::InDoubt
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed driver call: its kind and a human-readable message.
///
/// `Display` prints the message alone (event logs and job errors read as
/// before kinds existed); the kind is in `kind` and in the JSON form
/// `{"kind":"not_found","message":"…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(deny_unknown_fields)]
#[error("{message}")]
pub struct DriverError {
    pub kind: ErrorKind,
    pub message: String,
}

impl DriverError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> DriverError {
        DriverError {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> DriverError {
        DriverError::new(ErrorKind::NotFound, message)
    }
    pub fn unavailable(message: impl Into<String>) -> DriverError {
        DriverError::new(ErrorKind::Unavailable, message)
    }
    pub fn refused(message: impl Into<String>) -> DriverError {
        DriverError::new(ErrorKind::Refused, message)
    }
    pub fn in_doubt(message: impl Into<String>) -> DriverError {
        DriverError::new(ErrorKind::InDoubt, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_display_and_json() {
        let e = DriverError::not_found("domain not defined");
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.to_string(), "domain not defined");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"kind":"not_found","message":"domain not defined"}"#
        );
        for (e, k) in [
            (DriverError::unavailable("x"), ErrorKind::Unavailable),
            (DriverError::refused("x"), ErrorKind::Refused),
            (DriverError::in_doubt("x"), ErrorKind::InDoubt),
        ] {
            assert_eq!(e.kind, k);
            assert_eq!(k.may_have_happened(), k == ErrorKind::InDoubt);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{k}\""));
        }
        assert!(serde_json::from_str::<DriverError>(r#"{"kind":"lost","message":"x"}"#).is_err());
        assert!(serde_json::from_str::<DriverError>(r#"{"kind":"refused","message":"x","extra":1}"#).is_err());
    }
}
