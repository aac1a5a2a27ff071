mod common;

use common::lab;
use stratus_core::CoreError;
use stratus_core::vm::VmState;

#[test]
fn deploy_stop_start_destroy_expunge_keeps_the_book_exact() {
    let mut l = lab(1, 2, 2);
    let vm = l.deploy("web-1", l.small).unwrap();
    assert_eq!(l.cloud.vm(vm).unwrap().state, VmState::Running);
    assert!(l.cloud.audit().ok());
    l.cloud.stop_vm(vm, false).unwrap();
    assert!(l.cloud.audit().ok(), "{:?}", l.cloud.audit());
    l.cloud.start_vm(vm, None).unwrap();
    l.cloud.destroy_vm(vm, false).unwrap();
    l.cloud.expunge_vm(vm).unwrap();
    assert!(l.cloud.audit().ok());
    assert_eq!(l.cloud.vm_count(), 0);
    let zone = &l.cloud.book.zone[0];
    assert_eq!((zone.cpu.used, zone.cpu.reserved, zone.mem.used), (0, 0, 0));
    assert!(l.cloud.book.pool.iter().all(|p| p.allocated == 0));
}

#[test]
fn illegal_transitions_are_refused_and_change_nothing() {
    let mut l = lab(1, 1, 1);
    let vm = l.deploy("web-1", l.small).unwrap();
    let before = l.cloud.book.clone();
    let e = l.cloud.start_vm(vm, None).unwrap_err();
    assert_eq!(e.to_string(), "VM web-1 is Running; cannot start");
    assert!(matches!(e, CoreError::InvalidState { .. }));
    assert!(l.cloud.expunge_vm(vm).is_err());
    assert!(l.cloud.recover_vm(vm).is_err());
    assert_eq!(l.cloud.book.host, before.host);
    assert_eq!(l.cloud.vm(vm).unwrap().state, VmState::Running);
}
