//! The controller's effects executed through the async driver traits against
//! the simulated backend: a deploy completes and the backend holds the domain.

use stratus_core::Cloud;
use stratus_core::cloud::*;
use stratus_core::controller::effects::{Effect, Timer};
use stratus_core::controller::{Controller, JobStatus, Request};
use stratus_core::inventory::*;
use stratus_core::units::{GIB, Millis};
use stratus_drivers::{ComputeDriver, Drivers, FenceDriver, execute};
use stratus_sim::backend::SimBackend;
use stratus_sim::world::World;

#[tokio::test(flavor = "current_thread")]
async fn deploy_runs_through_the_async_driver_traits() {
    let mut c = Cloud::new(1);
    let zone = c.add_zone(ZoneSpec::advanced("z1")).unwrap();
    let pod = c.add_pod(PodSpec::numbered("p1", zone, 1)).unwrap();
    let cl = c.add_cluster("c1", pod, Hypervisor::Kvm).unwrap();
    let host = c
        .add_host(HostSpec {
            name: "h1".into(),
            cluster: cl,
            cpu_cores: 4,
            cpu_mhz: 2000,
            memory_bytes: 8 * GIB,
            tags: vec![],
        })
        .unwrap();
    c.add_pool(PoolSpec {
        name: "ps1".into(),
        zone,
        scope: PoolScopeSpec::Cluster(cl),
        pool_type: PoolType::NetworkFilesystem,
        capacity_bytes: 100 * GIB,
        tags: vec![],
    })
    .unwrap();
    let so = c
        .add_service_offering(ServiceOfferingSpec::fixed("s", 1, 1000, 512))
        .unwrap();
    let t = c
        .add_template(TemplateSpec {
            name: "t".into(),
            format: ImageFormat::Qcow2,
            size_bytes: GIB,
            os_type: "x".into(),
            hypervisor: Hypervisor::Kvm,
            is_iso: false,
            ready_in: vec![zone],
        })
        .unwrap();
    let acct = c.add_account("a", None, AccountType::User).unwrap();
    let backend = SimBackend::new(World::from_cloud(&c, 1));
    let drivers = Drivers {
        compute: &backend,
        storage: &backend,
        network: &backend,
        fence: &backend,
    };
    let mut ctl = Controller::new(c);
    let spec = DeploySpec {
        name: "vm1".into(),
        account: Some(acct),
        zone: Some(zone),
        offering: Some(so),
        template: Some(t),
        start: true,
        ..Default::default()
    };
    let job = ctl.submit(Request::Deploy(spec), Millis(0)).unwrap();
    // A tiny runtime: execute each call as it is emitted, feed the result back.
    let mut now = 0;
    loop {
        let effects = ctl.take_effects();
        if effects.is_empty() {
            break;
        }
        for e in effects {
            if let Effect::Call { op, call } = e {
                now += 10;
                let r = execute(&drivers, &call).await;
                ctl.on_result(op, r, Millis(now));
            } else if let Effect::Timer {
                timer: Timer::OpTimeout(_),
                ..
            } = e
            {
                // Answers arrive before any timeout here.
            }
        }
    }
    assert_eq!(
        ctl.job(job).unwrap().status,
        JobStatus::Succeeded,
        "{:?}",
        ctl.job(job).unwrap().error
    );
    let domains = backend.query_domains(host).await.unwrap();
    assert_eq!(domains.len(), 1);
    assert!(domains[0].running);
    assert_eq!(backend.host_facts(host).await.unwrap().cpu_cores, 4);
    // Fencing powers the host off: its domains are gone and it stops answering.
    backend.power_off(host).await.unwrap();
    assert!(backend.query_domains(host).await.is_err());
}
