//! The wire protocol between a host agent and the management server: one JSON
//! object per line ("JSON lines") inside TLS. Every line carries the protocol
//! version `v`; a peer refuses a version it does not speak with an `error`.
//!
//! The driver vocabulary of the core (`DriverCall`, `DriverResult`) is
//! mirrored here field by field (`Call`, `CallResult`) so the wire format is
//! owned by this crate, can be deserialized, and stays stable when the core's
//! types grow.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use stratus_core::controller::effects::{DomainSpec, DriverCall, DriverResult, Mac};
use stratus_core::ids::*;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest accepted line (bytes, newline excluded). A longer line is a
/// protocol error: the connection is closed, since framing is lost.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// Longest accepted host name in `Enroll`.
pub const MAX_HOST_NAME: usize = 253;
/// Most VMs one `VmReport` may list.
pub const MAX_REPORTED_VMS: usize = 100_000;

/// What a host says about itself when it enrolls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub cpu_cores: u32,
    pub cpu_mhz: u32,
    pub memory_bytes: u64,
    pub hypervisor_version: String,
}

impl From<stratus_drivers::HostFacts> for Facts {
    fn from(f: stratus_drivers::HostFacts) -> Facts {
        Facts {
            cpu_cores: f.cpu_cores,
            cpu_mhz: f.cpu_mhz,
            memory_bytes: f.memory_bytes,
            hypervisor_version: f.hypervisor_version,
        }
    }
}

/// Agent → management server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentMsg {
    /// First connection: a one-time enrollment token.
    Enroll {
        token: String,
        host_name: String,
        facts: Facts,
    },
    /// Reconnection with the per-host secret handed out at enrollment.
    Hello {
        host_id: HostId,
        secret: String,
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
        result: CallResult,
    },
}

/// Management server → agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMsg {
    /// Enrollment accepted: keep `secret` for `Hello`. `instance` names this
    /// management server run (request ids restart with a new one);
    /// `ping_interval_ms` is the server's `ping.interval`.
    Enrolled {
        host_id: HostId,
        secret: String,
        instance: String,
        ping_interval_ms: u64,
    },
    /// `Hello` accepted.
    Welcome {
        host_id: HostId,
        instance: String,
        ping_interval_ms: u64,
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
        call: Call,
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
    #[error("unsupported protocol version {0} (this side speaks {PROTOCOL_VERSION})")]
    Version(u32),
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// Serializes one message as a line (with the trailing newline).
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec(&Line {
        v: PROTOCOL_VERSION,
        msg,
    })
    .expect("protocol messages serialize");
    out.push(b'\n');
    out
}

/// Parses one line (without its newline). Never panics on any input.
pub fn decode<T: for<'de> Deserialize<'de>>(line: &[u8]) -> Result<T, ProtocolError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(ProtocolError::TooLong);
    }
    #[derive(Deserialize)]
    struct Version {
        v: Option<u32>,
    }
    let version: Version = serde_json::from_slice(line).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    match version.v {
        Some(PROTOCOL_VERSION) => {}
        Some(v) => return Err(ProtocolError::Version(v)),
        None => return Err(ProtocolError::Malformed("missing protocol version field `v`".into())),
    }
    let line: Line<T> = serde_json::from_slice(line).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    Ok(line.msg)
}

impl AgentMsg {
    /// Checks bounds that the type system does not.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        match self {
            AgentMsg::Enroll { host_name, .. } if host_name.is_empty() || host_name.len() > MAX_HOST_NAME => Err(
                ProtocolError::Invalid(format!("host name must be 1 to {MAX_HOST_NAME} characters")),
            ),
            AgentMsg::VmReport { running, .. } if running.len() > MAX_REPORTED_VMS => Err(ProtocolError::Invalid(
                format!("a report lists at most {MAX_REPORTED_VMS} VMs"),
            )),
            _ => Ok(()),
        }
    }
}

/// Wire form of a domain definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    pub name: String,
    pub cpu: u32,
    pub mhz: u32,
    pub memory_mb: u64,
    pub disks: Vec<(VolumeId, PoolId)>,
    pub nics: Vec<([u8; 6], NetworkId)>,
}

/// Wire form of `DriverCall` (same names and fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", deny_unknown_fields)]
pub enum Call {
    DefineDomain {
        vm: VmId,
        host: HostId,
        spec: Domain,
    },
    UndefineDomain {
        vm: VmId,
        host: HostId,
    },
    StartDomain {
        vm: VmId,
        host: HostId,
    },
    StopDomain {
        vm: VmId,
        host: HostId,
        forced: bool,
    },
    RebootDomain {
        vm: VmId,
        host: HostId,
    },
    MigrateDomain {
        vm: VmId,
        from: HostId,
        to: HostId,
    },
    CopyTemplate {
        template: TemplateId,
        pool: PoolId,
        size_bytes: u64,
    },
    CreateVolume {
        volume: VolumeId,
        pool: PoolId,
        size_bytes: u64,
        template: Option<TemplateId>,
    },
    DeleteVolume {
        volume: VolumeId,
        pool: PoolId,
    },
    CreateSnapshot {
        volume: VolumeId,
        pool: PoolId,
        snapshot: SnapshotId,
    },
    DeleteSnapshot {
        snapshot: SnapshotId,
    },
    AttachDisk {
        vm: VmId,
        host: HostId,
        volume: VolumeId,
        pool: PoolId,
    },
    DetachDisk {
        vm: VmId,
        host: HostId,
        volume: VolumeId,
    },
    CheckLease {
        host: HostId,
        pool: PoolId,
    },
    PingNeighbour {
        from: HostId,
        target: HostId,
    },
    PowerOff {
        host: HostId,
    },
    PlugNic {
        vm: VmId,
        host: HostId,
        network: NetworkId,
        mac: [u8; 6],
        ip: Ipv4Addr,
    },
    UnplugNic {
        vm: VmId,
        host: HostId,
        network: NetworkId,
        mac: [u8; 6],
    },
}

impl From<&DriverCall> for Call {
    fn from(c: &DriverCall) -> Call {
        use DriverCall as D;
        match c.clone() {
            D::DefineDomain { vm, host, spec } => Call::DefineDomain {
                vm,
                host,
                spec: Domain {
                    name: spec.name,
                    cpu: spec.cpu,
                    mhz: spec.mhz,
                    memory_mb: spec.memory_mb,
                    disks: spec.disks,
                    nics: spec.nics.into_iter().map(|(m, n)| (m.0, n)).collect(),
                },
            },
            D::UndefineDomain { vm, host } => Call::UndefineDomain { vm, host },
            D::StartDomain { vm, host } => Call::StartDomain { vm, host },
            D::StopDomain { vm, host, forced } => Call::StopDomain { vm, host, forced },
            D::RebootDomain { vm, host } => Call::RebootDomain { vm, host },
            D::MigrateDomain { vm, from, to } => Call::MigrateDomain { vm, from, to },
            D::CopyTemplate {
                template,
                pool,
                size_bytes,
            } => Call::CopyTemplate {
                template,
                pool,
                size_bytes,
            },
            D::CreateVolume {
                volume,
                pool,
                size_bytes,
                template,
            } => Call::CreateVolume {
                volume,
                pool,
                size_bytes,
                template,
            },
            D::DeleteVolume { volume, pool } => Call::DeleteVolume { volume, pool },
            D::CreateSnapshot { volume, pool, snapshot } => Call::CreateSnapshot { volume, pool, snapshot },
            D::DeleteSnapshot { snapshot } => Call::DeleteSnapshot { snapshot },
            D::AttachDisk { vm, host, volume, pool } => Call::AttachDisk { vm, host, volume, pool },
            D::DetachDisk { vm, host, volume } => Call::DetachDisk { vm, host, volume },
            D::CheckLease { host, pool } => Call::CheckLease { host, pool },
            D::PingNeighbour { from, target } => Call::PingNeighbour { from, target },
            D::PowerOff { host } => Call::PowerOff { host },
            D::PlugNic {
                vm,
                host,
                network,
                mac,
                ip,
            } => Call::PlugNic {
                vm,
                host,
                network,
                mac: mac.0,
                ip,
            },
            D::UnplugNic { vm, host, network, mac } => Call::UnplugNic {
                vm,
                host,
                network,
                mac: mac.0,
            },
        }
    }
}

impl From<Call> for DriverCall {
    fn from(c: Call) -> DriverCall {
        use DriverCall as D;
        match c {
            Call::DefineDomain { vm, host, spec } => D::DefineDomain {
                vm,
                host,
                spec: DomainSpec {
                    name: spec.name,
                    cpu: spec.cpu,
                    mhz: spec.mhz,
                    memory_mb: spec.memory_mb,
                    disks: spec.disks,
                    nics: spec.nics.into_iter().map(|(m, n)| (Mac(m), n)).collect(),
                },
            },
            Call::UndefineDomain { vm, host } => D::UndefineDomain { vm, host },
            Call::StartDomain { vm, host } => D::StartDomain { vm, host },
            Call::StopDomain { vm, host, forced } => D::StopDomain { vm, host, forced },
            Call::RebootDomain { vm, host } => D::RebootDomain { vm, host },
            Call::MigrateDomain { vm, from, to } => D::MigrateDomain { vm, from, to },
            Call::CopyTemplate {
                template,
                pool,
                size_bytes,
            } => D::CopyTemplate {
                template,
                pool,
                size_bytes,
            },
            Call::CreateVolume {
                volume,
                pool,
                size_bytes,
                template,
            } => D::CreateVolume {
                volume,
                pool,
                size_bytes,
                template,
            },
            Call::DeleteVolume { volume, pool } => D::DeleteVolume { volume, pool },
            Call::CreateSnapshot { volume, pool, snapshot } => D::CreateSnapshot { volume, pool, snapshot },
            Call::DeleteSnapshot { snapshot } => D::DeleteSnapshot { snapshot },
            Call::AttachDisk { vm, host, volume, pool } => D::AttachDisk { vm, host, volume, pool },
            Call::DetachDisk { vm, host, volume } => D::DetachDisk { vm, host, volume },
            Call::CheckLease { host, pool } => D::CheckLease { host, pool },
            Call::PingNeighbour { from, target } => D::PingNeighbour { from, target },
            Call::PowerOff { host } => D::PowerOff { host },
            Call::PlugNic {
                vm,
                host,
                network,
                mac,
                ip,
            } => D::PlugNic {
                vm,
                host,
                network,
                mac: Mac(mac),
                ip,
            },
            Call::UnplugNic { vm, host, network, mac } => D::UnplugNic {
                vm,
                host,
                network,
                mac: Mac(mac),
            },
        }
    }
}

/// Wire form of `DriverResult`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum CallResult {
    Ok,
    Failed { error: String },
    Lease { renewed_at: Option<u64> },
    Reachable { reachable: bool },
}

impl From<&DriverResult> for CallResult {
    fn from(r: &DriverResult) -> CallResult {
        match r {
            DriverResult::Ok => CallResult::Ok,
            DriverResult::Failed(e) => CallResult::Failed { error: e.clone() },
            DriverResult::Lease { renewed_at } => CallResult::Lease {
                renewed_at: *renewed_at,
            },
            DriverResult::Reachable(r) => CallResult::Reachable { reachable: *r },
        }
    }
}

impl From<CallResult> for DriverResult {
    fn from(r: CallResult) -> DriverResult {
        match r {
            CallResult::Ok => DriverResult::Ok,
            CallResult::Failed { error } => DriverResult::Failed(error),
            CallResult::Lease { renewed_at } => DriverResult::Lease { renewed_at },
            CallResult::Reachable { reachable } => DriverResult::Reachable(reachable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_versions() {
        let h = HostId(uuid::Uuid::from_u128(7));
        let msg = AgentMsg::Heartbeat { host_id: h, seq: 3 };
        let line = encode(&msg);
        assert!(line.ends_with(b"\n"));
        let text = std::str::from_utf8(&line).unwrap();
        assert!(text.starts_with("{\"v\":1,"), "{text}");
        assert_eq!(decode::<AgentMsg>(&line[..line.len() - 1]).unwrap(), msg);

        let spec = DomainSpec {
            name: "i-1".into(),
            cpu: 2,
            mhz: 1000,
            memory_mb: 512,
            disks: vec![],
            nics: vec![(Mac([2, 0, 0, 0, 0, 1]), NetworkId(uuid::Uuid::from_u128(9)))],
        };
        let call = DriverCall::DefineDomain {
            vm: VmId(uuid::Uuid::from_u128(1)),
            host: h,
            spec,
        };
        let wire = ServerMsg::Request {
            req_id: 5,
            call: Call::from(&call),
        };
        let back: ServerMsg = decode(encode(&wire).trim_ascii_end()).unwrap();
        let ServerMsg::Request { call: c, .. } = back else {
            panic!()
        };
        assert_eq!(DriverCall::from(c), call);
        for r in [
            DriverResult::Ok,
            DriverResult::Failed("x".into()),
            DriverResult::Lease { renewed_at: Some(4) },
            DriverResult::Reachable(true),
        ] {
            assert_eq!(DriverResult::from(CallResult::from(&r)), r);
        }
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
        ];
        for c in cases {
            assert!(decode::<AgentMsg>(c).is_err(), "{:?}", String::from_utf8_lossy(c));
        }
        assert_eq!(
            decode::<AgentMsg>(b"{\"v\":9,\"type\":\"heartbeat\"}"),
            Err(ProtocolError::Version(9))
        );
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        assert_eq!(decode::<AgentMsg>(&long), Err(ProtocolError::TooLong));
        let bad_name = AgentMsg::Enroll {
            token: "t".into(),
            host_name: String::new(),
            facts: Facts {
                cpu_cores: 1,
                cpu_mhz: 1,
                memory_bytes: 1,
                hypervisor_version: "x".into(),
            },
        };
        assert!(bad_name.validate().is_err());
    }
}
