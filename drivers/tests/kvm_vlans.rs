//! Two guests on two guest networks, each NIC tagged as the controller sends
//! it (`NicDetail::vlan`, from the core's network model), on the real OVS
//! bridge of `.ci/kvm-setup.sh`: the two ports carry two different tags and
//! the agent needs no `--network-vlan` for either. Skips without
//! `STRATUS_TEST_LIBVIRT_A`, fails then under `STRATUS_CI=1`. Run under
//! `flock /work/kvm.lock` (shared services).
#![cfg(feature = "kvm")]

use std::time::{Duration, Instant};
use stratus_drivers::kvm::network::{ovs_port_tag, ovs_ports_of_mac};
use stratus_drivers::kvm::{DomainType, Kvm, KvmConfig};
use stratus_drivers::*;
use stratus_wire::ids::*;
use stratus_wire::uuid::Uuid;
use stratus_wire::{DomainSpec, ImageSource, Mac};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn need(name: &str) -> String {
    env(name).unwrap_or_else(|| panic!("{name} is not set (source .ci/kvm-setup.sh's env.sh)"))
}

/// The ports of `mac` once its domain runs (libvirt adds them at start).
async fn tag_of(mac: Mac) -> Option<u16> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let ports = ovs_ports_of_mac(mac).await.unwrap();
        if let [port] = ports.as_slice() {
            return ovs_port_tag(port).await.unwrap();
        }
        assert!(Instant::now() < until, "no single OVS port for {mac}: {ports:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_guest_networks_two_vlan_tags_on_the_ovs_bridge() {
    let Some(uri) = env("STRATUS_TEST_LIBVIRT_A") else {
        assert!(
            env("STRATUS_CI").is_none(),
            "STRATUS_CI=1 but no KVM services (STRATUS_TEST_LIBVIRT_A)"
        );
        eprintln!("skipped: STRATUS_TEST_LIBVIRT_A is not set");
        return;
    };
    let n = std::process::id() as u128;
    let id = |k: u128| Uuid::from_u128(k + (n << 16));
    let host = HostId(id(0xa7));
    let pool = PoolId(id(0x37));
    let template = TemplateId(id(0x57));
    let mut c = KvmConfig::new(&uri);
    c.domain_type = if need("STRATUS_TEST_LIBVIRT_DOMAIN_TYPE") == "qemu" {
        DomainType::Qemu
    } else {
        DomainType::Kvm
    };
    let pool_spec = PoolSpec::QemuNfs {
        server: need("STRATUS_TEST_NFS_SERVER"),
        export: need("STRATUS_TEST_NFS_PRIMARY_EXPORT"),
        local_path: Some(need("STRATUS_TEST_NFS_PRIMARY_DIR")),
    };
    c.pools.insert(pool, pool_spec.clone());
    c.bridge = need("STRATUS_TEST_OVS_BRIDGE");
    c.bridge_kind = BridgeKind::OvsNetdev;
    c.shutdown_timeout = Duration::from_secs(2);
    // No per-network VLAN on the agent: the tags come with the calls.
    assert!(c.network_vlans.is_empty());
    let k = Kvm::new(c);
    k.ensure_pool(host, pool, &pool_spec).await.unwrap();
    let source = ImageSource {
        url: need("STRATUS_TEST_TEMPLATE_URL"),
        checksum: Some(format!("{{SHA-256}}{}", need("STRATUS_TEST_TEMPLATE_SHA256"))),
        format: DiskFormat::Qcow2,
    };
    k.copy_template(pool, template, 1 << 20, Some(&source)).await.unwrap();

    // Two guest networks with the tags the core gave them (tests in
    // sim/tests/network_vlans.rs show the controller sending them).
    let guests = [(0x1u128, 731u16), (0x2, 732)];
    let mut made = Vec::new();
    for (i, vlan) in guests {
        let vm = VmId(id(0x170 + i));
        let root = VolumeId(id(0x470 + i));
        let network = NetworkId(id(0x670 + i));
        let mac = Mac([2, 0, 0x5f, i as u8, (n >> 8) as u8, n as u8]);
        k.create_volume(pool, root, 256 << 20, Some(template)).await.unwrap();
        k.plug_nic(host, vm, network, mac, "10.231.7.9".parse().unwrap(), Some(vlan))
            .await
            .unwrap();
        let spec = DomainSpec {
            name: format!("i-kvmvlan-{n}-{i}"),
            cpu: 1,
            mhz: 500,
            memory_mb: 128,
            disks: vec![(root, pool)],
            nics: vec![(mac, network)],
            devices: DomainDevices {
                disks: vec![DiskDetail {
                    volume: root,
                    format: DiskFormat::Qcow2,
                    bus: DiskBus::Virtio,
                    root: true,
                }],
                nics: vec![NicDetail {
                    mac,
                    vlan: Some(vlan),
                    bridge: None,
                    model: NicModel::E1000,
                }],
            },
        };
        k.define_domain(host, vm, &spec).await.unwrap();
        k.start_domain(host, vm).await.unwrap();
        made.push((vm, root, network, mac, vlan));
    }
    let mut tags = Vec::new();
    for (_, _, _, mac, vlan) in &made {
        let tag = tag_of(*mac).await;
        assert_eq!(tag, Some(*vlan), "the port of {mac} carries its network's tag");
        tags.push(tag);
    }
    assert_ne!(tags[0], tags[1], "two guest networks, two tags");

    // Gone with the domains: no port, no volume left.
    for (vm, root, network, mac, _) in made {
        k.stop_domain(host, vm, true).await.unwrap();
        k.undefine_domain(host, vm).await.unwrap();
        k.unplug_nic(host, vm, network, mac).await.unwrap();
        assert_eq!(ovs_ports_of_mac(mac).await.unwrap(), Vec::<String>::new());
        k.delete_volume(pool, root).await.unwrap();
    }
    let dir = need("STRATUS_TEST_NFS_PRIMARY_DIR");
    let _ = std::fs::remove_file(format!("{dir}/tmpl-{template}.qcow2"));
}
