//! Typed identifiers. Every entity has a UUID newtype (what crosses APIs,
//! defined in `stratus-wire` and re-exported here) and a dense index newtype
//! (what the core uses internally for speed). Neither can be passed where
//! another entity's is expected.

pub use stratus_wire::ids::*;

use serde::{Deserialize, Serialize};

macro_rules! typed_ids {
    ($($idx:ident : $what:literal),* $(,)?) => {$(
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
    ZoneIdx: "zone",
    PodIdx: "pod",
    ClusterIdx: "cluster",
    HostIdx: "host",
    PoolIdx: "primary storage pool",
    ImageStoreIdx: "secondary storage (image store)",
    ServiceOfferingIdx: "compute (service) offering",
    DiskOfferingIdx: "disk offering",
    TemplateIdx: "template or ISO",
    VmIdx: "virtual machine",
    VolumeIdx: "volume",
    NetworkIdx: "guest network",
    AccountIdx: "account",
    DomainIdx: "domain",
    AffinityGroupIdx: "affinity group",
    SnapshotIdx: "volume snapshot",
}
