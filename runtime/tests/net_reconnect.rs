//! Reconnects on a simulated network (turmoil): a request whose answer was
//! lost is sent again and answered from the agent's cache, not executed twice;
//! the first report after a reconnect makes the controller stop strays and
//! restart what died meanwhile; same seed, same event log.

mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use stratus_core::controller::effects::DriverCall;
use stratus_core::controller::{JobStatus, Request};
use stratus_core::ids::{HostId, VmId};
use stratus_core::vm::{Charge, VmState};
use stratus_sim::world::SimDomain;

fn vm_of(n: &Net, job: usize) -> VmId {
    let id = n.submitted[job];
    n.gw.with_controller(|c| c.job(id).unwrap().vm.unwrap())
}

fn job_status(n: &Net, job: usize) -> JobStatus {
    let id = n.submitted[job];
    n.gw.with_controller(|c| c.job(id).unwrap().status)
}

fn host_of(n: &Net, vm: VmId) -> Option<HostId> {
    n.gw.with_controller(|c| match c.cloud().vm(vm)?.charge {
        Charge::Used { host } => Some(c.cloud().host_id(host)),
        _ => None,
    })
}

#[test]
fn a_retried_request_is_answered_from_the_cache() {
    let seed = 5;
    // When h1 runs its first StartDomain, its link to the management server
    // breaks (one way): the answer is lost, the domain runs.
    let armed = Arc::new(AtomicBool::new(true));
    let trap = armed.clone();
    let mut n = net(lab(seed, 1, 4), seed, move |i| {
        let trap = trap.clone();
        stratus_agent::Hooks {
            before_call: (i == 0).then(|| {
                Box::new(move |call: &DriverCall| {
                    if matches!(call, DriverCall::StartDomain { .. }) && trap.swap(false, Relaxed) {
                        turmoil::partition_oneway("h1", MS);
                    }
                    None
                }) as _
            }),
            ..Default::default()
        }
    });
    n.run_until(2.0);
    let Request::Deploy(mut spec) = n.lab.deploy("vm1") else {
        unreachable!()
    };
    spec.start = false;
    n.submit(Request::Deploy(spec));
    n.run_until(3.0);
    let vm = vm_of(&n, 0);
    let h1 = n.lab.hosts[0];
    n.submit(Request::Start { vm, host: Some(h1) });
    n.run_until(8.0);
    assert!(!armed.load(Relaxed), "the start reached h1");
    assert_eq!(job_status(&n, 1), JobStatus::Pending, "its answer was lost");
    assert_eq!(n.backend.world.lock().unwrap().running_copies.get(&vm), Some(&1));
    n.run_until(20.0);
    n.sim.repair_oneway("h1", MS);
    n.run_until(40.0);
    assert_eq!(job_status(&n, 1), JobStatus::Succeeded);
    let starts = n
        .backend
        .world
        .lock()
        .unwrap()
        .calls_by_kind
        .get("StartDomain")
        .copied();
    assert_eq!(starts, Some(1), "StartDomain ran once");
    assert!(n.stats[0].answered_from_cache.load(Relaxed) >= 1);
    assert!(n.gw.stats().requests_resent >= 1);
    assert!(n.stats[0].sessions.load(Relaxed) >= 2, "h1 reconnected");
    let bad = n.invariants_at_rest();
    n.assert_clean(&bad);
}

fn reconcile(seed: u64) -> Net {
    let mut n = net(lab(seed, 1, 4), seed, |_| Default::default());
    n.run_until(2.0);
    for k in 0..6 {
        let req = n.lab.deploy(&format!("vm{k}"));
        n.submit(req);
    }
    n.run_until(10.0);
    let vms: Vec<VmId> = (0..6).map(|j| vm_of(&n, j)).collect();
    assert!((0..6).all(|j| job_status(&n, j) == JobStatus::Succeeded));
    // X is cut off; meanwhile one of its VMs dies and it starts running a copy
    // of a VM that lives elsewhere, plus a domain nobody knows.
    let a = vms[0];
    let x = host_of(&n, a).unwrap();
    let b = *vms
        .iter()
        .find(|v| host_of(&n, **v) != Some(x))
        .expect("a VM on another host");
    let y = host_of(&n, b).unwrap();
    let xname = n.lab.names[n.lab.hosts.iter().position(|h| *h == x).unwrap()].clone();
    n.sim.partition(MS, xname.as_str());
    n.run_until(12.0);
    let ghost = VmId(stratus_core::uuid::Uuid::from_u128(0xdead));
    {
        let mut w = n.backend.world.lock().unwrap();
        w.execute(
            &DriverCall::StopDomain {
                vm: a,
                host: x,
                forced: true,
            },
            0,
        );
        let h = w.hosts.get_mut(&x).unwrap();
        for vm in [b, ghost] {
            h.domains.insert(
                vm,
                SimDomain {
                    running: true,
                    ..Default::default()
                },
            );
        }
        // Counted by hand: the test plants the copy, the invariant checker
        // must not blame the controller for it.
        *w.running_copies.entry(b).or_insert(0) += 1;
        *w.running_copies.entry(ghost).or_insert(0) += 1;
    }
    n.run_until(25.0);
    n.gw.with_controller(|c| {
        let v = c.cloud().vm(a).unwrap();
        assert_eq!(v.state, VmState::Running, "the ledger cannot know yet");
    });
    n.sim.repair(MS, xname.as_str());
    n.run_until(45.0);
    {
        let w = n.backend.world.lock().unwrap();
        let on_x = &w.hosts[&x].domains;
        assert!(!on_x.contains_key(&b), "the stray copy of b on X was stopped");
        assert!(!on_x.contains_key(&ghost), "the unknown domain on X was stopped");
        assert!(w.hosts[&y].domains[&b].running, "b still runs where the ledger has it");
        assert_eq!(w.running_copies.get(&b), Some(&1));
        assert_eq!(w.running_copies.get(&a), Some(&1), "a was restarted by HA");
    }
    let log = n.gw.log_tail().join("\n");
    assert!(
        log.matches("\"vm.stray\"").count() >= 4,
        "stray found and stopped:\n{log}"
    );
    assert!(log.contains("its domain is gone from a live host"), "{log}");
    assert!(n.gw.with_controller(|c| c.ha_log().iter().any(|o| o.vm == a && o.recovered_at.is_some())));
    let bad = n.invariants_at_rest();
    n.assert_clean(&bad);
    n
}

#[test]
fn reconnect_stops_strays_and_restarts_lost_vms_deterministically() {
    let first = reconcile(21).gw.log_sha256();
    let second = reconcile(21).gw.log_sha256();
    assert_eq!(first, second, "same seed, same event log");
}
