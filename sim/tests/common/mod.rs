//! The small lab the saga tests share: two hosts, one pool, a template,
//! offerings and a network; helpers to run a request and check for leaks.
#![allow(dead_code)]

use stratus_core::Cloud;
use stratus_core::cloud::*;
use stratus_core::controller::{Controller, JobStatus, Request};
use stratus_core::ids::*;
use stratus_core::inventory::*;
use stratus_core::units::GIB;
use stratus_core::vm::VmState;
use stratus_sim::engine::Engine;
use stratus_sim::world::World;

pub struct Ids {
    pub zone: ZoneId,
    pub offering: ServiceOfferingId,
    pub template: TemplateId,
    pub disk: DiskOfferingId,
    pub network: NetworkId,
    pub account: AccountId,
}

pub fn lab() -> (Engine, Ids) {
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
            vlan: None,
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

pub fn deploy_req(ids: &Ids, name: &str) -> Request {
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

pub fn run(e: &mut Engine) {
    e.run_quiet(u64::MAX / 2);
}

pub fn vm_of(e: &Engine, job: JobId) -> VmId {
    e.ctl.job(job).unwrap().vm.unwrap()
}

pub type JobId = stratus_core::controller::JobId;

/// Everything the ledger and the world must agree on after a saga settles.
pub fn assert_clean(e: &mut Engine, what: &str) {
    e.check_full();
    e.check_cheap();
    assert!(e.violations.is_empty(), "{what}: {:?}", e.violations);
    let leaks = e.leaks();
    assert!(leaks.is_empty(), "{what}: leaks {leaks:?}");
    assert_eq!(e.ctl.in_flight(), 0, "{what}: saga still in flight");
    // Running domains in the world are exactly the ledger's running VMs.
    let running: usize = e.ctl.cloud().vms().filter(|(_, v)| v.state == VmState::Running).count();
    assert_eq!(
        e.world.total_running(),
        running,
        "{what}: world runs {} domains, ledger {running} VMs",
        e.world.total_running()
    );
}

/// Which calls (kind, count) an operation makes, from a failure-free run.
pub fn calls_of(
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

pub fn running_vm(e: &mut Engine, ids: &Ids) -> Option<VmId> {
    let job = e.submit(deploy_req(ids, "web")).unwrap();
    run(e);
    assert_eq!(e.ctl.job(job).unwrap().status, JobStatus::Succeeded);
    Some(vm_of(e, job))
}

pub fn create_volume(e: &mut Engine, ids: &Ids, name: &str) -> VolumeId {
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

pub fn attached_to_running(e: &mut Engine, ids: &Ids) -> Option<VmId> {
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

pub fn extra_volume(e: &Engine) -> VolumeId {
    e.ctl
        .cloud()
        .volumes()
        .find(|(_, v)| v.name == "extra")
        .map(|(_, v)| v.id)
        .unwrap()
}

pub fn uuid_of_extra() -> stratus_core::uuid::Uuid {
    let (mut e, ids) = lab();
    running_vm(&mut e, &ids);
    create_volume(&mut e, &ids, "extra").as_uuid()
}
