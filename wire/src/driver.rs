//! The driver vocabulary: what the controller asks of compute, storage, network
//! and fencing drivers, and what they answer. Real drivers (libvirt, OVS, NFS),
//! the host agent and the simulated datacenter all speak it; the agent
//! protocol carries it as is.

use crate::error::DriverError;
use crate::ids::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

/// Identifies one driver operation; results carry it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId(pub u64);

/// A locally administered MAC address (02:00:...). `Display` prints
/// `02:00:00:00:00:01`; its serde form is the six bytes as a JSON array
/// (`[2,0,0,0,0,1]`), the form the agent protocol and the core's logs have
/// always used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// What a domain is defined with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainSpec {
    pub name: String,
    pub cpu: u32,
    pub mhz: u32,
    pub memory_mb: u64,
    pub disks: Vec<(VolumeId, PoolId)>,
    pub nics: Vec<(Mac, NetworkId)>,
}

/// One request to a driver. Serde form: an object tagged by `"call"` with the
/// variant's name (`{"call":"StartDomain","vm":…,"host":…}`); unknown fields
/// are refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", deny_unknown_fields)]
pub enum DriverCall {
    DefineDomain {
        vm: VmId,
        host: HostId,
        spec: DomainSpec,
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
    /// Copies a volume to a snapshot on secondary storage.
    CreateSnapshot {
        volume: VolumeId,
        pool: PoolId,
        snapshot: SnapshotId,
    },
    DeleteSnapshot {
        snapshot: SnapshotId,
    },
    /// Reads `host`'s heartbeat lease on a shared pool (storage side).
    CheckLease {
        host: HostId,
        pool: PoolId,
    },
    /// Asks `from` whether it can reach `target` (neighbour check).
    PingNeighbour {
        from: HostId,
        target: HostId,
    },
    /// Powers a host off out of band (IPMI/PDU): Ok means proven off.
    PowerOff {
        host: HostId,
    },
    PlugNic {
        vm: VmId,
        host: HostId,
        network: NetworkId,
        mac: Mac,
        #[serde(with = "ip_text")]
        ip: Ipv4Addr,
    },
    UnplugNic {
        vm: VmId,
        host: HostId,
        network: NetworkId,
        mac: Mac,
    },
}

impl DriverCall {
    /// The host that executes the call (storage calls run on the pool's side).
    pub fn host(&self) -> Option<HostId> {
        match self {
            DriverCall::DefineDomain { host, .. }
            | DriverCall::UndefineDomain { host, .. }
            | DriverCall::StartDomain { host, .. }
            | DriverCall::StopDomain { host, .. }
            | DriverCall::RebootDomain { host, .. }
            | DriverCall::AttachDisk { host, .. }
            | DriverCall::DetachDisk { host, .. }
            | DriverCall::PlugNic { host, .. }
            | DriverCall::PingNeighbour { from: host, .. }
            | DriverCall::UnplugNic { host, .. } => Some(*host),
            DriverCall::MigrateDomain { from, .. } => Some(*from),
            _ => None,
        }
    }
    pub fn pool(&self) -> Option<PoolId> {
        match self {
            DriverCall::CopyTemplate { pool, .. }
            | DriverCall::CreateVolume { pool, .. }
            | DriverCall::DeleteVolume { pool, .. }
            | DriverCall::CreateSnapshot { pool, .. } => Some(*pool),
            _ => None,
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            DriverCall::DefineDomain { .. } => "DefineDomain",
            DriverCall::UndefineDomain { .. } => "UndefineDomain",
            DriverCall::StartDomain { .. } => "StartDomain",
            DriverCall::StopDomain { .. } => "StopDomain",
            DriverCall::RebootDomain { .. } => "RebootDomain",
            DriverCall::MigrateDomain { .. } => "MigrateDomain",
            DriverCall::CopyTemplate { .. } => "CopyTemplate",
            DriverCall::CreateVolume { .. } => "CreateVolume",
            DriverCall::DeleteVolume { .. } => "DeleteVolume",
            DriverCall::AttachDisk { .. } => "AttachDisk",
            DriverCall::DetachDisk { .. } => "DetachDisk",
            DriverCall::PlugNic { .. } => "PlugNic",
            DriverCall::CheckLease { .. } => "CheckLease",
            DriverCall::CreateSnapshot { .. } => "CreateSnapshot",
            DriverCall::DeleteSnapshot { .. } => "DeleteSnapshot",
            DriverCall::PingNeighbour { .. } => "PingNeighbour",
            DriverCall::PowerOff { .. } => "PowerOff",
            DriverCall::UnplugNic { .. } => "UnplugNic",
        }
    }
}

/// A driver's answer. Serde form: an object tagged by `"result"`:
/// `{"result":"ok"}`, `{"result":"failed","kind":"not_found","message":"…"}`,
/// `{"result":"lease","renewed_at":123}`, `{"result":"reachable","reachable":true}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum DriverResult {
    Ok,
    Failed(DriverError),
    /// Answer to `CheckLease`: the lease's value as the host last wrote it, if
    /// ever. **Opaque**: a stamp in the host's clock (or a counter) that changes
    /// at every renewal. Management only compares it with earlier reads of the
    /// same lease and never with its own clock (the two clocks may differ).
    Lease {
        renewed_at: Option<u64>,
    },
    /// Answer to `PingNeighbour`.
    Reachable {
        reachable: bool,
    },
}

impl DriverResult {
    /// The error of a failed call.
    pub fn error(&self) -> Option<&DriverError> {
        match self {
            DriverResult::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// An IPv4 address always as dotted text: binary formats would otherwise write
/// a 4-tuple that a tagged enum's buffered decode cannot read back.
mod ip_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::net::Ipv4Addr;

    pub fn serialize<S: Serializer>(ip: &Ipv4Addr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(ip)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv4Addr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
