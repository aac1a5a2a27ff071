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

/// What a domain is defined with. `disks` and `nics` say what is attached;
/// `devices` says how (format, bus, VLAN, bridge, model): a real hypervisor
/// needs it, the simulator ignores it. Absent `devices` (older senders, older
/// journals) means every default; it is written last and skipped when
/// default, so older readers and the positional (MessagePack) form still read
/// it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainSpec {
    pub name: String,
    pub cpu: u32,
    pub mhz: u32,
    pub memory_mb: u64,
    pub disks: Vec<(VolumeId, PoolId)>,
    pub nics: Vec<(Mac, NetworkId)>,
    #[serde(default, skip_serializing_if = "DomainDevices::is_default")]
    pub devices: DomainDevices,
}

/// How a domain's disks and NICs are presented (see `DomainSpec`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainDevices {
    /// Details by volume; a disk without one is a qcow2 virtio data disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskDetail>,
    /// Details by MAC; a NIC without one is untagged, virtio, on the
    /// network's default bridge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nics: Vec<NicDetail>,
}

impl DomainDevices {
    pub fn is_default(&self) -> bool {
        self.disks.is_empty() && self.nics.is_empty()
    }
}

impl DomainSpec {
    /// The details of a volume's disk (defaults when none were sent).
    pub fn disk_detail(&self, volume: VolumeId) -> DiskDetail {
        self.devices
            .disks
            .iter()
            .find(|d| d.volume == volume)
            .cloned()
            .unwrap_or(DiskDetail {
                volume,
                format: DiskFormat::Qcow2,
                bus: DiskBus::Virtio,
                root: false,
            })
    }
    /// The details of a NIC (defaults when none were sent).
    pub fn nic_detail(&self, mac: Mac) -> NicDetail {
        self.devices
            .nics
            .iter()
            .find(|n| n.mac == mac)
            .cloned()
            .unwrap_or(NicDetail {
                mac,
                vlan: None,
                bridge: None,
                model: NicModel::Virtio,
            })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskDetail {
    pub volume: VolumeId,
    pub format: DiskFormat,
    pub bus: DiskBus,
    /// The boot disk.
    #[serde(default)]
    pub root: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskFormat {
    Qcow2,
    Raw,
}

impl DiskFormat {
    /// The name qemu-img and libvirt use.
    pub fn qemu_name(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskBus {
    Virtio,
    Scsi,
    Ide,
    Sata,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicDetail {
    pub mac: Mac,
    /// 802.1Q tag of the guest network; `None`: untagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Host bridge; `None`: the host's bridge for the network's physical network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    pub model: NicModel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NicModel {
    Virtio,
    E1000,
    Rtl8139,
}

impl NicModel {
    pub fn libvirt_name(self) -> &'static str {
        match self {
            NicModel::Virtio => "virtio",
            NicModel::E1000 => "e1000",
            NicModel::Rtl8139 => "rtl8139",
        }
    }
}

/// Where a template's image comes from and how to check it (`CopyTemplate`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSource {
    /// `http(s)://…`, `nfs://…` or an absolute path on the host. The
    /// management server refuses internal addresses before it sends one
    /// (`secstorage.allowed.internal.sites`).
    pub url: String,
    /// CloudStack's form: `{SHA-256}hex`, `{MD5}hex`, or bare hex (MD5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    pub format: DiskFormat,
}

/// What backs a primary storage pool on a host (`EnsurePool`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PoolSpec {
    /// A local directory (libvirt `dir` pool): host-local storage.
    Dir { path: String },
    /// NFS mounted by the host (libvirt `netfs` pool): production NFS.
    NetFs {
        server: String,
        export: String,
        mount_point: String,
    },
    /// NFS through qemu's own client (`nfs://` disks, `qemu-img` with
    /// `nfs://` URLs): hosts without a kernel NFS client.
    QemuNfs {
        server: String,
        export: String,
        /// The export's directory, when this host can see it (it serves the
        /// export, or a test machine): used to unlink files, which qemu's
        /// NFS client cannot. Without it, deletes are refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local_path: Option<String>,
    },
}

/// How a host attaches guests to a physical network (`EnsureNetwork`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BridgeKind {
    /// Open vSwitch, kernel datapath.
    Ovs,
    /// Open vSwitch, userspace (`netdev`) datapath.
    OvsNetdev,
    /// A Linux bridge; VLANs through `<bridge>.<vlan>` sub-bridges.
    Linux,
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
        /// How `from` reaches `to`'s hypervisor (its `HostFacts::migration_uri`),
        /// filled in by the management gateway; the core leaves it out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_uri: Option<String>,
    },
    /// Copies a template's base image to a pool (first use). Long: the
    /// agent reports progress and `CancelCopy` stops it.
    CopyTemplate {
        template: TemplateId,
        pool: PoolId,
        size_bytes: u64,
        /// Absent: the image is on the zone's secondary storage at
        /// `template/tmpl/<template id>/<template id>.qcow2` (CloudStack's layout) (older senders say nothing).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<ImageSource>,
    },
    /// Stops a `CopyTemplate` in progress; its partial copy is removed.
    /// `NotFound` if none runs.
    CancelCopy {
        template: TemplateId,
        pool: PoolId,
    },
    /// Makes a template from a (stopped VM's) volume: copied to secondary
    /// storage as `template/tmpl/<template id>/<template id>.qcow2` (CloudStack's layout).
    CreateTemplate {
        volume: VolumeId,
        pool: PoolId,
        template: TemplateId,
    },
    /// Makes sure `host` reaches `pool` (defines and starts it, mounting
    /// if needed). Idempotent.
    EnsurePool {
        host: HostId,
        pool: PoolId,
        spec: PoolSpec,
    },
    /// Makes sure `host` has the bridge of a physical network. Idempotent.
    EnsureNetwork {
        host: HostId,
        network: NetworkId,
        bridge: String,
        kind: BridgeKind,
    },
    /// Puts a volume back to a snapshot's content (VM stopped).
    RevertSnapshot {
        volume: VolumeId,
        pool: PoolId,
        snapshot: SnapshotId,
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
        /// The guest network's 802.1Q tag (as in the domain's `NicDetail`):
        /// a Linux-bridge host makes the VLAN's sub-bridge for it. Written
        /// last and skipped when untagged, so older readers still read it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vlan: Option<u16>,
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
            | DriverCall::EnsurePool { host, .. }
            | DriverCall::EnsureNetwork { host, .. }
            | DriverCall::UnplugNic { host, .. } => Some(*host),
            DriverCall::MigrateDomain { from, .. } => Some(*from),
            _ => None,
        }
    }
    pub fn pool(&self) -> Option<PoolId> {
        match self {
            DriverCall::CopyTemplate { pool, .. }
            | DriverCall::CancelCopy { pool, .. }
            | DriverCall::CreateTemplate { pool, .. }
            | DriverCall::RevertSnapshot { pool, .. }
            | DriverCall::CreateVolume { pool, .. }
            | DriverCall::DeleteVolume { pool, .. }
            | DriverCall::CreateSnapshot { pool, .. } => Some(*pool),
            _ => None,
        }
    }
    /// Every variant's name, as [`DriverCall::name`] gives it (a test keeps
    /// the two in step with the golden fixtures).
    pub const NAMES: &'static [&'static str] = &[
        "DefineDomain",
        "UndefineDomain",
        "StartDomain",
        "StopDomain",
        "RebootDomain",
        "MigrateDomain",
        "CopyTemplate",
        "CancelCopy",
        "CreateTemplate",
        "EnsurePool",
        "EnsureNetwork",
        "RevertSnapshot",
        "CreateVolume",
        "DeleteVolume",
        "AttachDisk",
        "DetachDisk",
        "PlugNic",
        "CheckLease",
        "CreateSnapshot",
        "DeleteSnapshot",
        "PingNeighbour",
        "PowerOff",
        "UnplugNic",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            DriverCall::DefineDomain { .. } => "DefineDomain",
            DriverCall::UndefineDomain { .. } => "UndefineDomain",
            DriverCall::StartDomain { .. } => "StartDomain",
            DriverCall::StopDomain { .. } => "StopDomain",
            DriverCall::RebootDomain { .. } => "RebootDomain",
            DriverCall::MigrateDomain { .. } => "MigrateDomain",
            DriverCall::CopyTemplate { .. } => "CopyTemplate",
            DriverCall::CancelCopy { .. } => "CancelCopy",
            DriverCall::CreateTemplate { .. } => "CreateTemplate",
            DriverCall::EnsurePool { .. } => "EnsurePool",
            DriverCall::EnsureNetwork { .. } => "EnsureNetwork",
            DriverCall::RevertSnapshot { .. } => "RevertSnapshot",
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

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn spec() -> DomainSpec {
        DomainSpec {
            name: "i-2-7-VM".into(),
            cpu: 1,
            mhz: 1000,
            memory_mb: 128,
            disks: vec![(VolumeId(Uuid::from_u128(1)), PoolId(Uuid::from_u128(2)))],
            nics: vec![(Mac([2, 0, 0, 0, 0, 1]), NetworkId(Uuid::from_u128(3)))],
            devices: DomainDevices::default(),
        }
    }

    #[test]
    fn a_spec_without_devices_reads_and_writes_the_older_form() {
        let older = r#"{"name":"i-2-7-VM","cpu":1,"mhz":1000,"memory_mb":128,"disks":[["00000000-0000-0000-0000-000000000001","00000000-0000-0000-0000-000000000002"]],"nics":[[[2,0,0,0,0,1],"00000000-0000-0000-0000-000000000003"]]}"#;
        let read: DomainSpec = serde_json::from_str(older).unwrap();
        assert_eq!(read, spec());
        assert_eq!(serde_json::to_string(&read).unwrap(), older);
        // Defaults for what was not said.
        let d = read.disk_detail(VolumeId(Uuid::from_u128(1)));
        assert_eq!((d.format, d.bus, d.root), (DiskFormat::Qcow2, DiskBus::Virtio, false));
        let n = read.nic_detail(Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!((n.vlan, n.model), (None, NicModel::Virtio));
    }

    #[test]
    fn devices_round_trip_and_are_found_by_volume_and_mac() {
        let mut s = spec();
        s.devices.disks.push(DiskDetail {
            volume: VolumeId(Uuid::from_u128(1)),
            format: DiskFormat::Raw,
            bus: DiskBus::Scsi,
            root: true,
        });
        s.devices.nics.push(NicDetail {
            mac: Mac([2, 0, 0, 0, 0, 1]),
            vlan: Some(100),
            bridge: Some("cloudbr0".into()),
            model: NicModel::E1000,
        });
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains(r#""vlan":100"#), "{text}");
        let back: DomainSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.disk_detail(VolumeId(Uuid::from_u128(1))).format, DiskFormat::Raw);
        assert_eq!(back.nic_detail(Mac([2, 0, 0, 0, 0, 1])).vlan, Some(100));
    }

    #[test]
    fn a_copy_without_source_keeps_the_older_form() {
        let older = r#"{"call":"CopyTemplate","template":"00000000-0000-0000-0000-000000000001","pool":"00000000-0000-0000-0000-000000000002","size_bytes":5}"#;
        let c: DriverCall = serde_json::from_str(older).unwrap();
        assert!(matches!(c, DriverCall::CopyTemplate { source: None, .. }));
        assert_eq!(serde_json::to_string(&c).unwrap(), older);
        let with = r#"{"call":"CopyTemplate","template":"00000000-0000-0000-0000-000000000001","pool":"00000000-0000-0000-0000-000000000002","size_bytes":5,"source":{"url":"http://127.0.0.1:8080/t.qcow2","checksum":"{SHA-256}00","format":"qcow2"}}"#;
        let c: DriverCall = serde_json::from_str(with).unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), with);
    }
}
