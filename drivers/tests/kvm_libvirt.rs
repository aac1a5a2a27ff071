//! The KVM backend against real services (`.ci/kvm-setup.sh`: libvirt hosts
//! A and B, OVS netdev bridge, nfs-ganesha, the guest template on loopback
//! HTTP). Skips without `STRATUS_TEST_LIBVIRT_A`, fails then under
//! `STRATUS_CI=1`. One test, in order: a real guest's whole life on host A,
//! a live migration to B, and a clean host afterwards.
#![cfg(feature = "kvm")]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use stratus_drivers::kvm::network::ovs_port_tag;
use stratus_drivers::kvm::{DomainType, Kvm, KvmConfig, SecondaryStore};
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

fn config(uri: &str, primary: PoolId, console_dir: &str) -> KvmConfig {
    let mut c = KvmConfig::new(uri);
    c.domain_type = if need("STRATUS_TEST_LIBVIRT_DOMAIN_TYPE") == "qemu" {
        DomainType::Qemu
    } else {
        DomainType::Kvm
    };
    c.pools.insert(
        primary,
        PoolSpec::QemuNfs {
            server: need("STRATUS_TEST_NFS_SERVER"),
            export: need("STRATUS_TEST_NFS_PRIMARY_EXPORT"),
            local_path: Some(need("STRATUS_TEST_NFS_PRIMARY_DIR")),
        },
    );
    c.secondary = Some(SecondaryStore::Nfs {
        server: need("STRATUS_TEST_NFS_SERVER"),
        export: need("STRATUS_TEST_NFS_SECONDARY_EXPORT"),
        local_path: Some(need("STRATUS_TEST_NFS_SECONDARY_DIR")),
    });
    c.bridge = need("STRATUS_TEST_OVS_BRIDGE");
    c.bridge_kind = BridgeKind::OvsNetdev;
    c.console_dir = Some(console_dir.to_string());
    c.shutdown_timeout = Duration::from_secs(2);
    c.migration_data_uri = env("STRATUS_TEST_MIGRATE_URI");
    c
}

async fn wait_for(what: &str, limit: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + limit;
    while !ok().await {
        assert!(Instant::now() < until, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn heartbeats(log: &str) -> u64 {
    let prefix = need("STRATUS_TEST_GUEST_HEARTBEAT");
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(&prefix).nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_guest_lives_migrates_and_leaves_nothing_behind() {
    let Some(uri_a) = env("STRATUS_TEST_LIBVIRT_A") else {
        assert!(
            env("STRATUS_CI").is_none(),
            "STRATUS_CI=1 but no KVM services (STRATUS_TEST_LIBVIRT_A)"
        );
        eprintln!("skipped: STRATUS_TEST_LIBVIRT_A is not set");
        return;
    };
    let uri_b = need("STRATUS_TEST_LIBVIRT_B");
    let n = std::process::id() as u128;
    let (host_a, host_b) = (
        HostId(Uuid::from_u128(0xa0 + (n << 16))),
        HostId(Uuid::from_u128(0xb0 + (n << 16))),
    );
    let primary = PoolId(Uuid::from_u128(0x31 + (n << 16)));
    let template = TemplateId(Uuid::from_u128(0x51 + (n << 16)));
    let (vm, root, data) = (
        VmId(Uuid::from_u128(0x11 + (n << 16))),
        VolumeId(Uuid::from_u128(0x41 + (n << 16))),
        VolumeId(Uuid::from_u128(0x42 + (n << 16))),
    );
    let (network, snapshot) = (
        NetworkId(Uuid::from_u128(0x61)),
        SnapshotId(Uuid::from_u128(0x71 + (n << 16))),
    );
    let mac = Mac([2, 0, 0x5e, 0, (n >> 8) as u8, n as u8]);
    let console_dir = format!("{}/console", need("STRATUS_TEST_KVM_DIR"));
    std::fs::create_dir_all(&console_dir).unwrap();
    let mut ca = config(&uri_a, primary, &console_dir);
    ca.network_vlans = BTreeMap::from([(network, 100)]);
    ca.peers.insert(host_b, uri_b.clone());
    let a = Kvm::new(ca.clone());
    let mut cb = ca.clone();
    cb.libvirt_uri = uri_b.clone();
    let b = Kvm::new(cb);

    // As at agent start: what earlier runs left is cleaned per the policy.
    a.reconcile().await.unwrap();
    b.reconcile().await.unwrap();
    let mine = async |k: &Kvm, h: HostId| -> Vec<DomainReport> {
        k.query_domains(h)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.vm == vm)
            .collect()
    };

    // Host facts come from libvirt.
    let facts = a.host_facts(host_a).await.unwrap();
    assert!(facts.cpu_cores >= 1 && facts.memory_bytes > 1 << 30, "{facts:?}");
    assert!(facts.hypervisor_version.starts_with("QEMU "), "{facts:?}");

    // The pool answers over NFS; the template is downloaded, checked, copied.
    let pool_spec = ca.pools[&primary].clone();
    a.ensure_pool(host_a, primary, &pool_spec).await.unwrap();
    let bad = ImageSource {
        url: need("STRATUS_TEST_TEMPLATE_URL"),
        checksum: Some(format!("{{SHA-256}}{}", "0".repeat(64))),
        format: DiskFormat::Qcow2,
    };
    let e = a
        .copy_template(primary, template, 1 << 20, Some(&bad))
        .await
        .unwrap_err();
    assert!(e.message.contains("checksum mismatch"), "{e:?}");
    let good = ImageSource {
        checksum: Some(format!("{{SHA-256}}{}", need("STRATUS_TEST_TEMPLATE_SHA256"))),
        ..bad
    };
    a.copy_template(primary, template, 1 << 20, Some(&good)).await.unwrap();
    let base = format!("{}/tmpl-{template}.qcow2", need("STRATUS_TEST_NFS_PRIMARY_DIR"));
    assert!(std::path::Path::new(&base).exists(), "{base}");
    assert_eq!(
        a.cancel_copy(primary, template).await.unwrap_err().kind,
        ErrorKind::NotFound
    );

    // Root overlay and data volume on NFS primary.
    a.create_volume(primary, root, 256 << 20, Some(template)).await.unwrap();
    a.create_volume(primary, data, 64 << 20, None).await.unwrap();
    let name = format!("i-kvmdrv-{}", n);
    let spec = DomainSpec {
        name: name.clone(),
        cpu: 1,
        mhz: 1000,
        memory_mb: 128,
        disks: vec![(root, primary)],
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
                vlan: None,
                bridge: None,
                model: NicModel::E1000,
            }],
        },
    };
    a.plug_nic(host_a, vm, network, mac, "10.231.0.9".parse().unwrap(), None)
        .await
        .unwrap();
    a.define_domain(host_a, vm, &spec).await.unwrap();
    a.start_domain(host_a, vm).await.unwrap();
    a.start_domain(host_a, vm).await.unwrap(); // a retry does not start twice
    let log = format!("{console_dir}/{name}.log");
    let marker = need("STRATUS_TEST_GUEST_MARKER");
    wait_for("guest marker on the console", Duration::from_secs(90), async || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&marker))
    })
    .await;
    assert_eq!(mine(&a, host_a).await, vec![DomainReport { vm, running: true }]);

    // The NIC is an OVS port tagged with the network's VLAN.
    let ports = stratus_drivers::kvm::network::ovs_ports_of_mac(mac).await.unwrap();
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(ovs_port_tag(&ports[0]).await.unwrap(), Some(100));

    // Storage heartbeat through qemu's NFS client, read back by a peer.
    a.heartbeat(primary, host_a).await.unwrap();
    let first = b.read_lease(primary, host_a).await.unwrap().expect("a lease");
    a.heartbeat(primary, host_a).await.unwrap();
    assert!(b.read_lease(primary, host_a).await.unwrap().unwrap() > first);
    assert_eq!(b.read_lease(primary, host_b).await.unwrap(), None);

    // Data disk hot-plug, a snapshot on secondary storage.
    a.attach_disk(host_a, vm, data, primary).await.unwrap();
    a.attach_disk(host_a, vm, data, primary).await.unwrap();
    assert_eq!(
        a.delete_volume(primary, data).await.unwrap_err().kind,
        ErrorKind::Refused
    );
    a.create_snapshot(primary, root, snapshot).await.unwrap();
    let snap_file = format!("{}/snapshot/{snapshot}.qcow2", need("STRATUS_TEST_NFS_SECONDARY_DIR"));
    assert!(std::path::Path::new(&snap_file).exists());
    a.detach_disk(host_a, vm, data).await.unwrap();

    // Live migration to B: the guest keeps counting.
    let before = heartbeats(&log);
    a.migrate_domain(host_a, host_b, vm, Some(&uri_b)).await.unwrap();
    assert_eq!(mine(&a, host_a).await, vec![]);
    assert_eq!(mine(&b, host_b).await, vec![DomainReport { vm, running: true }]);
    a.migrate_domain(host_a, host_b, vm, Some(&uri_b)).await.unwrap(); // retried: done
    wait_for("heartbeat continues on B", Duration::from_secs(30), async || {
        heartbeats(&log) > before + 2
    })
    .await;

    // Stop on B (graceful, then destroyed), nothing left anywhere.
    b.stop_domain(host_b, vm, false).await.unwrap();
    assert_eq!(mine(&b, host_b).await, vec![]);
    a.unplug_nic(host_a, vm, network, mac).await.unwrap();
    b.unplug_nic(host_b, vm, network, mac).await.unwrap();
    assert_eq!(
        stratus_drivers::kvm::network::ovs_ports_of_mac(mac).await.unwrap(),
        Vec::<String>::new()
    );
    a.create_template(primary, root, TemplateId(Uuid::from_u128(0x52 + (n << 16))))
        .await
        .unwrap();
    a.delete_snapshot(snapshot).await.unwrap();
    a.delete_volume(primary, root).await.unwrap();
    a.delete_volume(primary, data).await.unwrap();
    for f in [format!("{root}.qcow2"), format!("{data}.qcow2")] {
        assert!(!std::path::Path::new(&format!("{}/{f}", need("STRATUS_TEST_NFS_PRIMARY_DIR"))).exists());
    }
    assert!(!std::path::Path::new(&snap_file).exists());

    // Reconciliation: a defined, never started Stratus domain is undefined.
    a.define_domain(host_a, vm, &DomainSpec { disks: vec![], ..spec })
        .await
        .unwrap();
    let r = a.reconcile().await.unwrap();
    assert!(r.undefined.contains(&name), "{r:?}");
    assert_eq!(mine(&a, host_a).await, vec![]);

    let _ = std::fs::remove_file(&base);
    let made = Uuid::from_u128(0x52 + (n << 16));
    let made_file = format!(
        "{}/template/tmpl/{made}/{made}.qcow2",
        need("STRATUS_TEST_NFS_SECONDARY_DIR")
    );
    assert!(
        std::path::Path::new(&made_file).exists(),
        "createTemplate wrote {made_file}"
    );
    let _ = std::fs::remove_dir_all(std::path::Path::new(&made_file).parent().unwrap());
    let _ = std::fs::remove_file(format!(
        "{}/stratus-hb-{host_a}.lease",
        need("STRATUS_TEST_NFS_PRIMARY_DIR")
    ));
    let _ = std::fs::remove_file(&log);
}
