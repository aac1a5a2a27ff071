//! Omicron-style saga checks beyond "fail each step": for every saga and every
//! driver call it makes,
//! (a) the management server crashes right after the call took effect and
//!     recovers from its journal (checked by state hash),
//! (b) the call is delivered twice (a retried request: drivers are idempotent),
//! (c) the call takes effect but its reply is lost (in doubt: the undo that was
//!     registered before the call cleans up; nothing leaks).
//! Each ends with every job terminal, in a documented state, with no leak.

use stratus_core::controller::journal::MemoryJournal;
use stratus_core::controller::{JobStatus, Request};
use stratus_core::ids::*;
use stratus_core::vm::VmState;
use stratus_sim::engine::Engine;

mod common;
use common::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    CrashAfter,
    Twice,
    LoseReply,
}

type Setup = dyn Fn(&mut Engine, &Ids) -> Option<VmId>;
type Op = dyn Fn(&Ids, Option<VmId>) -> Request;

struct Case {
    name: &'static str,
    setup: &'static Setup,
    op: &'static Op,
    /// VM states a faulted run may end in.
    allowed: &'static [Option<VmState>],
}

fn stopped_vm(e: &mut Engine, ids: &Ids) -> Option<VmId> {
    let vm = running_vm(e, ids).unwrap();
    e.submit(Request::Stop { vm, forced: false }).unwrap();
    run(e);
    Some(vm)
}

const CASES: &[Case] = &[
    Case {
        name: "deploy",
        setup: &|_, _| None,
        op: &|ids, _| deploy_req(ids, "web"),
        allowed: &[Some(VmState::Running), Some(VmState::Error)],
    },
    Case {
        name: "start",
        setup: &stopped_vm,
        op: &|_, vm| Request::Start {
            vm: vm.unwrap(),
            host: None,
        },
        allowed: &[Some(VmState::Running), Some(VmState::Stopped)],
    },
    Case {
        name: "stop",
        setup: &running_vm,
        op: &|_, vm| Request::Stop {
            vm: vm.unwrap(),
            forced: false,
        },
        allowed: &[Some(VmState::Running), Some(VmState::Stopped)],
    },
    Case {
        name: "migrate",
        setup: &running_vm,
        op: &|_, vm| Request::Migrate {
            vm: vm.unwrap(),
            host: None,
        },
        allowed: &[Some(VmState::Running)],
    },
    Case {
        name: "reboot",
        setup: &running_vm,
        op: &|_, vm| Request::Reboot { vm: vm.unwrap() },
        allowed: &[Some(VmState::Running)],
    },
    Case {
        name: "attach volume",
        setup: &|e, ids| {
            let vm = running_vm(e, ids);
            create_volume(e, ids, "extra");
            vm
        },
        op: &|_, vm| Request::AttachVolume {
            volume: VolumeId(uuid_of_extra()),
            vm: vm.unwrap(),
        },
        allowed: &[Some(VmState::Running)],
    },
    Case {
        name: "detach volume",
        setup: &attached_to_running,
        op: &|_, _| Request::DetachVolume {
            volume: VolumeId(uuid_of_extra()),
        },
        allowed: &[Some(VmState::Running)],
    },
    Case {
        name: "destroy",
        setup: &running_vm,
        op: &|_, vm| Request::Destroy {
            vm: vm.unwrap(),
            expunge: true,
        },
        allowed: &[
            None,
            Some(VmState::Destroyed),
            Some(VmState::Running),
            Some(VmState::Stopped),
        ],
    },
];

/// Runs one case with `fault` on call #n of `kind`; returns the engine.
fn faulted(case: &Case, fault: Fault, kind: &'static str, n: u64) -> Engine {
    let (mut e, ids) = lab();
    e.snapshot_every = 5;
    e.attach_journal(Box::new(MemoryJournal::new())).unwrap();
    let vm = (case.setup)(&mut e, &ids);
    let base = e.world.calls_by_kind.get(kind).copied().unwrap_or(0);
    let target = match fault {
        Fault::CrashAfter => &mut e.world.crash_after_nth,
        Fault::Twice => &mut e.world.twice_nth,
        Fault::LoseReply => &mut e.world.lose_reply_nth,
    };
    target.entry(kind).or_default().insert(base + n);
    let job = e.submit((case.op)(&ids, vm)).unwrap();
    // Let timeouts, restarts, retries and the leftover reconciler run out.
    e.run_quiet(u64::MAX / 2);
    let until = e.now + 3_600_000;
    while e.step(until).is_some() {}
    let what = format!("{} with {fault:?} on {kind} #{n}", case.name);
    let j = e.ctl.job(job).unwrap();
    assert_ne!(j.status, JobStatus::Pending, "{what}: job never ended");
    if j.status == JobStatus::Failed {
        assert!(j.error.as_deref().is_some_and(|x| !x.is_empty()), "{what}: no reason");
    }
    let state = j.vm.and_then(|v| e.ctl.cloud().vm(v)).map(|v| v.state);
    assert!(case.allowed.contains(&state), "{what}: ended {state:?}");
    if fault == Fault::Twice {
        assert_eq!(
            j.status,
            JobStatus::Succeeded,
            "{what}: a retried call must not fail the job"
        );
    }
    if fault == Fault::CrashAfter {
        assert_eq!(e.recoveries, 1, "{what}: the crash was not recovered from the journal");
    }
    assert_eq!(e.ctl.leftovers().count(), 0, "{what}: leftovers never cleaned");
    assert_clean(&mut e, &what);
    e
}

fn each_call(fault: Fault) -> usize {
    let mut cases = 0;
    for case in CASES {
        for (kind, count) in calls_of(case.setup, case.op) {
            for n in 0..count {
                faulted(case, fault, kind, n);
                cases += 1;
            }
        }
    }
    cases
}

#[test]
fn every_saga_survives_a_management_crash_after_each_call() {
    assert!(each_call(Fault::CrashAfter) >= 15);
}

#[test]
fn every_saga_call_is_idempotent_when_delivered_twice() {
    assert!(each_call(Fault::Twice) >= 15);
}

#[test]
fn every_saga_cleans_up_when_a_reply_is_lost_after_the_call_happened() {
    assert!(each_call(Fault::LoseReply) >= 15);
}
