//! libvirt domain XML, generated one way from a `DomainSpec` (quick-xml's
//! serializer over partial structs: only what Stratus sets). libvirt fills in
//! the rest (PCI addresses, controllers); what it answers is never parsed
//! back into these structs.

use super::{DirectKernel, DomainType, VolumeLocation};
use serde::Serialize;
use stratus_wire::ids::VmId;
use stratus_wire::{DiskDetail, DomainSpec, NicDetail};

/// Written into every domain Stratus defines; reconciliation only touches
/// domains that carry it.
pub const MANAGED_MARK: &str = "managed by stratus";

/// Everything the XML needs beyond the spec: resolved on the host.
#[derive(Clone, Debug)]
pub struct DomainPlan<'a> {
    pub vm: VmId,
    pub spec: &'a DomainSpec,
    pub domain_type: DomainType,
    /// Each disk with where its volume (and its backing image) lives.
    pub disks: Vec<(DiskDetail, VolumeLocation, Option<VolumeLocation>)>,
    /// Each NIC with the bridge it plugs into and whether that is OVS.
    pub nics: Vec<(NicDetail, String, bool)>,
    pub direct_kernel: Option<&'a DirectKernel>,
    /// Serial console log file.
    pub console_log: Option<String>,
}

#[derive(Serialize)]
#[serde(rename = "domain")]
struct Domain {
    #[serde(rename = "@type")]
    kind: &'static str,
    name: String,
    uuid: String,
    description: &'static str,
    memory: Amount,
    vcpu: u32,
    cputune: CpuTune,
    os: Os,
    features: Features,
    on_poweroff: &'static str,
    on_reboot: &'static str,
    on_crash: &'static str,
    devices: Devices,
}

#[derive(Serialize)]
struct Amount {
    #[serde(rename = "@unit")]
    unit: &'static str,
    #[serde(rename = "$text")]
    value: u64,
}

/// CPU shares proportional to the offering's MHz × cores (as CloudStack's
/// KVM agent does), so contention follows what was sold.
#[derive(Serialize)]
struct CpuTune {
    shares: u64,
}

#[derive(Serialize)]
struct Os {
    #[serde(rename = "type")]
    kind: OsType,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    initrd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmdline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    boot: Option<Boot>,
}

#[derive(Serialize)]
struct OsType {
    #[serde(rename = "@arch")]
    arch: &'static str,
    #[serde(rename = "@machine")]
    machine: &'static str,
    #[serde(rename = "$text")]
    value: &'static str,
}

#[derive(Serialize)]
struct Boot {
    #[serde(rename = "@dev")]
    dev: &'static str,
}

#[derive(Serialize)]
struct Features {
    acpi: Empty,
    apic: Empty,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Devices {
    #[serde(rename = "disk")]
    disks: Vec<Disk>,
    #[serde(rename = "interface")]
    interfaces: Vec<Interface>,
    serial: Serial,
    console: Console,
}

#[derive(Serialize)]
#[serde(rename = "disk")]
pub(crate) struct Disk {
    #[serde(rename = "@type")]
    kind: &'static str,
    #[serde(rename = "@device")]
    device: &'static str,
    driver: DiskDriver,
    source: DiskSource,
    /// The backing image of a qcow2 overlay, said explicitly so qemu opens
    /// it with the same NFS identity (it would otherwise as its own uid).
    #[serde(rename = "backingStore", skip_serializing_if = "Option::is_none")]
    backing: Option<BackingStore>,
    target: Target,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
}

#[derive(Serialize)]
struct BackingStore {
    #[serde(rename = "@type")]
    kind: &'static str,
    format: Format,
    source: DiskSource,
    /// The chain ends here.
    #[serde(rename = "backingStore")]
    end: Empty,
}

#[derive(Serialize)]
struct Format {
    #[serde(rename = "@type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct DiskDriver {
    #[serde(rename = "@name")]
    name: &'static str,
    #[serde(rename = "@type")]
    format: &'static str,
    #[serde(rename = "@cache")]
    cache: &'static str,
}

#[derive(Serialize)]
struct DiskSource {
    #[serde(rename = "@file", skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(rename = "@protocol", skip_serializing_if = "Option::is_none")]
    protocol: Option<&'static str>,
    #[serde(rename = "@name", skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<SourceHost>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<Identity>,
}

#[derive(Serialize)]
struct SourceHost {
    #[serde(rename = "@name")]
    name: String,
}

#[derive(Serialize)]
struct Identity {
    #[serde(rename = "@user")]
    user: &'static str,
    #[serde(rename = "@group")]
    group: &'static str,
}

#[derive(Serialize)]
struct Target {
    #[serde(rename = "@dev")]
    dev: String,
    #[serde(rename = "@bus")]
    bus: &'static str,
}

#[derive(Serialize)]
struct Interface {
    #[serde(rename = "@type")]
    kind: &'static str,
    mac: Address,
    source: BridgeSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    virtualport: Option<VirtualPort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<Vlan>,
    model: Model,
}

#[derive(Serialize)]
struct Address {
    #[serde(rename = "@address")]
    address: String,
}

#[derive(Serialize)]
struct BridgeSource {
    #[serde(rename = "@bridge")]
    bridge: String,
}

#[derive(Serialize)]
struct VirtualPort {
    #[serde(rename = "@type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Vlan {
    tag: Tag,
}

#[derive(Serialize)]
struct Tag {
    #[serde(rename = "@id")]
    id: u16,
}

#[derive(Serialize)]
struct Model {
    #[serde(rename = "@type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Serial {
    #[serde(rename = "@type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<Log>,
    target: SerialTarget,
}

#[derive(Serialize)]
struct Log {
    #[serde(rename = "@file")]
    file: String,
    #[serde(rename = "@append")]
    append: &'static str,
}

#[derive(Serialize)]
struct SerialTarget {
    #[serde(rename = "@port")]
    port: u32,
}

#[derive(Serialize)]
struct Console {
    #[serde(rename = "@type")]
    kind: &'static str,
    target: ConsoleTarget,
}

#[derive(Serialize)]
struct ConsoleTarget {
    #[serde(rename = "@type")]
    kind: &'static str,
    #[serde(rename = "@port")]
    port: u32,
}

/// The guest device name of the `index`-th disk on a bus (`vda`, `sdb`, `hdc`).
pub fn target_dev(bus: stratus_wire::DiskBus, index: usize) -> String {
    let prefix = bus_prefix(bus);
    let mut n = index;
    let mut letters = Vec::new();
    loop {
        letters.push((b'a' + (n % 26) as u8) as char);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    letters.reverse();
    format!("{prefix}{}", letters.into_iter().collect::<String>())
}

fn bus_prefix(bus: stratus_wire::DiskBus) -> &'static str {
    use stratus_wire::DiskBus::*;
    match bus {
        Virtio => "vd",
        Scsi | Sata => "sd",
        Ide => "hd",
    }
}

fn bus_name(bus: stratus_wire::DiskBus) -> &'static str {
    use stratus_wire::DiskBus::*;
    match bus {
        Virtio => "virtio",
        Scsi => "scsi",
        Ide => "ide",
        Sata => "sata",
    }
}

fn source(loc: &VolumeLocation) -> DiskSource {
    match loc {
        VolumeLocation::File(path) => DiskSource {
            file: Some(path.clone()),
            protocol: None,
            name: None,
            host: None,
            identity: None,
        },
        VolumeLocation::Nfs { server, path } => DiskSource {
            file: None,
            protocol: Some("nfs"),
            name: Some(path.clone()),
            host: Some(SourceHost { name: server.clone() }),
            // qemu's NFS client speaks as this uid/gid.
            identity: Some(Identity {
                user: "root",
                group: "root",
            }),
        },
    }
}

fn kind(loc: &VolumeLocation) -> &'static str {
    if matches!(loc, VolumeLocation::File(_)) {
        "file"
    } else {
        "network"
    }
}

/// One disk; `backing`: the qcow2 base image under an overlay.
pub(crate) fn disk(detail: &DiskDetail, loc: &VolumeLocation, backing: Option<&VolumeLocation>, dev: String) -> Disk {
    Disk {
        kind: kind(loc),
        device: "disk",
        driver: DiskDriver {
            name: "qemu",
            format: detail.format.qemu_name(),
            // Live migration over shared storage needs no host page cache.
            cache: "none",
        },
        source: source(loc),
        backing: backing.map(|b| BackingStore {
            kind: kind(b),
            format: Format { kind: "qcow2" },
            source: source(b),
            end: Empty {},
        }),
        target: Target {
            dev,
            bus: bus_name(detail.bus),
        },
        // The guest sees the volume id (first 20 characters, as CloudStack).
        serial: Some(detail.volume.to_string().replace('-', "").chars().take(20).collect()),
    }
}

/// One `<disk>` element alone (hot attach and detach).
pub fn disk_xml(detail: &DiskDetail, loc: &VolumeLocation, dev: String) -> String {
    to_xml(&disk(detail, loc, None, dev))
}

fn to_xml<T: Serialize>(value: &T) -> String {
    let mut out = String::new();
    let mut ser = quick_xml::se::Serializer::new(&mut out);
    ser.indent(' ', 2);
    value.serialize(ser).expect("domain XML serializes");
    out
}

/// The whole `<domain>` document.
pub fn domain_xml(plan: &DomainPlan<'_>) -> String {
    let spec = plan.spec;
    let mut per_bus: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let disks = plan
        .disks
        .iter()
        .map(|(d, loc, backing)| {
            let n = per_bus.entry(bus_prefix(d.bus)).or_insert(0);
            let dev = target_dev(d.bus, *n);
            *n += 1;
            disk(d, loc, backing.as_ref(), dev)
        })
        .collect();
    let interfaces = plan
        .nics
        .iter()
        .map(|(n, bridge, ovs)| Interface {
            kind: "bridge",
            mac: Address {
                address: n.mac.to_string(),
            },
            source: BridgeSource { bridge: bridge.clone() },
            virtualport: ovs.then_some(VirtualPort { kind: "openvswitch" }),
            // A Linux bridge carries one VLAN per bridge: the tag is in its choice.
            vlan: n.vlan.filter(|_| *ovs).map(|id| Vlan { tag: Tag { id } }),
            model: Model {
                kind: n.model.libvirt_name(),
            },
        })
        .collect();
    let kernel = plan.direct_kernel;
    let domain = Domain {
        kind: plan.domain_type.libvirt_name(),
        name: spec.name.clone(),
        uuid: plan.vm.to_string(),
        description: MANAGED_MARK,
        memory: Amount {
            unit: "MiB",
            value: spec.memory_mb,
        },
        vcpu: spec.cpu,
        cputune: CpuTune {
            shares: (u64::from(spec.cpu) * u64::from(spec.mhz)).max(2),
        },
        os: Os {
            kind: OsType {
                arch: "x86_64",
                machine: "pc",
                value: "hvm",
            },
            kernel: kernel.map(|k| k.kernel.clone()),
            initrd: kernel.map(|k| k.initrd.clone()),
            cmdline: kernel.map(|k| k.cmdline.clone()),
            boot: kernel.is_none().then_some(Boot { dev: "hd" }),
        },
        features: Features {
            acpi: Empty {},
            apic: Empty {},
        },
        on_poweroff: "destroy",
        on_reboot: "restart",
        on_crash: "destroy",
        devices: Devices {
            disks,
            interfaces,
            serial: Serial {
                kind: "pty",
                log: plan.console_log.as_ref().map(|f| Log {
                    file: f.clone(),
                    append: "on",
                }),
                target: SerialTarget { port: 0 },
            },
            console: Console {
                kind: "pty",
                target: ConsoleTarget {
                    kind: "serial",
                    port: 0,
                },
            },
        },
    };
    to_xml(&domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_wire::ids::*;
    use stratus_wire::uuid::Uuid;
    use stratus_wire::{DiskBus, DiskFormat, DomainDevices, Mac, NicModel};

    fn spec() -> DomainSpec {
        DomainSpec {
            name: "i-2-7-VM".into(),
            cpu: 2,
            mhz: 1000,
            memory_mb: 128,
            disks: vec![
                (VolumeId(Uuid::from_u128(0x41)), PoolId(Uuid::from_u128(0x31))),
                (VolumeId(Uuid::from_u128(0x42)), PoolId(Uuid::from_u128(0x32))),
            ],
            nics: vec![(Mac([2, 0, 0, 0, 0, 1]), NetworkId(Uuid::from_u128(0x61)))],
            devices: DomainDevices::default(),
        }
    }

    fn plan<'a>(spec: &'a DomainSpec, kernel: Option<&'a DirectKernel>, ovs: bool) -> DomainPlan<'a> {
        let root = DiskDetail {
            volume: spec.disks[0].0,
            format: DiskFormat::Qcow2,
            bus: DiskBus::Virtio,
            root: true,
        };
        DomainPlan {
            vm: VmId(Uuid::from_u128(0x11)),
            spec,
            domain_type: DomainType::Qemu,
            disks: vec![
                (
                    root,
                    VolumeLocation::Nfs {
                        server: "127.0.0.1".into(),
                        path: "/primary/00000000-0000-0000-0000-000000000041.qcow2".into(),
                    },
                    Some(VolumeLocation::Nfs {
                        server: "127.0.0.1".into(),
                        path: "/primary/tmpl-00000000-0000-0000-0000-000000000051.qcow2".into(),
                    }),
                ),
                (
                    spec.disk_detail(spec.disks[1].0),
                    VolumeLocation::File("/var/lib/stratus/local/00000000-0000-0000-0000-000000000042.qcow2".into()),
                    None,
                ),
            ],
            nics: vec![(
                NicDetail {
                    mac: spec.nics[0].0,
                    vlan: Some(100),
                    bridge: None,
                    model: NicModel::E1000,
                },
                if ovs { "cloudbr0".into() } else { "cloudbr0-100".into() },
                ovs,
            )],
            direct_kernel: kernel,
            console_log: Some("/var/log/stratus/console/i-2-7-VM.log".into()),
        }
    }

    #[test]
    fn an_nfs_root_and_a_local_data_disk_on_an_ovs_vlan() {
        let s = spec();
        insta::assert_snapshot!("ovs_nfs_qemu", domain_xml(&plan(&s, None, true)));
    }

    #[test]
    fn direct_kernel_boot_on_a_linux_bridge() {
        let s = spec();
        let k = DirectKernel {
            kernel: "/srv/guest/vmlinuz".into(),
            initrd: "/srv/guest/initrd.gz".into(),
            cmdline: "console=ttyS0 panic=-1 quiet".into(),
        };
        insta::assert_snapshot!("linux_bridge_direct_kernel", domain_xml(&plan(&s, Some(&k), false)));
    }

    #[test]
    fn device_names_follow_libvirts_scheme() {
        assert_eq!(target_dev(DiskBus::Virtio, 0), "vda");
        assert_eq!(target_dev(DiskBus::Scsi, 1), "sdb");
        assert_eq!(target_dev(DiskBus::Virtio, 25), "vdz");
        assert_eq!(target_dev(DiskBus::Virtio, 26), "vdaa");
        assert_eq!(target_dev(DiskBus::Ide, 2), "hdc");
    }
}
