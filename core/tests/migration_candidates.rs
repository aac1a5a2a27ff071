//! findHostsForMigration's core: every other host of the VM's zone with the
//! allocator's verdict, the reason for each refusal, and nothing changed.

mod common;

use stratus_core::inventory::ResourceState;
use stratus_core::vm::Charge;

#[test]
fn every_other_host_is_listed_with_the_allocators_reason() {
    let mut lab = common::lab(3, 1, 3);
    let vm = lab.deploy("web-1", lab.small).unwrap();
    let (_, v) = lab.cloud.vms().find(|(_, v)| v.id == vm).unwrap();
    let Charge::Used { host } = v.charge else {
        panic!("not running: {:?}", v.charge)
    };
    let here = lab.cloud.inv.host(host).id;
    // One other host out of service: it must be listed, with why.
    let off = *lab.hosts.iter().find(|h| **h != here).unwrap();
    lab.cloud
        .set_host_resource_state(off, ResourceState::Maintenance)
        .unwrap();
    let before = lab.cloud.audit();
    let list = lab.cloud.migration_candidates(vm).unwrap();
    assert_eq!(list.len(), lab.hosts.len() - 1, "every host but its own");
    assert!(list.iter().all(|m| m.host != here));
    let refused = list.iter().find(|m| m.host == off).unwrap();
    let why = refused
        .refusal
        .as_deref()
        .expect("a reason for the host in maintenance");
    assert!(
        why.contains(&lab.host_name(off)) && why.contains("Maintenance"),
        "{why}"
    );
    assert!(list.iter().filter(|m| m.refusal.is_none()).count() >= 1, "{list:?}");
    // Nothing changed: the VM still runs where it ran, the books agree.
    let (_, v) = lab.cloud.vms().find(|(_, v)| v.id == vm).unwrap();
    assert_eq!(v.charge, Charge::Used { host });
    assert_eq!(format!("{:?}", lab.cloud.audit()), format!("{before:?}"));
}

#[test]
fn a_stopped_vm_has_no_candidates() {
    let mut lab = common::lab(4, 1, 2);
    let mut spec = lab.deploy_spec("cold", lab.small);
    spec.start = false;
    let vm = lab.cloud.deploy_vm(spec).unwrap();
    assert!(lab.cloud.migration_candidates(vm).is_err());
}
