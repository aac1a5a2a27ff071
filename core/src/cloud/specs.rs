//! Inputs for building the inventory through `Cloud` (typed IDs, plain values).

use crate::ids::*;
use crate::inventory::*;
use serde::Deserialize;
use std::net::Ipv4Addr;

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct ZoneSpec {
    pub name: String,
    pub network_type: NetworkType,
    #[serde(with = "crate::serde_util::ip_text")]
    pub dns1: Ipv4Addr,
    #[serde(with = "crate::serde_util::ip_text")]
    pub internal_dns1: Ipv4Addr,
    pub guest_cidr: Option<String>,
    pub local_storage_enabled: bool,
    /// Guest VLAN range, inclusive (see `Zone::guest_vlans`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_vlans: Option<(u16, u16)>,
}

impl ZoneSpec {
    pub fn advanced(name: &str) -> Self {
        ZoneSpec {
            name: name.to_string(),
            network_type: NetworkType::Advanced,
            dns1: Ipv4Addr::new(192, 0, 2, 53),
            internal_dns1: Ipv4Addr::new(192, 0, 2, 53),
            guest_cidr: Some("10.1.0.0/16".to_string()),
            local_storage_enabled: true,
            guest_vlans: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct PodSpec {
    pub name: String,
    pub zone: ZoneId,
    #[serde(with = "crate::serde_util::ip_text")]
    pub gateway: Ipv4Addr,
    #[serde(with = "crate::serde_util::ip_text")]
    pub netmask: Ipv4Addr,
    #[serde(with = "crate::serde_util::ip_text")]
    pub start_ip: Ipv4Addr,
    #[serde(with = "crate::serde_util::ip_text")]
    pub end_ip: Ipv4Addr,
}

impl PodSpec {
    /// A /24 management network `172.16.<n>.0`, reserved range .10–.250.
    pub fn numbered(name: &str, zone: ZoneId, n: u8) -> Self {
        PodSpec {
            name: name.to_string(),
            zone,
            gateway: Ipv4Addr::new(172, 16, n, 1),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            start_ip: Ipv4Addr::new(172, 16, n, 10),
            end_ip: Ipv4Addr::new(172, 16, n, 250),
        }
    }
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct HostSpec {
    pub name: String,
    pub cluster: ClusterId,
    pub cpu_cores: u32,
    pub cpu_mhz: u32,
    pub memory_bytes: u64,
    pub tags: Vec<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize)]
pub enum PoolScopeSpec {
    Cluster(ClusterId),
    Zone,
    Host(HostId),
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct PoolSpec {
    pub name: String,
    pub zone: ZoneId,
    pub scope: PoolScopeSpec,
    pub pool_type: PoolType,
    pub capacity_bytes: u64,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct ServiceOfferingSpec {
    pub name: String,
    pub cpu_number: u32,
    pub cpu_speed_mhz: u32,
    pub memory_mb: u64,
    pub offer_ha: bool,
    pub storage_type: StorageType,
    pub host_tags: Vec<String>,
    pub storage_tags: Vec<String>,
    pub custom: Option<CustomLimits>,
    pub planner: Option<PlannerKind>,
}

impl ServiceOfferingSpec {
    pub fn fixed(name: &str, cpu_number: u32, cpu_speed_mhz: u32, memory_mb: u64) -> Self {
        ServiceOfferingSpec {
            name: name.to_string(),
            cpu_number,
            cpu_speed_mhz,
            memory_mb,
            offer_ha: false,
            storage_type: StorageType::Shared,
            host_tags: Vec::new(),
            storage_tags: Vec::new(),
            custom: None,
            planner: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct DiskOfferingSpec {
    pub name: String,
    pub size: DiskSize,
    pub storage_tags: Vec<String>,
    pub storage_type: StorageType,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct TemplateSpec {
    pub name: String,
    pub format: ImageFormat,
    pub size_bytes: u64,
    pub os_type: String,
    pub hypervisor: Hypervisor,
    pub is_iso: bool,
    pub ready_in: Vec<ZoneId>,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct NetworkSpec {
    pub name: String,
    pub zone: ZoneId,
    pub cidr: String,
    pub account: Option<AccountId>,
    /// An explicit 802.1Q tag (createNetwork `vlan`); `None`: the lowest free
    /// one of the zone's guest range, or untagged when the zone has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
}

/// deployVirtualMachine's parameters that matter to the core.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
pub struct DeploySpec {
    pub name: String,
    pub account: Option<AccountId>,
    pub zone: Option<ZoneId>,
    pub offering: Option<ServiceOfferingId>,
    pub template: Option<TemplateId>,
    pub disk_offering: Option<DiskOfferingId>,
    /// For custom disk offerings (`size`, GiB).
    pub data_disk_gib: Option<u64>,
    /// `rootdisksize`, GiB.
    pub root_disk_gib: Option<u64>,
    /// For custom offerings (`details[0].cpuNumber` etc.).
    pub cpu_number: Option<u32>,
    pub cpu_speed_mhz: Option<u32>,
    pub memory_mb: Option<u64>,
    pub host: Option<HostId>,
    pub affinity_groups: Vec<AffinityGroupId>,
    pub network: Option<NetworkId>,
    pub ha: Option<bool>,
    pub planner: Option<PlannerKind>,
    /// `startvm` (CloudStack's default is true).
    pub start: bool,
}
