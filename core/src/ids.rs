//! Typed identifiers. Every entity has a UUID newtype (what crosses APIs) and a
//! dense index newtype (what the core uses internally for speed). Neither can be
//! passed where another entity's is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! typed_ids {
    ($($id:ident / $idx:ident : $what:literal),* $(,)?) => {$(
        #[doc = concat!("UUID of a ", $what, ".")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $id(pub Uuid);

        impl $id {
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($id), self.0.hyphenated())
            }
        }

        impl FromStr for $id {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($id)
            }
        }

        #[doc = concat!("Dense in-memory index of a ", $what, " (never leaves the core).")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
        pub struct $idx(pub u32);

        impl $idx {
            #[inline]
            pub fn ix(self) -> usize {
                self.0 as usize
            }
        }
    )*};
}

typed_ids! {
    ZoneId / ZoneIdx: "zone",
    PodId / PodIdx: "pod",
    ClusterId / ClusterIdx: "cluster",
    HostId / HostIdx: "host",
    PoolId / PoolIdx: "primary storage pool",
    ImageStoreId / ImageStoreIdx: "secondary storage (image store)",
    ServiceOfferingId / ServiceOfferingIdx: "compute (service) offering",
    DiskOfferingId / DiskOfferingIdx: "disk offering",
    TemplateId / TemplateIdx: "template or ISO",
    VmId / VmIdx: "virtual machine",
    VolumeId / VolumeIdx: "volume",
    NetworkId / NetworkIdx: "guest network",
    AccountId / AccountIdx: "account",
    DomainId / DomainIdx: "domain",
    AffinityGroupId / AffinityGroupIdx: "affinity group",
    SnapshotId / SnapshotIdx: "volume snapshot",
}
