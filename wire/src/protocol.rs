//! The protocol between a host agent and the management server: one JSON
//! object per line ("JSON lines") inside TLS.
//!
//! Every line carries the protocol version `v` and a `type`. The version is
//! **negotiated at the greeting**: the agent's `enroll`/`hello` lists the
//! versions it speaks (`versions`), the server answers `enrolled`/`welcome`
//! with the highest common one (`version`) or with an `error` naming both
//! sides' versions. The greeting lines themselves (`enroll`, `hello`,
//! `enrolled`, `welcome` and an `error` answering them) always carry
//! `v: GREETING_VERSION`, a frozen envelope any version can read; every later
//! line carries the agreed version and a line with another one is refused.
//!
//! Driver calls and results travel as the driver vocabulary itself
//! ([`DriverCall`], [`DriverResult`]): their serde form is the wire form,
//! pinned by the golden fixtures in `tests/fixtures/`.

use crate::driver::{DriverCall, DriverResult};
use crate::facts::HostFacts;
use crate::ids::{HostId, VmId};
use serde::{Deserialize, Serialize};

/// The protocol versions this build speaks, oldest first.
pub const PROTOCOL_VERSIONS: &[u32] = &[1];
/// The newest version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The `v` of the greeting lines, whatever the versions negotiated.
pub const GREETING_VERSION: u32 = 1;
/// Longest accepted line (bytes, newline excluded). A longer line is a
/// protocol error: the connection is closed, since framing is lost.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// Longest accepted host name in `Enroll`.
pub const MAX_HOST_NAME: usize = 253;
/// Most VMs one `VmReport` may list.
pub const MAX_REPORTED_VMS: usize = 100_000;
/// Most versions a greeting may list.
pub const MAX_VERSIONS: usize = 64;

/// Agent → management server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentMsg {
    /// First connection: a one-time enrollment token.
    Enroll {
        token: String,
        host_name: String,
        facts: HostFacts,
        /// The protocol versions the agent speaks.
        versions: Vec<u32>,
    },
    /// Reconnection with the per-host secret handed out at enrollment.
    Hello {
        host_id: HostId,
        secret: String,
        /// The protocol versions the agent speaks.
        versions: Vec<u32>,
    },
    Heartbeat {
        host_id: HostId,
        seq: u64,
    },
    /// The full list of running domains. `nonce` answers a `Resync`; `None`
    /// means the agent noticed a domain stop on its own.
    VmReport {
        #[serde(default)]
        nonce: Option<u64>,
        running: Vec<VmId>,
    },
    Reply {
        req_id: u64,
        result: DriverResult,
    },
}

/// Management server → agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMsg {
    /// Enrollment accepted: keep `secret` for `Hello`. `instance` names this
    /// management server run (request ids restart with a new one);
    /// `ping_interval_ms` is the server's `ping.interval`; `version` is the
    /// protocol version of the rest of the session.
    Enrolled {
        host_id: HostId,
        secret: String,
        instance: String,
        ping_interval_ms: u64,
        version: u32,
    },
    /// `Hello` accepted.
    Welcome {
        host_id: HostId,
        instance: String,
        ping_interval_ms: u64,
        version: u32,
    },
    /// Answer to a heartbeat (lets the agent notice a dead link).
    Pong {
        seq: u64,
    },
    /// Asks for a fresh `VmReport` carrying this nonce.
    Resync {
        nonce: u64,
    },
    /// Execute a driver call. A request may be sent again with the same
    /// `req_id` (after a reconnect): it must not run twice.
    Request {
        req_id: u64,
        call: DriverCall,
    },
    Error {
        message: String,
    },
}

/// One line on the wire: version plus message.
#[derive(Debug, Serialize, Deserialize)]
struct Line<T> {
    v: u32,
    #[serde(flatten)]
    msg: T,
}

/// Why a line was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("line too long (more than {MAX_LINE_BYTES} bytes)")]
    TooLong,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("unsupported protocol version {got} (expected {expected})")]
    Version { got: u32, expected: u32 },
    #[error("no common protocol version: the agent speaks {agent:?}, this server speaks {server:?}")]
    NoCommonVersion { agent: Vec<u32>, server: Vec<u32> },
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// The highest version both sides speak.
pub fn negotiate(server: &[u32], agent: &[u32]) -> Result<u32, ProtocolError> {
    server
        .iter()
        .filter(|v| agent.contains(v))
        .max()
        .copied()
        .ok_or_else(|| ProtocolError::NoCommonVersion {
            agent: agent.to_vec(),
            server: server.to_vec(),
        })
}

/// Serializes one message as a line of protocol version `v` (with the
/// trailing newline).
pub fn encode<T: Serialize>(v: u32, msg: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec(&Line { v, msg }).expect("protocol messages serialize");
    out.push(b'\n');
    out
}

/// Parses one line (without its newline) that must carry version `v`.
/// Never panics on any input.
pub fn decode<T: for<'de> Deserialize<'de>>(line: &[u8], v: u32) -> Result<T, ProtocolError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(ProtocolError::TooLong);
    }
    #[derive(Deserialize)]
    struct Version {
        v: Option<u32>,
    }
    let version: Version = serde_json::from_slice(line).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    match version.v {
        Some(got) if got == v => {}
        Some(got) => return Err(ProtocolError::Version { got, expected: v }),
        None => return Err(ProtocolError::Malformed("missing protocol version field `v`".into())),
    }
    let line: Line<T> = serde_json::from_slice(line).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    Ok(line.msg)
}

impl AgentMsg {
    /// Checks bounds that the type system does not.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let invalid = |s: String| Err(ProtocolError::Invalid(s));
        match self {
            AgentMsg::Enroll { host_name, .. } if host_name.is_empty() || host_name.len() > MAX_HOST_NAME => {
                invalid(format!("host name must be 1 to {MAX_HOST_NAME} characters"))
            }
            AgentMsg::Enroll { versions, .. } | AgentMsg::Hello { versions, .. }
                if versions.is_empty() || versions.len() > MAX_VERSIONS =>
            {
                invalid(format!("a greeting lists 1 to {MAX_VERSIONS} protocol versions"))
            }
            AgentMsg::VmReport { running, .. } if running.len() > MAX_REPORTED_VMS => {
                invalid(format!("a report lists at most {MAX_REPORTED_VMS} VMs"))
            }
            _ => Ok(()),
        }
    }

    /// Whether the line is a greeting (sent with `GREETING_VERSION`).
    pub fn is_greeting(&self) -> bool {
        matches!(self, AgentMsg::Enroll { .. } | AgentMsg::Hello { .. })
    }

    /// The message's `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentMsg::Enroll { .. } => "enroll",
            AgentMsg::Hello { .. } => "hello",
            AgentMsg::Heartbeat { .. } => "heartbeat",
            AgentMsg::VmReport { .. } => "vm_report",
            AgentMsg::Reply { .. } => "reply",
        }
    }
}

impl ServerMsg {
    /// Whether the line answers a greeting (sent with `GREETING_VERSION`).
    pub fn is_greeting(&self) -> bool {
        matches!(self, ServerMsg::Enrolled { .. } | ServerMsg::Welcome { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::{DomainSpec, Mac};
    use crate::error::DriverError;
    use crate::ids::NetworkId;
    use uuid::Uuid;

    #[test]
    fn round_trips_and_versions() {
        let h = HostId(Uuid::from_u128(7));
        let msg = AgentMsg::Heartbeat { host_id: h, seq: 3 };
        let line = encode(1, &msg);
        assert!(line.ends_with(b"\n"));
        let text = std::str::from_utf8(&line).unwrap();
        assert!(text.starts_with("{\"v\":1,"), "{text}");
        assert_eq!(decode::<AgentMsg>(&line[..line.len() - 1], 1).unwrap(), msg);
        assert_eq!(
            decode::<AgentMsg>(&line[..line.len() - 1], 2),
            Err(ProtocolError::Version { got: 1, expected: 2 })
        );

        let spec = DomainSpec {
            name: "i-1".into(),
            cpu: 2,
            mhz: 1000,
            memory_mb: 512,
            disks: vec![],
            nics: vec![(Mac([2, 0, 0, 0, 0, 1]), NetworkId(Uuid::from_u128(9)))],
            devices: Default::default(),
        };
        let call = DriverCall::DefineDomain {
            vm: VmId(Uuid::from_u128(1)),
            host: h,
            spec,
        };
        let wire = ServerMsg::Request { req_id: 5, call };
        let back: ServerMsg = decode(encode(1, &wire).trim_ascii_end(), 1).unwrap();
        assert_eq!(back, wire);
        for result in [
            DriverResult::Ok,
            DriverResult::Failed(DriverError::refused("x")),
            DriverResult::Lease { renewed_at: Some(4) },
            DriverResult::Reachable { reachable: true },
        ] {
            let reply = AgentMsg::Reply { req_id: 1, result };
            assert_eq!(
                decode::<AgentMsg>(encode(1, &reply).trim_ascii_end(), 1).unwrap(),
                reply
            );
        }
    }

    #[test]
    fn negotiates_the_highest_common_version_or_names_both_sides() {
        assert_eq!(negotiate(&[1], &[1]), Ok(1));
        assert_eq!(negotiate(&[1, 2, 3], &[2, 3, 9]), Ok(3));
        assert_eq!(negotiate(&[1, 2], &[7, 1]), Ok(1));
        let e = negotiate(&[1, 2], &[7]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no common protocol version: the agent speaks [7], this server speaks [1, 2]"
        );
        assert!(negotiate(&[1], &[]).is_err());
        let hello = |versions: Vec<u32>| AgentMsg::Hello {
            host_id: HostId(Uuid::nil()),
            secret: "s".into(),
            versions,
        };
        assert!(hello(vec![1]).validate().is_ok());
        assert!(hello(vec![]).validate().is_err());
        assert!(hello(vec![1; MAX_VERSIONS + 1]).validate().is_err());
    }

    #[test]
    fn refuses_bad_input_without_panicking() {
        let cases: &[&[u8]] = &[
            b"",
            b"not json",
            b"{}",
            b"{\"v\":1}",
            b"{\"v\":2,\"type\":\"heartbeat\"}",
            b"{\"v\":\"1\",\"type\":\"heartbeat\"}",
            b"{\"v\":1,\"type\":\"heartbeat\",\"host_id\":\"zz\",\"seq\":1}",
            b"{\"v\":1,\"type\":\"launch_missiles\"}",
            b"[1,2,3]",
            b"\xff\xfe",
            b"{\"v\":1,\"type\":\"reply\",\"req_id\":-1,\"result\":{\"result\":\"ok\"}}",
            b"{\"v\":1,\"type\":\"reply\",\"req_id\":1,\"result\":{\"result\":\"lease\",\"at\":1}}",
            b"{\"v\":1,\"type\":\"reply\",\"req_id\":1,\"result\":{\"result\":\"failed\",\"kind\":\"oops\",\"message\":\"x\"}}",
            b"{\"v\":1,\"type\":\"reply\",\"req_id\":1,\"result\":{\"result\":\"failed\",\"error\":\"x\"}}",
            b"{\"v\":1,\"type\":\"hello\",\"host_id\":\"00000000-0000-0000-0000-000000000000\",\"secret\":\"s\"}",
        ];
        // (serde ignores extra fields next to the tag of a unit variant such
        // as `{"result":"ok"}`; every other variant refuses them.)
        for c in cases {
            assert!(decode::<AgentMsg>(c, 1).is_err(), "{:?}", String::from_utf8_lossy(c));
        }
        assert_eq!(
            decode::<AgentMsg>(b"{\"v\":9,\"type\":\"heartbeat\"}", 1),
            Err(ProtocolError::Version { got: 9, expected: 1 })
        );
        let call = b"{\"v\":1,\"type\":\"request\",\"req_id\":1,\"call\":{\"call\":\"PowerOff\",\"host\":\"00000000-0000-0000-0000-000000000000\",\"force\":true}}";
        assert!(decode::<ServerMsg>(call, 1).is_err(), "unknown field in a call");
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        assert_eq!(decode::<AgentMsg>(&long, 1), Err(ProtocolError::TooLong));
        let bad_name = AgentMsg::Enroll {
            token: "t".into(),
            host_name: String::new(),
            facts: HostFacts {
                cpu_cores: 1,
                cpu_mhz: 1,
                memory_bytes: 1,
                hypervisor_version: "x".into(),
                ..Default::default()
            },
            versions: vec![1],
        };
        assert!(bad_name.validate().is_err());
    }
}
