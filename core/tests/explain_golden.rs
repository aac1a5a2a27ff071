//! Golden tests of explanations: a fixed lab, fixed requests, the exact text and
//! JSON the operator sees. Regenerate with `STRATUS_BLESS=1 cargo test`.

mod common;

use stratus_core::CoreError;
use stratus_core::cloud::{HostSpec, ServiceOfferingSpec};
use stratus_core::inventory::*;
use stratus_core::units::GIB;

fn golden(name: &str, actual: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("STRATUS_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden file {path}; run with STRATUS_BLESS=1"));
    assert_eq!(actual, expected, "golden file {name} differs");
}

/// Three clusters failing for three different reasons, one host per reason.
fn crowded_lab() -> common::Lab {
    let mut l = common::lab(42, 3, 2);
    l.set("vm.allocation.algorithm", "firstfit");
    // c1: push CPU past the disable threshold (8 bigs would be 1.0 of 16000 MHz).
    for i in 0..3 {
        let mut s = l.deploy_spec(&format!("load-{i}"), l.big);
        s.host = Some(l.hosts[i % 2]);
        l.cloud.deploy_vm(s).unwrap();
    }
    // c2: one host down, one nearly out of memory.
    l.cloud.set_host_status(l.hosts[2], HostStatus::Alert).unwrap();
    let mem = l
        .cloud
        .add_service_offering(ServiceOfferingSpec::fixed("mem-14", 1, 500, 14 * 1024))
        .unwrap();
    let mut s = l.deploy_spec("fat", mem);
    s.host = Some(l.hosts[3]);
    l.cloud.deploy_vm(s).unwrap();
    // c3: a host in maintenance, a full one, and one too narrow.
    l.cloud
        .set_host_resource_state(l.hosts[4], ResourceState::Maintenance)
        .unwrap();
    let mut s = l.deploy_spec("fat-2", mem);
    s.host = Some(l.hosts[5]);
    l.cloud.deploy_vm(s).unwrap();
    let cl = l.clusters[2];
    l.cloud
        .add_host(HostSpec {
            name: "h-gpu".into(),
            cluster: cl,
            cpu_cores: 1,
            cpu_mhz: 2000,
            memory_bytes: 8 * GIB,
            tags: vec!["gpu".into()],
        })
        .unwrap();
    l
}

#[test]
fn refusal_explains_every_cluster_and_host() {
    let mut l = crowded_lab();
    let err = l.deploy("web-1", l.big).unwrap_err();
    let CoreError::InsufficientCapacity(x) = err else {
        panic!("expected a capacity refusal")
    };
    golden("refusal.txt", &x.to_text());
    golden(
        "refusal.json",
        &(serde_json::to_string_pretty(&x.to_json()).unwrap() + "\n"),
    );
    // Nothing was created by the refused deploy.
    assert!(l.cloud.vms().all(|(_, v)| v.name != "web-1"));
}

#[test]
fn success_explains_the_choice() {
    let mut l = crowded_lab();
    let vm = l.deploy("small-1", l.small).unwrap();
    let _ = vm;
    let i = l.cloud.vm_index(vm).unwrap();
    // Explain a probe of the same shape as the VM just placed.
    let vmr = l.cloud.vm_at(i);
    let mut probe = stratus_core::allocator::PlacementRequest::new("small-2", vmr.account, vmr.zone, vmr.size);
    probe.new_disks.push(stratus_core::allocator::DiskNeed {
        label: "ROOT",
        size_bytes: 2 * GIB,
        tags: TagSet::default(),
        storage_type: StorageType::Shared,
    });
    let x = l.cloud.explain(&probe);
    golden("placed.txt", &x.to_text());
}
