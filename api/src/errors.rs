//! CloudStack API errors: the HTTP-style `errorcode` (ApiErrorCode) plus the
//! `cserrorcode` (CSExceptionErrorCode) that the error envelope carries.

use std::fmt;

use crate::render::{Obj, error_body};

/// `cserrorcode` values. CloudStack derives them from the Java exception class
/// (CSExceptionErrorCode). The four marked "doc" come from our compatibility
/// notes; the rest were read from a public copy of CloudStack's
/// CSExceptionErrorCode table (best knowledge; older releases differ slightly).
pub mod cs {
    /// CloudRuntimeException (doc).
    pub const CLOUD_RUNTIME: u32 = 4250;
    pub const EXECUTION: u32 = 4260;
    pub const CLOUD: u32 = 4275;
    pub const ACCOUNT_LIMIT: u32 = 4280;
    pub const AGENT_UNAVAILABLE: u32 = 4285;
    pub const CLOUD_AUTHENTICATION: u32 = 4290;
    pub const CONCURRENT_OPERATION: u32 = 4300;
    pub const HA_STATE: u32 = 4315;
    pub const INSUFFICIENT_ADDRESS_CAPACITY: u32 = 4320;
    /// InsufficientCapacityException (doc).
    pub const INSUFFICIENT_CAPACITY: u32 = 4325;
    pub const INSUFFICIENT_NETWORK_CAPACITY: u32 = 4330;
    pub const INSUFFICIENT_SERVER_CAPACITY: u32 = 4335;
    pub const INSUFFICIENT_STORAGE_CAPACITY: u32 = 4340;
    pub const INTERNAL_ERROR: u32 = 4345;
    /// InvalidParameterValueException (doc).
    pub const INVALID_PARAMETER_VALUE: u32 = 4350;
    pub const MANAGEMENT_SERVER: u32 = 4355;
    pub const NETWORK_RULE_CONFLICT: u32 = 4360;
    /// PermissionDeniedException (doc).
    pub const PERMISSION_DENIED: u32 = 4365;
    pub const RESOURCE_ALLOCATION: u32 = 4370;
    pub const RESOURCE_IN_USE: u32 = 4375;
    pub const RESOURCE_UNAVAILABLE: u32 = 4380;
    pub const STORAGE_UNAVAILABLE: u32 = 4385;
    pub const UNSUPPORTED_SERVICE: u32 = 4390;
    pub const VIRTUAL_MACHINE_MIGRATION: u32 = 4395;
    pub const ASYNC_COMMAND_QUEUED: u32 = 4540;
    pub const REQUEST_LIMIT: u32 = 4545;
    pub const STORAGE_CONFLICT: u32 = 4550;
    /// ServerApiException thrown on its own (doc): the default.
    pub const SERVER_API: u32 = 9999;
}

/// The 401 text CloudStack answers for every signature/key/session failure;
/// it deliberately does not say which check failed.
pub const UNABLE_TO_VERIFY: &str = "unable to verify user credentials and/or request signature";

/// One API failure. `code` is both the HTTP status and the envelope's `errorcode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub cs_code: u32,
    pub text: String,
}

// Constructors named after ApiErrorCode; all default to the ServerApiException
// cserrorcode, as CloudStack does when it raises ServerApiException directly.
macro_rules! ctor {
    ($($(#[$m:meta])* $name:ident => $code:expr;)*) => {$(
        $(#[$m])*
        pub fn $name(text: impl Into<String>) -> Self {
            Self::new($code, cs::SERVER_API, text)
        }
    )*};
}

impl ApiError {
    pub fn new(code: u16, cs_code: u32, text: impl Into<String>) -> Self {
        Self {
            code,
            cs_code,
            text: text.into(),
        }
    }

    ctor! {
        /// 401 UNAUTHORIZED: bad signature/key/session, role denial.
        unauthorized => 401;
        /// 405 METHOD_NOT_ALLOWED, e.g. GET login.
        method_not_allowed => 405;
        /// 411 UNAUTHORIZED2FA.
        unauthorized_2fa => 411;
        /// 429 API_LIMIT_EXCEED.
        api_limit_exceeded => 429;
        /// 430 MALFORMED_PARAMETER_ERROR.
        malformed => 430;
        /// 431 PARAM_ERROR.
        param => 431;
        /// 432 UNSUPPORTED_ACTION_ERROR.
        unsupported => 432;
        /// 530 INTERNAL_ERROR.
        internal => 530;
        /// 531 ACCOUNT_ERROR.
        account => 531;
        /// 532 ACCOUNT_RESOURCE_LIMIT_ERROR.
        resource_limit => 532;
        /// 533 INSUFFICIENT_CAPACITY_ERROR.
        insufficient_capacity => 533;
        /// 534 RESOURCE_UNAVAILABLE_ERROR.
        resource_unavailable => 534;
        /// 535 RESOURCE_ALLOCATION_ERROR.
        resource_allocation => 535;
        /// 536 RESOURCE_IN_USE_ERROR.
        in_use => 536;
        /// 537 NETWORK_RULE_CONFLICT_ERROR.
        network_rule_conflict => 537;
    }

    /// Replaces the cserrorcode, for when the failure maps to a specific
    /// CloudStack exception class.
    pub fn with_cs(mut self, cs_code: u32) -> Self {
        self.cs_code = cs_code;
        self
    }

    /// The generic 401 CloudStack gives for any authentication failure.
    pub fn unable_to_verify() -> Self {
        Self::unauthorized(UNABLE_TO_VERIFY)
    }

    /// InvalidParameterValueException: 431 / 4350.
    pub fn invalid_parameter_value(text: impl Into<String>) -> Self {
        Self::param(text).with_cs(cs::INVALID_PARAMETER_VALUE)
    }

    /// PermissionDeniedException: 531 / 4365.
    pub fn permission_denied(text: impl Into<String>) -> Self {
        Self::account(text).with_cs(cs::PERMISSION_DENIED)
    }

    /// InsufficientCapacityException: 533 / 4325.
    pub fn insufficient_capacity_exception(text: impl Into<String>) -> Self {
        Self::insufficient_capacity(text).with_cs(cs::INSUFFICIENT_CAPACITY)
    }

    /// CloudRuntimeException: 530 / 4250.
    pub fn cloud_runtime(text: impl Into<String>) -> Self {
        Self::internal(text).with_cs(cs::CLOUD_RUNTIME)
    }

    /// ParamProcessWorker's text for a required parameter that is absent.
    /// `cmd` is the lowercased API name (the response name minus `response`).
    pub fn missing_param(cmd: &str, name: &str) -> Self {
        Self::param(format!(
            "Unable to execute API command {cmd} due to missing parameter {name}"
        ))
    }

    /// ParamProcessWorker's text for a value that does not convert to the
    /// parameter's type.
    pub fn invalid_value(cmd: &str, name: &str, value: &str) -> Self {
        Self::param(format!(
            "Unable to execute API command {cmd} due to invalid value {value} for parameter {name}"
        ))
    }

    /// The error envelope body (without the top-level response name).
    pub fn body(&self) -> Obj {
        error_body(self.code, self.cs_code, &self.text)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.cs_code, self.text)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_carry_codes() {
        let table = [
            (ApiError::unauthorized("x"), 401, 9999),
            (ApiError::method_not_allowed("x"), 405, 9999),
            (ApiError::malformed("x"), 430, 9999),
            (ApiError::param("x"), 431, 9999),
            (ApiError::unsupported("x"), 432, 9999),
            (ApiError::internal("x"), 530, 9999),
            (ApiError::account("x"), 531, 9999),
            (ApiError::resource_limit("x"), 532, 9999),
            (ApiError::insufficient_capacity("x"), 533, 9999),
            (ApiError::resource_unavailable("x"), 534, 9999),
            (ApiError::resource_allocation("x"), 535, 9999),
            (ApiError::in_use("x"), 536, 9999),
            (ApiError::invalid_parameter_value("x"), 431, 4350),
            (ApiError::permission_denied("x"), 531, 4365),
            (ApiError::insufficient_capacity_exception("x"), 533, 4325),
            (ApiError::cloud_runtime("x"), 530, 4250),
        ];
        for (e, code, cs) in table {
            assert_eq!((e.code, e.cs_code), (code, cs), "{e}");
        }
    }

    #[test]
    fn param_texts() {
        let e = ApiError::missing_param("deployvirtualmachine", "zoneid");
        assert_eq!(e.code, 431);
        assert_eq!(
            e.text,
            "Unable to execute API command deployvirtualmachine due to missing parameter zoneid"
        );
        let e = ApiError::invalid_value("listhosts", "page", "x");
        assert_eq!(
            e.text,
            "Unable to execute API command listhosts due to invalid value x for parameter page"
        );
    }
}
