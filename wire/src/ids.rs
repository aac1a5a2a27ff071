//! Typed identifiers: a UUID newtype per entity (what crosses APIs and the
//! wire). One entity's id cannot be passed where another's is expected. The
//! core pairs each with a dense index newtype (`stratus_core::ids::HostIdx`, …)
//! that never leaves it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_ids {
    ($($id:ident : $what:literal),* $(,)?) => {$(
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
    )*};
}

uuid_ids! {
    ZoneId: "zone",
    PodId: "pod",
    ClusterId: "cluster",
    HostId: "host",
    PoolId: "primary storage pool",
    ImageStoreId: "secondary storage (image store)",
    ServiceOfferingId: "compute (service) offering",
    DiskOfferingId: "disk offering",
    TemplateId: "template or ISO",
    VmId: "virtual machine",
    VolumeId: "volume",
    NetworkId: "guest network",
    AccountId: "account",
    DomainId: "domain",
    AffinityGroupId: "affinity group",
    SnapshotId: "volume snapshot",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_debug_parse_and_serde_are_the_plain_uuid() {
        let h = HostId(Uuid::from_u128(0x1234));
        let text = "00000000-0000-0000-0000-000000001234";
        assert_eq!(h.to_string(), text);
        assert_eq!(format!("{h:?}"), format!("HostId({text})"));
        assert_eq!(text.parse::<HostId>().unwrap(), h);
        assert!("nope".parse::<HostId>().is_err());
        assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<HostId>(&format!("\"{text}\"")).unwrap(), h);
    }
}
