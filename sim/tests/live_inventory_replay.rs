//! A simulated world that mirrors a live inventory: an export read back
//! gives hosts running the VMs' domains, pools holding their volumes and
//! template copies, and leases; a host failure replayed against it is seen,
//! fenced and HA-restarted by the controller as in production, and the
//! outcome agrees with the what-if's N-1 answer for that host.

use std::collections::BTreeSet;
use stratus_core::controller::Controller;
use stratus_core::vm::{Charge, VmState};
use stratus_core::whatif::{self, Options, export};
use stratus_sim::engine::Engine;
use stratus_sim::scenario;
use stratus_sim::whatif_input::cloud_before_faults;
use stratus_sim::world::World;

const LAB: &str = r#"
[scenario]
name = "live-replay"
seed = 9
duration = "15m"

[settings]
"vm.allocation.algorithm" = "firstfit"

[[zones]]
name = "z1"

[[zones.networks]]
name = "guest"
cidr = "10.3.0.0/22"

[[zones.pods]]
name = "p1"
gateway = "172.16.3.1"
netmask = "255.255.255.0"
start_ip = "172.16.3.10"
end_ip = "172.16.3.250"

[[zones.pods.clusters]]
name = "c1"
hosts = [{ prefix = "kvm", count = 3, cores = 8, mhz = 2000, memory_gib = 24 }]
pools = [{ name = "nfs1", capacity_gib = 4096 }]

[[offerings]]
name = "ha"
cpu = 1
mhz = 1000
memory_mb = 4096
ha = true

[[offerings]]
name = "plain"
cpu = 1
mhz = 1000
memory_mb = 2048

[[templates]]
name = "t"
size_gib = 2

[[accounts]]
name = "ops"

[[workload]]
account = "ops"
offering = "ha"
template = "t"
network = "guest"
arrival = { kind = "burst", count = 9, at = "0s" }

[[workload]]
account = "ops"
offering = "plain"
template = "t"
network = "guest"
arrival = { kind = "burst", count = 3, at = "0s" }
"#;

#[test]
fn a_host_failure_replayed_on_an_exported_inventory_matches_the_what_if() {
    // The "live" inventory: a run's cloud, exported and read back.
    let s = scenario::parse(LAB, "lab.toml").unwrap_or_else(|e| panic!("{e}"));
    let built = scenario::build(&s).unwrap();
    let live = cloud_before_faults(s, built.cloud);
    let live = export::from_json(&export::to_json(&live).unwrap()).unwrap();
    let running: Vec<_> = live.vms().filter(|(_, v)| v.state == VmState::Running).collect();
    assert_eq!(running.len(), 12);

    // The world mirrors it: domains where the ledger has them, volumes on
    // their pool with the template copy, a lease per host on the pool.
    let world = World::from_cloud(&live, 9);
    assert_eq!(world.total_running(), 12);
    for (_, vm) in &running {
        let Charge::Used { host } = vm.charge else {
            panic!("{} not placed", vm.name)
        };
        let h = &world.hosts[&live.inv.host(host).id];
        assert!(h.domains.get(&vm.id).is_some_and(|d| d.running), "{}", vm.name);
        assert_eq!(h.ports.len(), h.domains.len());
    }
    let pool = world.pools.values().next().unwrap();
    assert_eq!(pool.volumes.len(), 12);
    assert_eq!(pool.templates.len(), 1);
    assert!(world.hosts.values().all(|h| h.leases.len() == 1));

    // The what-if's answer for the busiest host.
    let victim = live
        .inv
        .hosts
        .iter()
        .enumerate()
        .max_by_key(|(i, h)| {
            (
                live.vms_on(stratus_core::ids::HostIdx(*i as u32)).len(),
                std::cmp::Reverse(h.name.clone()),
            )
        })
        .map(|(_, h)| (h.id, h.name.clone()))
        .unwrap();
    let report = whatif::run(&mut live.clone(), &Options::new(), &mut |_, _, _| {}).unwrap();
    let answer = report.n_minus_1.iter().find(|f| f.host == victim.1).unwrap().clone();
    assert!(answer.ha_vms > 0, "{answer:?}");
    let on_victim: BTreeSet<_> = running
        .iter()
        .filter(|(_, v)| v.charge.hosts().any(|h| live.inv.host(h).id == victim.0))
        .map(|(_, v)| (v.id, v.ha_enabled))
        .collect();

    // Replay: the host powers off; the controller detects, fences, restarts.
    let mut e = Engine::new(Controller::new(live), world);
    let start = 60_000;
    while e.step(start).is_some() {}
    e.world.crash_host(victim.0);
    while e.step(start + 30 * 60_000).is_some() {}

    let cloud = e.ctl.cloud();
    let back: usize = on_victim
        .iter()
        .filter(|(id, ha)| *ha && cloud.vm(*id).is_some_and(|v| v.state == VmState::Running))
        .count();
    assert_eq!(back, answer.restarted, "what-if said {answer:?}");
    assert_eq!(back + answer.not_restarted.len(), answer.ha_vms);
    // VMs on the other hosts ran on untouched (their domains were there).
    let others_running = cloud
        .vms()
        .filter(|(_, v)| !on_victim.iter().any(|(id, _)| *id == v.id))
        .all(|(_, v)| v.state == VmState::Running);
    assert!(others_running, "a VM of a healthy host was disturbed");
    let restarts = e.ctl.ha_log().len();
    assert_eq!(restarts, answer.ha_vms, "HA worked only on the failed host's HA VMs");
    assert!(e.violations.is_empty(), "{:?}", e.violations);
    assert_eq!(
        e.world.total_running(),
        12 - on_victim.iter().filter(|(_, ha)| !ha).count() - answer.not_restarted.len()
    );
}
