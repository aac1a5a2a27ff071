//! Every saga, failed at each of its driver calls in turn: no leaked capacity,
//! volume, address or domain, and the VM ends in its documented state.

use stratus_core::controller::{JobStatus, Request};
use stratus_core::ids::*;
use stratus_core::vm::VmState;
use stratus_sim::engine::Engine;

mod common;
use common::*;

/// Runs `setup`, then `op`, failing call #n of `kind` within `op`; returns the VM state.
fn with_failure(
    setup: &dyn Fn(&mut Engine, &Ids) -> Option<VmId>,
    op: &dyn Fn(&Ids, Option<VmId>) -> Request,
    kind: &'static str,
    n: u64,
) -> (Engine, JobStatus, Option<VmState>) {
    let (mut e, ids) = lab();
    let vm = setup(&mut e, &ids);
    let base = e.world.calls_by_kind.get(kind).copied().unwrap_or(0);
    e.world.fail_nth.entry(kind).or_default().insert(base + n);
    let job = e.submit(op(&ids, vm)).unwrap();
    run(&mut e);
    let status = e.ctl.job(job).unwrap().status;
    let vm = e.ctl.job(job).unwrap().vm.unwrap();
    let state = e.ctl.cloud().vm(vm).map(|v| v.state);
    (e, status, state)
}

/// Checks the end state after failing one call of a kind.
type Expect = dyn Fn(&'static str, JobStatus, Option<VmState>, &Engine);

fn check_saga(
    name: &str,
    setup: &dyn Fn(&mut Engine, &Ids) -> Option<VmId>,
    op: &dyn Fn(&Ids, Option<VmId>) -> Request,
    expect: &Expect,
) -> usize {
    let calls = calls_of(setup, op);
    let mut cases = 0;
    for (kind, count) in calls {
        for n in 0..count {
            let (mut e, status, state) = with_failure(setup, op, kind, n);
            expect(kind, status, state, &e);
            // A failed unplug after the domain stopped is handed to the
            // reconciler, which removes the port on a later pass.
            let until = e.now + 600_000;
            while e.step(until).is_some() {}
            assert_eq!(
                e.ctl.leftovers().count(),
                0,
                "{name}: failing {kind} #{n}: leftovers remain"
            );
            assert_clean(&mut e, &format!("{name}: failing {kind} #{n}"));
            cases += 1;
        }
    }
    cases
}

#[test]
fn deploy_saga_unwinds_at_every_step() {
    let cases = check_saga(
        "deploy",
        &|_, _| None,
        &|ids, _| deploy_req(ids, "web"),
        &|kind, status, state, _| {
            assert_eq!(status, JobStatus::Failed, "failing {kind}");
            assert_eq!(
                state,
                Some(VmState::Error),
                "a failed deploy leaves the VM in Error (failing {kind})"
            );
        },
    );
    // CopyTemplate, CreateVolume x2, PlugNic, DefineDomain, StartDomain.
    assert_eq!(cases, 6);
}

#[test]
fn start_saga_unwinds_to_stopped() {
    let setup = |e: &mut Engine, ids: &Ids| {
        let vm = running_vm(e, ids).unwrap();
        e.submit(Request::Stop { vm, forced: false }).unwrap();
        run(e);
        Some(vm)
    };
    let cases = check_saga(
        "start",
        &setup,
        &|_, vm| Request::Start {
            vm: vm.unwrap(),
            host: None,
        },
        &|kind, status, state, _| {
            assert_eq!(status, JobStatus::Failed, "failing {kind}");
            assert_eq!(state, Some(VmState::Stopped));
        },
    );
    assert!(cases >= 3);
}

#[test]
fn stop_saga_keeps_running_or_stops() {
    let cases = check_saga(
        "stop",
        &running_vm,
        &|_, vm| Request::Stop {
            vm: vm.unwrap(),
            forced: false,
        },
        &|kind, status, state, _| match kind {
            "StopDomain" => {
                assert_eq!(status, JobStatus::Failed);
                assert_eq!(
                    state,
                    Some(VmState::Running),
                    "a stop that did not reach the domain leaves it running"
                );
            }
            _ => assert_eq!(
                state,
                Some(VmState::Stopped),
                "failing {kind} after the domain stopped still stops"
            ),
        },
    );
    assert_eq!(cases, 2);
}

#[test]
fn migrate_saga_falls_back_to_the_source() {
    let cases = check_saga(
        "migrate",
        &running_vm,
        &|_, vm| Request::Migrate {
            vm: vm.unwrap(),
            host: None,
        },
        &|kind, _, state, e| {
            assert_eq!(state, Some(VmState::Running), "failing {kind}");
            let _ = e;
        },
    );
    assert_eq!(cases, 3);
}

#[test]
fn destroy_with_expunge_retries_until_storage_answers() {
    let cases = check_saga(
        "destroy",
        &running_vm,
        &|_, vm| Request::Destroy {
            vm: vm.unwrap(),
            expunge: true,
        },
        &|kind, status, state, _| match kind {
            "StopDomain" => {
                assert_eq!(status, JobStatus::Failed);
                assert_eq!(
                    state,
                    Some(VmState::Running),
                    "a destroy that cannot stop the domain fails"
                );
            }
            "DeleteVolume" => {
                assert_eq!(status, JobStatus::Failed);
                assert_eq!(state, Some(VmState::Destroyed), "expunge waits for a retry");
            }
            _ => assert_eq!(state, None, "failing {kind}: the VM is gone"),
        },
    );
    assert!(cases >= 3);
    // The retry after expunge.interval finishes the job.
    let (mut e, ids) = lab();
    let vm = running_vm(&mut e, &ids).unwrap();
    let base = e.world.calls_by_kind.get("DeleteVolume").copied().unwrap_or(0);
    e.world.fail_nth.entry("DeleteVolume").or_default().insert(base);
    e.submit(Request::Destroy { vm, expunge: true }).unwrap();
    run(&mut e);
    assert_eq!(e.ctl.cloud().vm(vm).unwrap().state, VmState::Destroyed);
    let until = e.now + 2 * 86_400_000;
    while e.step(until).is_some() {}
    assert!(e.ctl.cloud().vm(vm).is_none(), "expunged on retry");
    assert_clean(&mut e, "after retry");
}

#[test]
fn reboot_failure_leaves_the_vm_running() {
    let cases = check_saga(
        "reboot",
        &running_vm,
        &|_, vm| Request::Reboot { vm: vm.unwrap() },
        &|_, status, state, _| {
            assert_eq!(status, JobStatus::Failed);
            assert_eq!(state, Some(VmState::Running));
        },
    );
    assert_eq!(cases, 1);
}

#[test]
fn addresses_are_never_given_twice_and_run_out_cleanly() {
    let (mut e, ids) = lab();
    // A /29 has 6 host addresses, one is the gateway: 5 VMs fit.
    let mut ips = std::collections::BTreeSet::new();
    for i in 0..6 {
        let job = e.submit(deploy_req(&ids, &format!("v{i}"))).unwrap();
        run(&mut e);
        let j = e.ctl.job(job).unwrap();
        if i < 5 {
            assert_eq!(j.status, JobStatus::Succeeded, "{:?}", j.error);
            let nic = e.ctl.cloud().vm(j.vm.unwrap()).unwrap().nic.unwrap();
            assert!(ips.insert(nic.ip), "address {} given twice", nic.ip);
        } else {
            assert_eq!(j.status, JobStatus::Failed);
            assert!(
                j.error.as_ref().unwrap().contains("has no free address"),
                "{:?}",
                j.error
            );
        }
    }
    assert_clean(&mut e, "after exhausting the network");
}

#[test]
fn attach_to_a_running_vm_unwinds_at_every_step() {
    let setup = |e: &mut Engine, ids: &Ids| {
        let vm = running_vm(e, ids);
        create_volume(e, ids, "extra");
        vm
    };
    let cases = check_saga(
        "attach",
        &setup,
        &|_, vm| Request::AttachVolume {
            volume: VolumeId(uuid_of_extra()),
            vm: vm.unwrap(),
        },
        &|kind, status, state, e| {
            assert_eq!(status, JobStatus::Failed, "failing {kind}");
            assert_eq!(state, Some(VmState::Running));
            let v = e.ctl.cloud().volume(extra_volume(e)).unwrap();
            assert!(
                v.vm.is_none() && !v.created && v.pool.is_none(),
                "the volume is back to detached and unplaced"
            );
        },
    );
    // CreateVolume, AttachDisk.
    assert_eq!(cases, 2);
}

/// Volume ids are deterministic for a fixed lab: find the one `setup` creates.

#[test]
fn detach_from_a_running_vm_keeps_it_attached_on_failure() {
    let cases = check_saga(
        "detach",
        &attached_to_running,
        &|_, _| Request::DetachVolume {
            volume: VolumeId(uuid_of_extra()),
        },
        &|kind, status, _, e| {
            assert_eq!(status, JobStatus::Failed, "failing {kind}");
            assert!(e.ctl.cloud().volume(extra_volume(e)).unwrap().vm.is_some());
        },
    );
    assert_eq!(cases, 1);
}

#[test]
fn volumes_attach_detach_and_delete_cleanly() {
    let (mut e, ids) = lab();
    let vm = attached_to_running(&mut e, &ids).unwrap();
    let v = extra_volume(&e);
    assert!(e.ctl.cloud().volume(v).unwrap().created);
    // Deleting an attached volume is refused and changes nothing.
    let err = e.submit(Request::DeleteVolume { volume: v }).unwrap_err();
    assert!(err.contains("attached; detach it first"), "{err}");
    e.submit(Request::DetachVolume { volume: v }).unwrap();
    run(&mut e);
    assert!(e.ctl.cloud().volume(v).unwrap().vm.is_none());
    // Attach to the stopped VM: recorded now, used at the next start.
    e.submit(Request::Stop { vm, forced: false }).unwrap();
    run(&mut e);
    e.submit(Request::AttachVolume { volume: v, vm }).unwrap();
    run(&mut e);
    e.submit(Request::Start { vm, host: None }).unwrap();
    run(&mut e);
    assert_eq!(e.ctl.cloud().vm(vm).unwrap().state, VmState::Running);
    assert_eq!(e.ctl.cloud().vm(vm).unwrap().volumes.len(), 3);
    assert_clean(&mut e, "after reattach");
    // Detach, delete: gone from storage and the ledger.
    e.submit(Request::DetachVolume { volume: v }).unwrap();
    run(&mut e);
    let job = e.submit(Request::DeleteVolume { volume: v }).unwrap();
    run(&mut e);
    assert_eq!(e.ctl.job(job).unwrap().status, JobStatus::Succeeded);
    assert!(e.ctl.cloud().volume(v).is_none());
    assert_clean(&mut e, "after delete");
}

#[test]
fn change_offering_needs_a_stopped_vm() {
    let (mut e, ids) = lab();
    let vm = running_vm(&mut e, &ids).unwrap();
    let err = e
        .submit(Request::ChangeOffering {
            vm,
            offering: ids.offering,
            cpu: None,
            memory_mb: None,
        })
        .unwrap_err();
    assert!(err.contains("is Running; cannot change service offering"), "{err}");
    e.submit(Request::Stop { vm, forced: false }).unwrap();
    run(&mut e);
    let job = e
        .submit(Request::ChangeOffering {
            vm,
            offering: ids.offering,
            cpu: None,
            memory_mb: None,
        })
        .unwrap();
    run(&mut e);
    assert_eq!(e.ctl.job(job).unwrap().status, JobStatus::Succeeded);
}

#[test]
fn snapshots_are_taken_kept_after_their_volume_and_deleted() {
    let (mut e, ids) = lab();
    let vm = running_vm(&mut e, &ids).unwrap();
    let root = e.ctl.cloud().vm(vm).unwrap().volumes[0];
    let root = e.ctl.cloud().volume_at(root).id;
    let job = e
        .submit(Request::CreateSnapshot {
            volume: root,
            name: "nightly".into(),
        })
        .unwrap();
    run(&mut e);
    assert_eq!(e.ctl.job(job).unwrap().status, JobStatus::Succeeded);
    let snap = e.ctl.cloud().snapshots().next().unwrap().clone();
    assert_eq!(
        (snap.name.as_str(), snap.state),
        ("nightly", stratus_core::vm::SnapshotState::BackedUp)
    );
    assert!(e.world.snapshots.contains(&snap.id));
    // A failed snapshot leaves no record and nothing on storage.
    let n = e.world.calls_by_kind.get("CreateSnapshot").copied().unwrap_or(0);
    e.world.fail_nth.entry("CreateSnapshot").or_default().insert(n);
    let job = e
        .submit(Request::CreateSnapshot {
            volume: root,
            name: "bad".into(),
        })
        .unwrap();
    run(&mut e);
    assert_eq!(e.ctl.job(job).unwrap().status, JobStatus::Failed);
    assert_eq!(e.ctl.cloud().snapshots().count(), 1);
    assert_clean(&mut e, "after a failed snapshot");
    // The snapshot outlives its VM and volume, then is deleted.
    e.submit(Request::Destroy { vm, expunge: true }).unwrap();
    run(&mut e);
    assert!(e.ctl.cloud().snapshot(snap.id).is_some());
    e.submit(Request::DeleteSnapshot { snapshot: snap.id }).unwrap();
    run(&mut e);
    assert!(e.ctl.cloud().snapshot(snap.id).is_none() && e.world.snapshots.is_empty());
    assert_clean(&mut e, "after deleting the snapshot");
    // A volume that is not on storage yet cannot be snapshotted.
    let v = create_volume(&mut e, &ids, "fresh");
    let err = e
        .submit(Request::CreateSnapshot {
            volume: v,
            name: String::new(),
        })
        .unwrap_err();
    assert!(err.contains("not on storage yet"), "{err}");
}

/// Runs `op` with the management server crashing after `k` engine events (a
/// call in flight, applied by the world but unanswered) and back 5 s later.
/// Returns the engine once everything settled, or `None` if the job ended
/// before the crash.
fn restarted_after(
    setup: &dyn Fn(&mut Engine, &Ids) -> Option<VmId>,
    op: &dyn Fn(&Ids, Option<VmId>) -> Request,
    k: usize,
) -> Option<(Engine, JobId)> {
    let (mut e, ids) = lab();
    let vm = setup(&mut e, &ids);
    let job = e.submit(op(&ids, vm)).unwrap();
    for _ in 0..k {
        e.step(u64::MAX / 2)?;
    }
    if e.ctl.job(job).unwrap().status != JobStatus::Pending {
        return None;
    }
    let now = e.next_time().unwrap_or(0);
    e.crash_management(now + 5_000);
    // Past the restart and the VM reports that settle calls in doubt.
    while e.ctl.in_flight() > 0 || e.next_time().is_some_and(|t| t <= now + 5_000) {
        if e.step(u64::MAX / 2).is_none() {
            break;
        }
    }
    run(&mut e);
    Some((e, job))
}

#[test]
fn a_management_restart_at_any_point_of_a_deploy_or_destroy_leaves_nothing_behind() {
    let deploy = |ids: &Ids, _: Option<VmId>| deploy_req(ids, "web");
    let destroy = |_: &Ids, vm: Option<VmId>| Request::Destroy {
        vm: vm.unwrap(),
        expunge: true,
    };
    type Setup<'a> = &'a dyn Fn(&mut Engine, &Ids) -> Option<VmId>;
    type Op<'a> = &'a dyn Fn(&Ids, Option<VmId>) -> Request;
    let cases: [(&str, Setup, Op); 2] = [("deploy", &|_, _| None, &deploy), ("destroy", &running_vm, &destroy)];
    for (name, setup, op) in cases {
        let mut crashes = 0;
        for k in 0.. {
            let Some((mut e, job)) = restarted_after(setup, op, k) else {
                break;
            };
            crashes += 1;
            let j = e.ctl.job(job).unwrap().clone();
            assert_ne!(j.status, JobStatus::Pending, "{name}, crash after {k} events");
            assert!(j.status == JobStatus::Succeeded || j.error.is_some());
            let leaks = e.leaks();
            assert!(leaks.is_empty(), "{name}, crash after {k} events: leaks {leaks:?}");
            let missing = stratus_sim::census::missing(&e.world.census(), e.ctl.cloud());
            assert!(missing.is_empty(), "{name}, crash after {k} events: {missing:?}");
            e.check_full();
            assert!(e.violations.is_empty(), "{name}, crash after {k}: {:?}", e.violations);
        }
        assert!(crashes >= 4, "{name}: crashed at {crashes} points only");
    }
}
