//! `SimFleet` (feature `agent`): the simulated hosts of `stratus serve`, as
//! real agents over TLS to a durable gateway on a SQLite file, over the
//! seed lab. A deploy runs; a failure injected into the next StartDomain
//! fails the next deploy; a partition restarts nothing; a crash makes the
//! controller fence the host and HA restart its VM elsewhere; and after a
//! restart of both the gateway and the fleet (from its state file) the agents
//! reconnect without tokens and the VM is still running.

use std::path::Path;
use std::time::Duration;
use stratus_core::Cloud;
use stratus_core::cloud::{DeploySpec, HostSpec, PoolScopeSpec, PoolSpec};
use stratus_core::controller::{Controller, JobId, JobStatus, Request};
use stratus_core::ids::{HostId, VmId};
use stratus_core::inventory::{HostStatus, PoolType};
use stratus_core::settings::Scope;
use stratus_core::units::GIB;
use stratus_core::vm::{Charge, VmState};
use stratus_runtime::hosts::{Clock, Gateway, GatewayConfig};
use stratus_sim::fleet::{CALL_KINDS, FleetFault, SimFleet};
use stratus_sim::scenario::{NameMaps, load_and_build};
use stratus_sim::world::World;

/// The seed lab (two hosts, one NFS pool) with fast heartbeats and leases.
fn lab() -> (Cloud, NameMaps) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/seed-lab.toml");
    let (_, built) = load_and_build(&path).unwrap();
    let mut cloud = built.cloud;
    cloud.update_setting("ping.interval", Scope::Global, "1").unwrap();
    cloud.update_setting("ha.lease.timeout", Scope::Global, "3").unwrap();
    (cloud, built.names)
}

fn host_spec(names: &NameMaps, name: &str) -> HostSpec {
    HostSpec {
        name: name.into(),
        cluster: names.clusters["lab-cluster1"],
        cpu_cores: 8,
        cpu_mhz: 2400,
        memory_bytes: 32 * GIB,
        tags: vec![],
    }
}

/// deleteHost: an empty removed host leaves the simulated world at the next
/// sync (what `stratus serve` and the scenario runner do after a removal).
#[test]
fn the_world_forgets_a_removed_host() {
    let (cloud, names) = lab();
    let mut grown = cloud.clone();
    let h = grown.add_host(host_spec(&names, "kvm-gone")).unwrap();
    let mut w = World::from_cloud(&grown, 1);
    assert!(w.hosts.contains_key(&h));
    grown.remove_host(h).unwrap();
    assert_eq!(w.sync_inventory(&grown), 1);
    assert!(!w.hosts.contains_key(&h));
    assert_eq!(w.sync_inventory(&grown), 0, "idempotent");
    let fresh = World::from_cloud(&grown, 1);
    assert!(!fresh.hosts.contains_key(&h), "a world built afterwards never had it");
}

#[test]
fn the_world_learns_hosts_and_pools_added_at_runtime() {
    let (cloud, names) = lab();
    let mut w = World::from_cloud(&cloud, 1);
    assert_eq!(w.sync_inventory(&cloud), 0, "nothing new");
    let mut grown = cloud.clone();
    let h = grown.add_host(host_spec(&names, "kvm-extra")).unwrap();
    let p = grown
        .add_pool(PoolSpec {
            name: "lab-primary2".into(),
            zone: names.zones["lab-z1"],
            scope: PoolScopeSpec::Cluster(names.clusters["lab-cluster1"]),
            pool_type: PoolType::NetworkFilesystem,
            capacity_bytes: 1024 * GIB,
            tags: vec![],
        })
        .unwrap();
    // The host, the pool, and a lease on the new pool for each old host.
    assert_eq!(w.sync_inventory(&grown), 4);
    assert_eq!(w.sync_inventory(&grown), 0, "idempotent");
    assert!(w.pools.contains_key(&p));
    for (id, host) in &w.hosts {
        let leases: Vec<_> = host.leases.iter().map(|(p, _)| *p).collect();
        assert_eq!(leases.len(), 2, "{id}: {leases:?}");
        assert!(leases.contains(&p));
    }
    // As if built from the grown inventory at once.
    let fresh = World::from_cloud(&grown, 1);
    assert_eq!(
        fresh.hosts.keys().collect::<Vec<_>>(),
        w.hosts.keys().collect::<Vec<_>>()
    );
    assert_eq!(fresh.hosts[&h].name, "kvm-extra");
    assert_eq!(fresh.hosts[&h].leases, w.hosts[&h].leases);
    // Serde keeps it whole.
    let json = serde_json::to_string(&w).unwrap();
    let back: World = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
}

#[test]
fn faults_have_a_json_form_and_every_driver_call_can_be_named() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<SimFleet>();
    let f: FleetFault = serde_json::from_str(r#"{"fault":"fail_calls","call":"StartDomain","count":2}"#).unwrap();
    assert_eq!(
        f,
        FleetFault::FailCalls {
            host: None,
            call: "StartDomain".into(),
            count: 2
        }
    );
    let (_, names) = lab();
    let crash = FleetFault::CrashHost {
        host: names.hosts["kvm1"],
    };
    let json = serde_json::to_string(&crash).unwrap();
    assert!(json.starts_with(r#"{"fault":"crash_host","host":""#), "{json}");
    assert_eq!(serde_json::from_str::<FleetFault>(&json).unwrap(), crash);
    assert_eq!(
        serde_json::from_str::<FleetFault>(r#"{"fault":"clear_faults"}"#).unwrap(),
        FleetFault::ClearFaults
    );
    assert!(serde_json::from_str::<FleetFault>(r#"{"fault":"crash_host"}"#).is_err());
    assert!(serde_json::from_str::<FleetFault>(r#"{"fault":"melt_host","host":"x"}"#).is_err());
    // The wire's golden fixtures hold one file per DriverCall variant.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wire/tests/fixtures/driver_call");
    let mut variants: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    variants.sort();
    let mut kinds: Vec<String> = CALL_KINDS.iter().map(|k| k.to_string()).collect();
    kinds.sort();
    assert_eq!(kinds, variants);
}

fn config(url: &str) -> GatewayConfig {
    GatewayConfig {
        store_url: Some(url.to_string()),
        clock: Clock::System,
        ..GatewayConfig::new()
    }
}

async fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    for _ in 0..secs * 20 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {secs} s waiting for {what}");
}

async fn serve(gw: &Gateway, addr: &str) {
    // After a restart the old listener may take a moment to go away.
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if tries < 100 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot bind {addr}: {e}"),
        }
    };
    let gw = gw.clone();
    tokio::spawn(async move { gw.serve(listener).await });
}

fn job(gw: &Gateway, j: JobId) -> (JobStatus, Option<String>, Option<VmId>) {
    gw.with_controller(|c| {
        let job = c.job(j).expect("a returned job is known");
        (job.status, job.error.clone(), job.vm)
    })
}

async fn finished(gw: &Gateway, j: JobId) -> (JobStatus, Option<String>, VmId) {
    wait_for("the job", 60, || job(gw, j).0 != JobStatus::Pending).await;
    let (status, error, vm) = job(gw, j);
    (status, error, vm.expect("a deploy names its VM"))
}

/// The VM's state and, if it runs, its host, in the ledger.
fn ledger(gw: &Gateway, vm: VmId) -> (VmState, Option<HostId>) {
    gw.with_controller(|c| {
        let v = c.cloud().vm(vm).unwrap();
        let host = match v.charge {
            Charge::Used { host } => Some(c.cloud().host_id(host)),
            _ => None,
        };
        (v.state, host)
    })
}

fn status(gw: &Gateway, h: HostId) -> HostStatus {
    gw.with_controller(|c| c.cloud().inv.hosts.iter().find(|x| x.id == h).unwrap().status)
}

/// Hosts whose world runs the VM.
fn runs_on(fleet: &SimFleet, vm: VmId) -> Vec<HostId> {
    let b = fleet.backend();
    let w = b.world.lock().unwrap();
    w.hosts
        .iter()
        .filter(|(_, h)| h.domains.get(&vm).is_some_and(|d| d.running))
        .map(|(id, _)| *id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_runs_the_lab_through_the_gateway_with_faults_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gw.db").display());
    let state = dir.path().join("fleet.json");
    let (cloud, names) = lab();
    let hosts = [names.hosts["kvm1"], names.hosts["kvm2"]];
    let initial = cloud.clone();
    let gw = Gateway::open(move || Controller::new(initial), config(&url))
        .await
        .unwrap();
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    serve(&gw, &addr).await;
    let latency = (1, 20);
    let fleet = SimFleet::start(addr.clone(), &cloud, 7, latency, Some(state.clone())).unwrap();
    for h in hosts {
        let token = gw.issue_token_durable(h).await.unwrap();
        fleet.ensure_host(&cloud, h, Some(token)).unwrap();
        fleet.ensure_host(&cloud, h, None).unwrap(); // already running: nothing to do
    }
    wait_for("both agents", 20, || gw.connected().len() == 2).await;

    // A host the fleet has not seen, without credentials or a token.
    let mut grown = cloud.clone();
    let extra = grown.add_host(host_spec(&names, "kvm-extra")).unwrap();
    let err = fleet.ensure_host(&grown, extra, None).unwrap_err();
    assert!(err.contains("token"), "{err}");
    let listed = fleet.hosts();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.iter().any(|h| h.id == extra && !h.agent_running && !h.enrolled));
    // Unknown ids and calls are refused with a reason.
    let unknown = grown.clone().add_host(host_spec(&names, "kvm-ghost")).unwrap();
    assert!(fleet.crash_host(unknown).unwrap_err().contains("unknown host"));
    assert!(
        fleet
            .fail_calls(None, "StartVm", 1)
            .unwrap_err()
            .contains("unknown call")
    );
    assert!(fleet.fail_calls(None, "CheckLease", 1).is_err());

    let deploy = |name: &str| {
        Request::Deploy(DeploySpec {
            name: name.into(),
            account: Some(names.accounts["lab"]),
            zone: Some(names.zones["lab-z1"]),
            offering: Some(names.offerings["small"]),
            template: Some(names.templates["tiny-linux"]),
            ha: Some(true),
            start: true,
            ..Default::default()
        })
    };
    let (st, err, vm1) = finished(&gw, gw.submit(deploy("vm1")).await.unwrap()).await;
    assert_eq!(st, JobStatus::Succeeded, "{err:?}");
    let (state1, Some(first)) = ledger(&gw, vm1) else {
        panic!("vm1 runs nowhere")
    };
    assert_eq!(state1, VmState::Running);
    assert_eq!(runs_on(&fleet, vm1), vec![first]);
    let other = *hosts.iter().find(|h| **h != first).unwrap();

    // configureSimulator: the next StartDomain fails, so the next deploy does.
    fleet
        .inject(FleetFault::FailCalls {
            host: None,
            call: "StartDomain".into(),
            count: 1,
        })
        .unwrap();
    let (st, err, vm2) = finished(&gw, gw.submit(deploy("vm2")).await.unwrap()).await;
    assert_eq!(st, JobStatus::Failed);
    assert!(err.as_deref().unwrap_or("").contains("injected"), "{err:?}");
    assert_eq!(ledger(&gw, vm2).0, VmState::Error);
    assert!(fleet.backend().world.lock().unwrap().fail_next.is_empty(), "used up");

    // A partition: the host keeps its lease, so it is Disconnected, not fenced.
    fleet.partition_host(first).unwrap();
    wait_for("the partitioned host to be Disconnected", 30, || {
        status(&gw, first) == HostStatus::Disconnected
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await; // longer than the fencing proof takes
    assert_eq!(status(&gw, first), HostStatus::Disconnected);
    assert_eq!(ledger(&gw, vm1), (VmState::Running, Some(first)));
    assert_eq!(runs_on(&fleet, vm1), vec![first]);
    fleet.heal_host(first).unwrap();
    wait_for("the healed host to be Up", 20, || status(&gw, first) == HostStatus::Up).await;

    // A crash: the host is fenced by its stale lease and vm1 restarts elsewhere.
    fleet.inject(FleetFault::CrashHost { host: first }).unwrap();
    wait_for("HA to restart vm1 on the other host", 90, || {
        ledger(&gw, vm1) == (VmState::Running, Some(other)) && runs_on(&fleet, vm1) == vec![other]
    })
    .await;
    assert_eq!(status(&gw, first), HostStatus::Down);
    fleet.recover_host(first).unwrap();
    wait_for("the recovered host to be Up", 30, || {
        status(&gw, first) == HostStatus::Up
    })
    .await;
    assert!(fleet.hosts().iter().all(|h| !h.crashed));

    // Restart of the management process: gateway and fleet both go away.
    wait_for("a quiet moment", 20, || {
        let d = gw.durability();
        d.applied == d.durable && gw.with_controller(|c| c.in_flight() == 0)
    })
    .await;
    let enrollments = gw.stats().enrollments;
    gw.halt();
    let old = fleet.backend();
    fleet.shutdown().unwrap();
    drop(fleet);
    // Nothing renews a lease any more: the agents' lease loops ended with them.
    let later = {
        let mut w = old.world.lock().unwrap();
        w.clock_ms += 60_000;
        w.clock_ms
    };
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let renewed = {
        let w = old.world.lock().unwrap();
        w.hosts.values().flat_map(|h| &h.leases).any(|(_, t)| *t == Some(later))
    };
    assert!(!renewed, "a lease was renewed after shutdown");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the state file holds host secrets");
    }
    let gw = Gateway::open(|| panic!("recovered from the Store"), config(&url))
        .await
        .unwrap();
    serve(&gw, &addr).await;
    let fleet = SimFleet::start(addr.clone(), &cloud, 7, latency, Some(state.clone())).unwrap();
    assert_eq!(runs_on(&fleet, vm1), vec![other], "the world came back from the file");
    assert!(
        fleet
            .hosts()
            .iter()
            .filter(|h| hosts.contains(&h.id))
            .all(|h| h.enrolled)
    );
    for h in hosts {
        fleet.ensure_host(&cloud, h, None).unwrap();
    }
    wait_for("both agents, with hello", 20, || gw.connected().len() == 2).await;
    assert_eq!(gw.stats().enrollments, 0, "nobody enrolls again");
    assert!(enrollments >= 2);
    // Their reports have come in: vm1 still runs where the ledger has it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ledger(&gw, vm1), (VmState::Running, Some(other)));
    assert_eq!(runs_on(&fleet, vm1), vec![other]);
    assert_eq!(status(&gw, other), HostStatus::Up);
    fleet.shutdown().unwrap();
    gw.halt();
}
