//! Refusals that tell an operator what to change: an offering no host can
//! ever hold is said so before any threshold; threshold refusals carry MHz,
//! enough digits and the setting's full name and scope; a migration inside
//! one cluster does not count the VM twice.

mod common;

use common::lab;
use stratus_core::CoreError;
use stratus_core::allocator::ratio_beside;
use stratus_core::cloud::ServiceOfferingSpec;
use stratus_core::settings::Scope;

fn explanation_of(e: CoreError) -> String {
    match e {
        CoreError::InsufficientCapacity(x) => x.to_text(),
        other => panic!("expected a capacity refusal, got {other}"),
    }
}

#[test]
fn a_vm_larger_than_every_host_is_refused_for_its_size_not_a_threshold() {
    // The case: 64 vCPU / 512 GiB on hosts of 4 cores / 16 GiB here.
    let mut l = lab(1, 1, 2);
    let huge = l
        .cloud
        .add_service_offering(ServiceOfferingSpec::fixed("huge", 64, 2000, 512 * 1024))
        .unwrap();
    let text = explanation_of(l.deploy("giant", huge).unwrap_err());
    let headline = text.lines().next().unwrap();
    assert!(
        headline.contains("it can never fit any host there, even empty"),
        "{headline}"
    );
    assert!(
        headline.contains("needs 64 vCPUs, but the largest host has 4 cores"),
        "{headline}"
    );
    assert!(
        headline.contains("needs 512.0 GiB of memory, but the largest host has 16.0 GiB"),
        "{headline}"
    );
    assert!(!headline.contains("threshold"), "{headline}");
}

#[test]
fn threshold_refusal_never_reads_equal_to_its_threshold() {
    let mut l = lab(1, 1, 2);
    l.set("vm.allocation.algorithm", "firstfit");
    for i in 0..3 {
        l.deploy(&format!("b{i}"), l.big).unwrap();
    }
    // 12000 + 1603 of 16000 MHz = 0.8502: above 0.85, and it must show.
    let odd = l
        .cloud
        .add_service_offering(ServiceOfferingSpec::fixed("odd", 1, 1603, 512))
        .unwrap();
    let c1 = l.clusters[0];
    l.cloud
        .update_setting(
            "cluster.cpu.allocated.capacity.disablethreshold",
            Scope::Cluster(c1),
            "0.85",
        )
        .unwrap();
    let text = explanation_of(l.deploy("x", odd).unwrap_err());
    assert!(
        text.contains("cpu 12000 MHz of 16000 MHz allocated + 1603 MHz for this VM = 0.8502 of capacity, over cluster.cpu.allocated.capacity.disablethreshold 0.85 (cluster override)"),
        "{text}"
    );
    assert_eq!(ratio_beside(0.850_000_1, 0.85), "0.8500001");
    assert_eq!(ratio_beside(0.9, 0.85), "0.9000");
}

#[test]
fn a_migration_inside_one_cluster_does_not_count_the_vm_twice() {
    // 2 hosts x 8000 MHz; three 4000 MHz VMs = 0.75 of the cluster.
    let mut l = lab(1, 1, 2);
    l.set("vm.allocation.algorithm", "firstfit");
    let first = l.deploy("a", l.big).unwrap();
    l.deploy("b", l.big).unwrap();
    l.deploy("c", l.big).unwrap();
    l.set("cluster.cpu.allocated.capacity.disablethreshold", "0.8");
    // Moving a VM from h1 to h2 leaves the cluster at 0.75: allowed. Counted
    // twice it would read (12000 + 4000) / 16000 = 1.0 and be refused.
    let to = l.cloud.begin_migration(first, None).unwrap();
    assert_eq!(to, l.hosts[1]);
    l.cloud.finish_migration(first, true).unwrap();
    // A new VM still pays for itself: 0.75 + 0.25 > 0.8.
    let text = explanation_of(l.deploy("d", l.big).unwrap_err());
    assert!(text.contains("+ 4000 MHz for this VM = 1.0000 of capacity"), "{text}");
}

#[test]
fn a_cluster_that_cannot_reach_the_volume_is_refused_for_storage_not_cpu() {
    // c1 (h1, pool ps1) and c2 (h2, pool ps2); the VM's root disk is on ps1.
    let mut l = lab(1, 2, 1);
    l.set("vm.allocation.algorithm", "firstfit");
    let vm = l.deploy("a", l.big).unwrap();
    assert_eq!(l.cloud.vm(vm).unwrap().host, Some(stratus_core::ids::HostIdx(0)));
    l.cloud.stop_vm(vm, false).unwrap();
    // c2 is also over its CPU threshold; that must not be the reason given.
    let c2 = l.clusters[1];
    l.cloud
        .update_setting(
            "cluster.cpu.allocated.capacity.disablethreshold",
            Scope::Cluster(c2),
            "0.01",
        )
        .unwrap();
    l.cloud
        .set_host_resource_state(l.hosts[0], stratus_core::inventory::ResourceState::Disabled)
        .unwrap();
    let text = explanation_of(l.cloud.start_vm(vm, None).unwrap_err());
    assert!(
        text.contains("cluster c2: existing volume on pool ps1 is not reachable from here"),
        "{text}"
    );
}
