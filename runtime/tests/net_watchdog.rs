//! The agents' own isolation watchdog, end to end on a simulated network
//! (turmoil): each agent renews its lease on its cluster's NFS pool and runs
//! `stratus_drivers::Watchdog`. A storage outage longer than
//! `ha.lease.timeout` while the management server still answers stops no VM;
//! a partition while the lease still renews stops none either; losing both
//! stops the host's VMs (once), and after the repair HA brings them back.

mod common;

use common::*;
use std::sync::atomic::Ordering::Relaxed;
use stratus_core::ids::{HostId, PoolId, VmId};
use stratus_core::inventory::HostStatus;
use stratus_core::vm::VmState;

const SEED: u64 = 17;

fn running_on(n: &Net, host: HostId) -> Vec<VmId> {
    let w = n.backend.world.lock().unwrap();
    w.hosts[&host]
        .domains
        .iter()
        .filter(|(_, d)| d.running)
        .map(|(vm, _)| *vm)
        .collect()
}

fn set_pool(n: &Net, pool: PoolId, down: bool) {
    n.backend.world.lock().unwrap().pools.get_mut(&pool).unwrap().down = down;
}

fn run_checked(n: &mut Net, until: f64) {
    while n.now().as_secs_f64() < until {
        let next = (n.now().as_secs_f64() + 1.0).min(until);
        n.run_until(next);
        let bad = n.invariants();
        n.assert_clean(&bad);
    }
}

fn self_fenced(n: &Net) -> Vec<u64> {
    n.stats.iter().map(|s| s.self_fenced.load(Relaxed)).collect()
}

#[test]
fn only_a_host_without_lease_and_management_stops_its_vms() {
    let mut n = net_with(lab(SEED, 1, 3), SEED, Watchdogs::Agents, |_| Default::default());
    let pool = lease_pools(&n.lab.cloud, n.lab.hosts[0])[0];
    n.run_until(3.0);
    assert_eq!(n.gw.connected().len(), 3, "every agent enrolls");
    for k in 0..6 {
        let req = n.lab.deploy(&format!("vm{k}"));
        n.submit(req);
    }
    run_checked(&mut n, 30.0);
    let bad = n.invariants_at_rest();
    n.assert_clean(&bad);
    let (i, host) = (0..3)
        .map(|i| (i, n.lab.hosts[i]))
        .max_by_key(|(_, h)| running_on(&n, *h).len())
        .unwrap();
    let name = n.lab.names[i].clone();
    let before = running_on(&n, host);
    assert!(!before.is_empty(), "VMs run on {name}");
    let total = n.backend.world.lock().unwrap().total_running();
    assert_eq!(total, 6);

    // 1. A storage outage of 30 s (ha.lease.timeout is 9 s); management answers.
    set_pool(&n, pool, true);
    run_checked(&mut n, 60.0);
    set_pool(&n, pool, false);
    assert_eq!(n.backend.world.lock().unwrap().total_running(), 6, "no VM stopped");
    assert_eq!(self_fenced(&n), vec![0, 0, 0]);

    // 2. A 30 s partition of the busiest host; its lease renews.
    n.sim.partition(MS, name.as_str());
    run_checked(&mut n, 90.0);
    assert_eq!(running_on(&n, host), before, "a lost link alone stops nothing");
    assert_eq!(self_fenced(&n), vec![0, 0, 0]);
    n.sim.repair(MS, name.as_str());
    run_checked(&mut n, 110.0);
    assert_eq!(n.gw.connected().len(), 3, "back after the partition");

    // 3. Both at once: the host's watchdog stops its VMs after the timeout.
    set_pool(&n, pool, true);
    n.sim.partition(MS, name.as_str());
    run_checked(&mut n, 115.0);
    assert_eq!(running_on(&n, host), before, "not before the lease timeout");
    run_checked(&mut n, 125.0);
    assert!(
        running_on(&n, host).is_empty(),
        "isolated: the watchdog stopped its VMs"
    );
    let mut expected = vec![0, 0, 0];
    expected[i] = 1;
    assert_eq!(self_fenced(&n), expected, "only the isolated host, once");
    n.gw.with_controller(|c| {
        let h = c.cloud().inv.find_host(host).unwrap();
        assert_ne!(c.cloud().inv.host(h).status, HostStatus::Up, "management noticed");
    });

    // Repair: the host reports, the controller finds its VMs gone and HA
    // restarts them; everything converges.
    run_checked(&mut n, 140.0);
    set_pool(&n, pool, false);
    n.sim.repair(MS, name.as_str());
    while n.now().as_secs_f64() < 400.0 {
        let t = n.now().as_secs_f64() + 5.0;
        run_checked(&mut n, t);
        let all_running =
            n.gw.with_controller(|c| c.cloud().vms().all(|(_, v)| v.state == VmState::Running));
        if all_running && n.pending_jobs() == 0 && n.backend.world.lock().unwrap().total_running() == 6 {
            break;
        }
    }
    let bad = n.invariants_at_rest();
    n.assert_clean(&bad);
    assert_eq!(
        n.backend.world.lock().unwrap().total_running(),
        6,
        "every VM runs again"
    );
    assert_eq!(self_fenced(&n), expected);
}
