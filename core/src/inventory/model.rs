//! Inventory entities with CloudStack's concepts, names and state strings.

use crate::ids::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $s)] $v),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),* }
            }
            /// Parses CloudStack's spelling, case-insensitively.
            pub fn parse(s: &str) -> Option<$name> {
                $(if s.eq_ignore_ascii_case($s) { return Some($name::$v); })*
                None
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(NetworkType { Basic = "Basic", Advanced = "Advanced" });
named_enum!(AllocationState { Enabled = "Enabled", Disabled = "Disabled" });
named_enum!(Hypervisor {
    Kvm = "KVM",
    Simulator = "Simulator",
    XenServer = "XenServer",
    VMware = "VMware",
});
named_enum!(ClusterType { CloudManaged = "CloudManaged", ExternalManaged = "ExternalManaged" });
named_enum!(
    /// com.cloud.host.Status
    HostStatus {
        Creating = "Creating",
        Connecting = "Connecting",
        Up = "Up",
        Down = "Down",
        Disconnected = "Disconnected",
        Alert = "Alert",
        Removed = "Removed",
        Error = "Error",
        Rebalancing = "Rebalancing",
        Unknown = "Unknown",
    }
);
named_enum!(
    /// com.cloud.resource.ResourceState
    ResourceState {
        Creating = "Creating",
        Enabled = "Enabled",
        Disabled = "Disabled",
        PrepareForMaintenance = "PrepareForMaintenance",
        ErrorInPrepareForMaintenance = "ErrorInPrepareForMaintenance",
        ErrorInMaintenance = "ErrorInMaintenance",
        Maintenance = "Maintenance",
        Error = "Error",
        Degraded = "Degraded",
    }
);
named_enum!(PoolType {
    NetworkFilesystem = "NetworkFilesystem",
    Gluster = "Gluster",
    Filesystem = "Filesystem",
});
named_enum!(PoolState {
    Up = "Up",
    Disabled = "Disabled",
    Maintenance = "Maintenance",
    PrepareForMaintenance = "PrepareForMaintenance",
    ErrorInMaintenance = "ErrorInMaintenance",
    Down = "Down",
});
named_enum!(StorageType { Shared = "shared", Local = "local" });
named_enum!(ImageFormat {
    Qcow2 = "QCOW2",
    Raw = "RAW",
    Vhd = "VHD",
    Ova = "OVA",
    Iso = "ISO",
});
named_enum!(TemplateZoneState {
    Downloading = "Downloading",
    Ready = "Download Complete",
    Error = "Download Error",
});
named_enum!(
    /// Deployment planners (`vm.deployment.planner`, or per offering).
    PlannerKind {
        FirstFit = "FirstFitPlanner",
        UserDispersing = "UserDispersingPlanner",
        UserConcentratedPod = "UserConcentratedPodPlanner",
    }
);
named_enum!(AffinityKind { HostAntiAffinity = "host anti-affinity", HostAffinity = "host affinity" });
named_enum!(AccountType { User = "User", Admin = "Admin", DomainAdmin = "DomainAdmin" });

/// Where a primary storage pool is visible from.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum PoolScope {
    Cluster(ClusterIdx),
    Zone,
    /// Local storage of one host.
    Host(HostIdx),
}

impl PoolScope {
    pub fn label(&self) -> &'static str {
        match self {
            PoolScope::Cluster(_) => "CLUSTER",
            PoolScope::Zone => "ZONE",
            PoolScope::Host(_) => "HOST",
        }
    }
}

/// Interned tag (host tags, storage tags).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct TagId(pub u32);

/// A small sorted set of interned tags.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct TagSet(Vec<TagId>);

impl TagSet {
    pub fn new(mut tags: Vec<TagId>) -> Self {
        tags.sort_unstable();
        tags.dedup();
        TagSet(tags)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = TagId> + '_ {
        self.0.iter().copied()
    }
    pub fn contains(&self, t: TagId) -> bool {
        self.0.binary_search(&t).is_ok()
    }
    /// Tags of `required` this set lacks (empty when all are present).
    pub fn missing_from(&self, required: &TagSet) -> Vec<TagId> {
        required.iter().filter(|t| !self.contains(*t)).collect()
    }
    pub fn contains_all(&self, required: &TagSet) -> bool {
        required.iter().all(|t| self.contains(t))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Zone {
    pub id: ZoneId,
    pub name: String,
    pub network_type: NetworkType,
    pub dns1: Ipv4Addr,
    pub internal_dns1: Ipv4Addr,
    pub allocation_state: AllocationState,
    pub local_storage_enabled: bool,
    pub guest_cidr: Option<Cidr>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pod {
    pub id: PodId,
    pub name: String,
    pub zone: ZoneIdx,
    pub gateway: Ipv4Addr,
    pub netmask: Ipv4Addr,
    /// Reserved (management) IP range for hosts and system VMs.
    pub start_ip: Ipv4Addr,
    pub end_ip: Ipv4Addr,
    pub allocation_state: AllocationState,
    /// deletePod: kept as a tombstone so pod indices stay valid (`inventory::remove`).
    #[serde(default)]
    pub removed: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cluster {
    pub id: ClusterId,
    pub name: String,
    pub pod: PodIdx,
    pub zone: ZoneIdx,
    pub hypervisor: Hypervisor,
    pub cluster_type: ClusterType,
    pub allocation_state: AllocationState,
    pub hosts: Vec<HostIdx>,
    /// deleteCluster: kept as a tombstone so cluster indices stay valid.
    #[serde(default)]
    pub removed: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Host {
    pub id: HostId,
    pub name: String,
    pub cluster: ClusterIdx,
    pub pod: PodIdx,
    pub zone: ZoneIdx,
    pub hypervisor: Hypervisor,
    pub cpu_cores: u32,
    pub cpu_mhz_per_core: u32,
    pub memory_bytes: u64,
    pub tags: TagSet,
    pub status: HostStatus,
    pub resource_state: ResourceState,
}

impl Host {
    pub fn cpu_mhz_total(&self) -> u64 {
        u64::from(self.cpu_cores) * u64::from(self.cpu_mhz_per_core)
    }
    /// deleteHost leaves the record as a tombstone with CloudStack's `Removed` status.
    pub fn is_removed(&self) -> bool {
        self.status == HostStatus::Removed
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoragePool {
    pub id: PoolId,
    pub name: String,
    pub zone: ZoneIdx,
    pub scope: PoolScope,
    pub pool_type: PoolType,
    pub capacity_bytes: u64,
    pub tags: TagSet,
    pub state: PoolState,
    /// Removed with its host (host-local) or cluster: a tombstone, as for hosts.
    #[serde(default)]
    pub removed: bool,
}

impl StoragePool {
    /// Thin-provisioned pools are overprovisioned; local disk is not.
    pub fn overprovisionable(&self) -> bool {
        matches!(self.pool_type, PoolType::NetworkFilesystem | PoolType::Gluster)
    }
    pub fn is_local(&self) -> bool {
        matches!(self.scope, PoolScope::Host(_))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageStore {
    pub id: ImageStoreId,
    pub name: String,
    pub zone: Option<ZoneIdx>,
    pub url: String,
    pub capacity_bytes: u64,
}

/// Custom (user-sized) offering limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomLimits {
    pub min_cpu: u32,
    pub max_cpu: u32,
    pub min_memory_mb: u64,
    pub max_memory_mb: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceOffering {
    pub id: ServiceOfferingId,
    pub name: String,
    /// For custom offerings these are the defaults (may be zero: then the deploy must give them).
    pub cpu_number: u32,
    pub cpu_speed_mhz: u32,
    pub memory_mb: u64,
    pub offer_ha: bool,
    pub storage_type: StorageType,
    pub host_tags: TagSet,
    /// Storage tags for the root volume.
    pub storage_tags: TagSet,
    pub custom: Option<CustomLimits>,
    pub planner: Option<PlannerKind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiskSize {
    Fixed(u64),
    Custom { min_bytes: u64, max_bytes: u64 },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DiskOffering {
    pub id: DiskOfferingId,
    pub name: String,
    pub size: DiskSize,
    pub storage_tags: TagSet,
    pub storage_type: StorageType,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Template {
    pub id: TemplateId,
    pub name: String,
    pub format: ImageFormat,
    pub size_bytes: u64,
    pub os_type: String,
    pub hypervisor: Hypervisor,
    pub is_iso: bool,
    /// Per-zone readiness (a template is deployable in a zone once Ready there).
    pub zones: Vec<(ZoneIdx, TemplateZoneState)>,
    /// registerTemplate's `url` and `checksum` (as given; empty/None for built-ins).
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub checksum: Option<String>,
    /// Zones where the image is downloaded to secondary storage (not the simulator's
    /// mock images, which are Ready at once), with where it goes and how it ended.
    #[serde(default)]
    pub downloads: Vec<TemplateDownload>,
}

/// A template's image on one zone's secondary storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateDownload {
    pub zone: ZoneIdx,
    pub store: ImageStoreIdx,
    /// Path inside the store, CloudStack's layout: `template/tmpl/<id>/<id>.<ext>`.
    pub path: String,
    /// Size of the stored file once downloaded.
    pub physical_bytes: Option<u64>,
    /// Why the download failed (shown as the template's status in that zone).
    pub error: Option<String>,
}

impl Template {
    pub fn state_in(&self, zone: ZoneIdx) -> Option<TemplateZoneState> {
        self.zones.iter().find(|(z, _)| *z == zone).map(|(_, s)| *s)
    }
    pub fn download_in(&self, zone: ZoneIdx) -> Option<&TemplateDownload> {
        self.downloads.iter().find(|d| d.zone == zone)
    }
    /// Where a downloaded template lives on secondary storage: the store's URL joined with
    /// the path, e.g. `nfs://10.0.0.5/export/secondary/template/tmpl/<id>/<id>.qcow2`.
    /// None for zones without a download (simulated images).
    pub fn image_url(&self, zone: ZoneIdx, stores: &[ImageStore]) -> Option<String> {
        let d = self.download_in(zone)?;
        let store = stores.get(d.store.0 as usize)?;
        Some(format!("{}/{}", store.url.trim_end_matches('/'), d.path))
    }
}

/// IPv4 network in CIDR form.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.split_once('/')?;
        let addr: Ipv4Addr = a.trim().parse().ok()?;
        let prefix: u8 = p.trim().parse().ok()?;
        if prefix > 32 {
            return None;
        }
        let c = Cidr { addr, prefix };
        // The address must be the network address.
        (c.network() == addr).then_some(c)
    }
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }
    /// Usable host addresses (network and broadcast excluded).
    pub fn host_count(&self) -> u64 {
        if self.prefix >= 31 {
            0
        } else {
            (1u64 << (32 - self.prefix)) - 2
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    pub id: NetworkId,
    pub name: String,
    pub zone: ZoneIdx,
    pub cidr: Cidr,
    pub gateway: Ipv4Addr,
    /// None for shared networks.
    pub account: Option<AccountIdx>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Domain {
    pub id: DomainId,
    pub name: String,
    pub parent: Option<DomainIdx>,
    /// `ROOT/sub/child` style path.
    pub path: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub domain: DomainIdx,
    pub account_type: AccountType,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AffinityGroup {
    pub id: AffinityGroupId,
    pub name: String,
    pub kind: AffinityKind,
    pub account: AccountIdx,
}

/// A row of CloudStack's `hypervisor_capabilities`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HypervisorCapability {
    pub hypervisor: Hypervisor,
    pub max_guests: u32,
    pub max_data_volumes: u32,
    pub max_hosts_per_cluster: u32,
}

impl HypervisorCapability {
    /// CloudStack's shipped defaults for the hypervisors Stratus knows.
    pub fn default_for(h: Hypervisor) -> Self {
        let (max_guests, max_data_volumes, max_hosts_per_cluster) = match h {
            Hypervisor::Kvm => (50, 24, 128),
            Hypervisor::Simulator => (50, 24, 128),
            Hypervisor::XenServer => (500, 13, 16),
            Hypervisor::VMware => (128, 13, 32),
        };
        HypervisorCapability {
            hypervisor: h,
            max_guests,
            max_data_volumes,
            max_hosts_per_cluster,
        }
    }
}
