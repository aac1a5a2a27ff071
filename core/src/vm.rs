//! Virtual machines and volumes as the core records them.

use crate::capacity::Footprint;
use crate::ids::*;
use crate::inventory::{PlannerKind, StorageType, TagSet};
use crate::units::{MIB, Millis};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! state_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
        pub enum $name { $($v),* }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => stringify!($v)),* }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

state_enum!(
    /// VirtualMachine.State, with CloudStack's spelling.
    VmState { Stopped, Starting, Running, Stopping, Migrating, Destroyed, Expunging, Error, Unknown, Shutdown }
);
state_enum!(
    /// Snapshot.State (the ones Stratus uses).
    SnapshotState { Allocated, BackedUp }
);
state_enum!(VolumeState {
    Allocated,
    Creating,
    Ready,
    Destroy,
    Expunged
});
state_enum!(VolumeType { Root, DataDisk });

/// The compute size of a VM (from its offering, or given for custom offerings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSize {
    pub cpu_number: u32,
    pub cpu_speed_mhz: u32,
    pub memory_mb: u64,
}

impl VmSize {
    pub fn footprint(&self) -> Footprint {
        Footprint {
            cpu_mhz: u64::from(self.cpu_number) * u64::from(self.cpu_speed_mhz),
            cores: u64::from(self.cpu_number),
            mem_bytes: self.memory_mb * MIB,
        }
    }
}

/// Where a VM's CPU and memory are counted. This is the single source of truth
/// for compute capacity: the book is the sum of these over all VMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Charge {
    None,
    /// Counted as used (Starting, Running, Stopping).
    Used {
        host: HostIdx,
    },
    /// Stopped: reserved on its last host until `until`.
    Reserved {
        host: HostIdx,
        until: Millis,
    },
    /// Live migration: used on the source, reserved on the destination.
    Migrating {
        from: HostIdx,
        to: HostIdx,
    },
}

impl Charge {
    /// Hosts this charge touches (for affinity and dispersion).
    pub fn hosts(&self) -> impl Iterator<Item = HostIdx> {
        let (a, b) = match *self {
            Charge::None => (None, None),
            Charge::Used { host } | Charge::Reserved { host, .. } => (Some(host), None),
            Charge::Migrating { from, to } => (Some(from), Some(to)),
        };
        a.into_iter().chain(b)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vm {
    pub id: VmId,
    pub name: String,
    pub display_name: String,
    pub account: AccountIdx,
    pub zone: ZoneIdx,
    pub offering: ServiceOfferingIdx,
    pub template: TemplateIdx,
    pub network: Option<NetworkIdx>,
    pub state: VmState,
    pub host: Option<HostIdx>,
    pub last_host: Option<HostIdx>,
    pub ha_enabled: bool,
    pub size: VmSize,
    pub host_tags: TagSet,
    pub storage_type: StorageType,
    pub planner: Option<PlannerKind>,
    pub volumes: Vec<VolumeIdx>,
    pub affinity_groups: Vec<AffinityGroupIdx>,
    /// The guest NIC (one per VM), once an address was allocated.
    pub nic: Option<Nic>,
    pub charge: Charge,
    pub created: Millis,
    pub state_since: Millis,
}

/// A guest NIC: its network, address and MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    pub network: NetworkIdx,
    pub ip: std::net::Ipv4Addr,
    pub mac: [u8; 6],
}

/// A volume snapshot, kept on secondary storage (survives the volume).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub name: String,
    pub volume: VolumeId,
    pub volume_name: String,
    pub account: AccountIdx,
    pub zone: ZoneIdx,
    pub size_bytes: u64,
    pub state: SnapshotState,
    pub created: Millis,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Volume {
    pub id: VolumeId,
    pub name: String,
    pub vm: Option<VmIdx>,
    pub volume_type: VolumeType,
    pub size_bytes: u64,
    pub storage_tags: TagSet,
    pub storage_type: StorageType,
    pub disk_offering: Option<DiskOfferingIdx>,
    pub pool: Option<PoolIdx>,
    /// Bytes physically occupied on the pool (see `PoolUsage`).
    pub physical_bytes: u64,
    /// Whether the volume exists on its pool's storage (drivers created it).
    pub created: bool,
    pub state: VolumeState,
    pub account: AccountIdx,
    pub zone: ZoneIdx,
}

impl Volume {
    /// Whether this volume counts against its pool's allocated capacity.
    pub fn counts_on_pool(&self) -> Option<PoolIdx> {
        if self.state == VolumeState::Expunged {
            None
        } else {
            self.pool
        }
    }
}
