//! Every saga, failed at each of its driver calls in turn: no leaked capacity,
//! volume, address or domain, and the VM ends in its documented state.

use stratus_core::Cloud;
use stratus_core::cloud::*;
use stratus_core::controller::{Controller, JobStatus, Request};
use stratus_core::ids::*;
use stratus_core::inventory::*;
use stratus_core::units::GIB;
use stratus_core::vm::VmState;
use stratus_sim::engine::Engine;
use stratus_sim::world::World;

struct Ids {
    zone: ZoneId,
    offering: ServiceOfferingId,
    template: TemplateId,
    disk: DiskOfferingId,
    network: NetworkId,
    account: AccountId,
}

fn lab() -> (Engine, Ids) {
    let mut c = Cloud::new(3);
    let zone = c.add_zone(ZoneSpec::advanced("z1")).unwrap();
    let pod = c.add_pod(PodSpec::numbered("p1", zone, 1)).unwrap();
    let cl = c.add_cluster("c1", pod, Hypervisor::Kvm).unwrap();
    for i in 0..2 {
        c.add_host(HostSpec {
            name: format!("h{}", i + 1),
            cluster: cl,
            cpu_cores: 8,
            cpu_mhz: 2000,
            memory_bytes: 32 * GIB,
            tags: vec![],
        })
        .unwrap();
    }
    c.add_pool(PoolSpec {
        name: "ps1".into(),
        zone,
        scope: PoolScopeSpec::Cluster(cl),
        pool_type: PoolType::NetworkFilesystem,
        capacity_bytes: 1024 * GIB,
        tags: vec![],
    })
    .unwrap();
    let offering = c
        .add_service_offering(ServiceOfferingSpec::fixed("small", 1, 1000, 1024))
        .unwrap();
    let disk = c
        .add_disk_offering(DiskOfferingSpec {
            name: "d10".into(),
            size: DiskSize::Fixed(10 * GIB),
            storage_tags: vec![],
            storage_type: StorageType::Shared,
        })
        .unwrap();
    let template = c
        .add_template(TemplateSpec {
            name: "t".into(),
            format: ImageFormat::Qcow2,
            size_bytes: 2 * GIB,
            os_type: "Linux".into(),
            hypervisor: Hypervisor::Kvm,
            is_iso: false,
            ready_in: vec![zone],
        })
        .unwrap();
    let account = c.add_account("alice", None, AccountType::User).unwrap();
    let network = c
        .add_network(NetworkSpec {
            name: "net1".into(),
            zone,
            cidr: "10.0.0.0/29".into(),
            account: Some(account),
        })
        .unwrap();
    c.update_setting(
        "vm.allocation.algorithm",
        stratus_core::settings::Scope::Global,
        "firstfit",
    )
    .unwrap();
    let world = World::from_cloud(&c, 3);
    (
        Engine::new(Controller::new(c), world),
        Ids {
            zone,
            offering,
            template,
            disk,
            network,
            account,
        },
    )
}

fn deploy_req(ids: &Ids, name: &str) -> Request {
    Request::Deploy(DeploySpec {
        name: name.into(),
        account: Some(ids.account),
        zone: Some(ids.zone),
        offering: Some(ids.offering),
        template: Some(ids.template),
        disk_offering: Some(ids.disk),
        network: Some(ids.network),
        start: true,
        ..Default::default()
    })
}

fn run(e: &mut Engine) {
    e.run_quiet(u64::MAX / 2);
}

fn vm_of(e: &Engine, job: JobId) -> VmId {
    e.ctl.job(job).unwrap().vm.unwrap()
}

type JobId = stratus_core::controller::JobId;

/// Everything the ledger and the world must agree on after a saga settles.
fn assert_clean(e: &mut Engine, what: &str) {
    e.check_full();
    e.check_cheap();
    assert!(e.violations.is_empty(), "{what}: {:?}", e.violations);
    let leaks = e.leaks();
    assert!(leaks.is_empty(), "{what}: leaks {leaks:?}");
    assert_eq!(e.ctl.in_flight(), 0, "{what}: saga still in flight");
    // Running domains in the world are exactly the ledger's running VMs.
    let running: usize = e.ctl.cloud.vms().filter(|(_, v)| v.state == VmState::Running).count();
    assert_eq!(
        e.world.total_running(),
        running,
        "{what}: world runs {} domains, ledger {running} VMs",
        e.world.total_running()
    );
}

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
    let state = e.ctl.cloud.vm(vm).map(|v| v.state);
    (e, status, state)
}

/// Which calls (kind, count) an operation makes, from a failure-free run.
fn calls_of(
    setup: &dyn Fn(&mut Engine, &Ids) -> Option<VmId>,
    op: &dyn Fn(&Ids, Option<VmId>) -> Request,
) -> Vec<(&'static str, u64)> {
    let (mut e, ids) = lab();
    let vm = setup(&mut e, &ids);
    let before = e.world.calls_by_kind.clone();
    let job = e.submit(op(&ids, vm)).unwrap();
    run(&mut e);
    assert_eq!(
        e.ctl.job(job).unwrap().status,
        JobStatus::Succeeded,
        "{:?}",
        e.ctl.job(job).unwrap().error
    );
    assert_clean(&mut e, "failure-free run");
    e.world
        .calls_by_kind
        .iter()
        .map(|(k, v)| (*k, v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn running_vm(e: &mut Engine, ids: &Ids) -> Option<VmId> {
    let job = e.submit(deploy_req(ids, "web")).unwrap();
    run(e);
    assert_eq!(e.ctl.job(job).unwrap().status, JobStatus::Succeeded);
    Some(vm_of(e, job))
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
            let leaks = e.leaks();
            // A failed unplug after the domain stopped leaves its port behind
            // (documented); nothing else may leak.
            let allowed = kind == "UnplugNic" && leaks.iter().all(|l| l.starts_with("port "));
            if !allowed {
                assert_clean(&mut e, &format!("{name}: failing {kind} #{n}"));
            }
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
    assert_eq!(e.ctl.cloud.vm(vm).unwrap().state, VmState::Destroyed);
    let until = e.now + 2 * 86_400_000;
    while e.step(until).is_some() {}
    assert!(e.ctl.cloud.vm(vm).is_none(), "expunged on retry");
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
            let nic = e.ctl.cloud.vm(j.vm.unwrap()).unwrap().nic.unwrap();
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

fn create_volume(e: &mut Engine, ids: &Ids, name: &str) -> VolumeId {
    let job = e
        .submit(Request::CreateVolume {
            name: name.into(),
            account: ids.account,
            zone: ids.zone,
            disk_offering: ids.disk,
            size_gib: None,
        })
        .unwrap();
    run(e);
    e.ctl.job(job).unwrap().volume.unwrap()
}

fn attached_to_running(e: &mut Engine, ids: &Ids) -> Option<VmId> {
    let vm = running_vm(e, ids)?;
    let v = create_volume(e, ids, "extra");
    let job = e.submit(Request::AttachVolume { volume: v, vm }).unwrap();
    run(e);
    assert_eq!(
        e.ctl.job(job).unwrap().status,
        JobStatus::Succeeded,
        "{:?}",
        e.ctl.job(job).unwrap().error
    );
    Some(vm)
}

fn extra_volume(e: &Engine) -> VolumeId {
    e.ctl
        .cloud
        .volumes()
        .find(|(_, v)| v.name == "extra")
        .map(|(_, v)| v.id)
        .unwrap()
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
            let v = e.ctl.cloud.volume(extra_volume(e)).unwrap();
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
fn uuid_of_extra() -> stratus_core::uuid::Uuid {
    let (mut e, ids) = lab();
    running_vm(&mut e, &ids);
    create_volume(&mut e, &ids, "extra").as_uuid()
}

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
            assert!(e.ctl.cloud.volume(extra_volume(e)).unwrap().vm.is_some());
        },
    );
    assert_eq!(cases, 1);
}

#[test]
fn volumes_attach_detach_and_delete_cleanly() {
    let (mut e, ids) = lab();
    let vm = attached_to_running(&mut e, &ids).unwrap();
    let v = extra_volume(&e);
    assert!(e.ctl.cloud.volume(v).unwrap().created);
    // Deleting an attached volume is refused and changes nothing.
    let err = e.submit(Request::DeleteVolume { volume: v }).unwrap_err();
    assert!(err.contains("attached; detach it first"), "{err}");
    e.submit(Request::DetachVolume { volume: v }).unwrap();
    run(&mut e);
    assert!(e.ctl.cloud.volume(v).unwrap().vm.is_none());
    // Attach to the stopped VM: recorded now, used at the next start.
    e.submit(Request::Stop { vm, forced: false }).unwrap();
    run(&mut e);
    e.submit(Request::AttachVolume { volume: v, vm }).unwrap();
    run(&mut e);
    e.submit(Request::Start { vm, host: None }).unwrap();
    run(&mut e);
    assert_eq!(e.ctl.cloud.vm(vm).unwrap().state, VmState::Running);
    assert_eq!(e.ctl.cloud.vm(vm).unwrap().volumes.len(), 3);
    assert_clean(&mut e, "after reattach");
    // Detach, delete: gone from storage and the ledger.
    e.submit(Request::DetachVolume { volume: v }).unwrap();
    run(&mut e);
    let job = e.submit(Request::DeleteVolume { volume: v }).unwrap();
    run(&mut e);
    assert_eq!(e.ctl.job(job).unwrap().status, JobStatus::Succeeded);
    assert!(e.ctl.cloud.volume(v).is_none());
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
    let root = e.ctl.cloud.vm(vm).unwrap().volumes[0];
    let root = e.ctl.cloud.volume_at(root).id;
    let job = e
        .submit(Request::CreateSnapshot {
            volume: root,
            name: "nightly".into(),
        })
        .unwrap();
    run(&mut e);
    assert_eq!(e.ctl.job(job).unwrap().status, JobStatus::Succeeded);
    let snap = e.ctl.cloud.snapshots().next().unwrap().clone();
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
    assert_eq!(e.ctl.cloud.snapshots().count(), 1);
    assert_clean(&mut e, "after a failed snapshot");
    // The snapshot outlives its VM and volume, then is deleted.
    e.submit(Request::Destroy { vm, expunge: true }).unwrap();
    run(&mut e);
    assert!(e.ctl.cloud.snapshot(snap.id).is_some());
    e.submit(Request::DeleteSnapshot { snapshot: snap.id }).unwrap();
    run(&mut e);
    assert!(e.ctl.cloud.snapshot(snap.id).is_none() && e.world.snapshots.is_empty());
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
            let missing = stratus_sim::census::missing(&e.world.census(), &e.ctl.cloud);
            assert!(missing.is_empty(), "{name}, crash after {k} events: {missing:?}");
            e.check_full();
            assert!(e.violations.is_empty(), "{name}, crash after {k}: {:?}", e.violations);
        }
        assert!(crashes >= 4, "{name}: crashed at {crashes} points only");
    }
}
