//! The cases a weaker world model never built, each as a scenario the
//! controller must get right, and each safety invariant planted into a real
//! run's state and seen reported by the same function the engine calls.

use stratus_core::inventory::{HostStatus, ResourceState};
use stratus_core::vm::VmState;
use stratus_sim::invariants;
use stratus_sim::report::RunReport;
use stratus_sim::runner::{RunOptions, Runner};

mod labs;

/// Two clusters of two hosts on one zone-wide pool, 4 HA VMs on kvm1 and kvm2.
fn two_clusters() -> String {
    labs::two_clusters("danger-lab", 21, "", 4)
}

fn run(extra: &str) -> (Runner, RunReport) {
    let text = format!("{}\n{extra}", two_clusters());
    let s = stratus_sim::scenario::parse(&text, "danger-lab.toml").unwrap_or_else(|e| panic!("{e}"));
    let built = stratus_sim::scenario::build(&s).unwrap();
    let mut r = Runner::new(
        s,
        built.cloud,
        &RunOptions {
            audit_every_event: true,
            keep_log: true,
            ..Default::default()
        },
    );
    r.run(&mut |_, _| {});
    let report = RunReport::build(&r, "danger-lab", 21, 0.0);
    (r, report)
}

fn host_named<'a>(r: &'a Runner, name: &str) -> &'a stratus_core::inventory::Host {
    r.engine.ctl.cloud().inv.hosts.iter().find(|h| h.name == name).unwrap()
}

fn vms_on(r: &Runner, name: &str) -> usize {
    let id = host_named(r, name).id;
    r.engine.world.hosts[&id].domains.values().filter(|d| d.running).count()
}

const NEIGHBOUR_CRASHED_THEN_HANG: &str = r#"
[[faults.scheduled]]
at = "10m"
kind = "host_crash"
host = "kvm1"

[[faults.scheduled]]
at = "20m"
kind = "host_hang"
host = "kvm2"
for = "30m"
"#;

#[test]
fn neighbour_crashed_first_then_host_hung_waits_for_the_lease_proof() {
    let (r, report) = run(NEIGHBOUR_CRASHED_THEN_HANG);
    assert!(
        report.invariant_violations.is_empty(),
        "{:?}",
        report.invariant_violations
    );
    assert!(report.passed(), "{}", report.to_text());
    // No neighbour could vouch for kvm2, so its lease decided: Down, fenced by
    // the lease (after its watchdog stopped the VMs), VMs restarted in c2.
    let log = r.engine.keep_log.as_ref().unwrap();
    assert!(
        log.iter().any(|l| l.contains("kvm2") && l.contains("lease stale for")),
        "kvm2 was proven fenced by its lease"
    );
    assert!(
        r.engine
            .ctl
            .ha_log()
            .iter()
            .filter(|o| o.recovered_at.is_some())
            .count()
            >= 2
    );
    assert_eq!(r.engine.world.total_running(), 4, "every HA VM runs again, once");
    assert_eq!(vms_on(&r, "spare1") + vms_on(&r, "spare2") + vms_on(&r, "kvm2"), 4);
}

#[test]
fn a_frozen_host_no_neighbour_can_reach_is_down_but_restarted_only_after_its_lease_proof() {
    let (r, report) =
        run("[[faults.scheduled]]\nat = \"10m\"\nkind = \"host_freeze\"\nhost = \"kvm1\"\nfor = \"40m\"\n");
    assert!(
        report.invariant_violations.is_empty(),
        "{:?}",
        report.invariant_violations
    );
    let kvm1 = &r.engine.world.hosts[&host_named(&r, "kvm1").id];
    assert!(kvm1.watchdog.fenced_at_ms().is_some(), "its watchdog stopped the VMs");
    let log = r.engine.keep_log.as_ref().unwrap();
    assert!(log.iter().any(|l| l.contains("kvm1") && l.contains("-> Down")));
    assert_eq!(r.engine.world.total_running(), 4, "restarted once each");
}

#[test]
fn a_live_host_cut_off_from_management_and_its_neighbours_is_never_marked_down() {
    // Its storage path works: the lease keeps advancing, so it is alive.
    let (r, report) = run("[[faults.scheduled]]\nat = \"10m\"\nkind = \"isolation\"\nhost = \"kvm1\"\nfor = \"30m\"\n");
    assert!(
        report.invariant_violations.is_empty(),
        "{:?}",
        report.invariant_violations
    );
    let log = r.engine.keep_log.as_ref().unwrap();
    assert!(log.iter().any(|l| l.contains("kvm1") && l.contains("-> Disconnected")));
    assert!(
        !log.iter().any(|l| l.contains("kvm1") && l.contains("-> Down")),
        "never Down"
    );
    assert_eq!(report.ha.restarted, 0, "nothing restarted while it lived");
    assert_eq!(r.engine.world.total_running(), 4);
}

#[test]
fn an_agent_only_hang_keeps_the_host_alive_and_its_vms_running() {
    let (r, report) =
        run("[[faults.scheduled]]\nat = \"10m\"\nkind = \"agent_hang\"\nhost = \"kvm1\"\nfor = \"30m\"\n");
    assert!(report.passed(), "{}", report.to_text());
    let kvm1 = &r.engine.world.hosts[&host_named(&r, "kvm1").id];
    assert!(
        kvm1.watchdog.fenced_at_ms().is_none(),
        "its leases lived: no self-fencing"
    );
    let log = r.engine.keep_log.as_ref().unwrap();
    assert!(log.iter().any(|l| l.contains("kvm1") && l.contains("-> Disconnected")));
    assert!(!log.iter().any(|l| l.contains("kvm1") && l.contains("-> Down")));
    assert_eq!(report.ha.restarted, 0, "nothing restarted while it lived");
    assert_eq!(r.engine.world.total_running(), 4);
}

#[test]
fn stopped_leases_on_a_host_that_still_answers_change_nothing() {
    let (r, report) =
        run("[[faults.scheduled]]\nat = \"10m\"\nkind = \"lease_stop\"\nhost = \"kvm1\"\nfor = \"30m\"\n");
    assert!(report.passed(), "{}", report.to_text());
    assert_eq!(report.ha.restarted, 0);
    assert_eq!(host_named(&r, "kvm1").status, HostStatus::Up);
    assert_eq!(r.engine.world.total_running(), 4);
}

#[test]
fn lost_replies_and_an_asymmetric_link_leave_nothing_behind() {
    let (r, report) = run(
        "[[faults.scheduled]]\nat = \"0s\"\nkind = \"lost_replies\"\nrate = 0.3\nfor = \"20m\"\n\n\
         [[faults.scheduled]]\nat = \"5m\"\nkind = \"asymmetric_partition\"\nhost = \"kvm2\"\nfor = \"10m\"\n",
    );
    assert!(
        report.invariant_violations.is_empty(),
        "{:?}",
        report.invariant_violations
    );
    assert!(report.leaks.is_empty(), "{:?}", report.leaks);
    // Whatever ran, runs once and is known to the ledger.
    let missing = stratus_sim::census::missing(&r.engine.world.census(), r.engine.ctl.cloud());
    assert!(missing.is_empty(), "{missing:?}");
}

#[test]
fn maintenance_is_declared_only_after_the_last_migration_finished() {
    // Slow migrations: the last ones are still running long after they start.
    let (r, report) = run("[latency]\nmigrate = [\"60s\", \"90s\"]\n\n\
         [[actions]]\nkind = \"prepare_maintenance\"\nat = \"10m\"\nhost = \"kvm1\"\n");
    assert!(
        report.invariant_violations.is_empty(),
        "{:?}",
        report.invariant_violations
    );
    assert_eq!(host_named(&r, "kvm1").resource_state, ResourceState::Maintenance);
    assert_eq!(vms_on(&r, "kvm1"), 0);
    assert!(r.engine.ctl.cloud().vms().all(|(_, v)| v.state == VmState::Running));
}

// ---- each world invariant, planted into a real run's end state ----

#[test]
fn planted_a_domain_still_running_on_the_fenced_host_is_reported() {
    // kvm2 stays hung to the end, so its fencing proof stands.
    let (mut r, _) = run(&NEIGHBOUR_CRASHED_THEN_HANG.replace("\"30m\"", "\"2h\""));
    let lost = r
        .engine
        .ctl
        .ha_log()
        .iter()
        .find(|o| o.host.is_some())
        .expect("an HA restart")
        .clone();
    let h = lost.host.unwrap();
    assert!(invariants::fenced_before_ha_restart(&r.engine.ctl, &r.engine.world, lost.vm, h).is_empty());
    // Planted: the VM's domain never stopped on the host it was lost with.
    let wh = r.engine.world.hosts.get_mut(&h).unwrap();
    wh.domains.entry(lost.vm).or_default().running = true;
    let v = invariants::fenced_before_ha_restart(&r.engine.ctl, &r.engine.world, lost.vm, h);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].starts_with("[fenced-before-ha-restart]") && v[0].contains("still runs there"),
        "{v:?}"
    );
}

#[test]
fn planted_a_loss_on_a_host_not_proven_fenced_is_reported() {
    // kvm1 never failed: losing a VM "with" it has no fencing proof behind it.
    let (r, _) = run("");
    let kvm1 = host_named(&r, "kvm1").id;
    let (_, vm) = r.engine.ctl.cloud().vms().next().unwrap();
    let v = invariants::fenced_before_ha_restart(&r.engine.ctl, &r.engine.world, vm.id, kvm1);
    assert!(
        v.iter()
            .any(|m| m.contains("declared lost with host kvm1 before kvm1 was proven fenced")),
        "{v:?}"
    );
}

#[test]
fn planted_a_fresh_lease_on_a_host_marked_down_is_reported() {
    // Frozen to the end: it never renews again.
    let (mut r, _) = run("[[faults.scheduled]]\nat = \"10m\"\nkind = \"host_freeze\"\nhost = \"kvm1\"\nfor = \"2h\"\n");
    let (h, at) = *r.engine.ctl.host_downs().first().expect("kvm1 went Down");
    let at = r.engine.sim_time(at);
    assert!(invariants::no_down_with_fresh_lease(&r.engine.ctl, &r.engine.world, 0, at, 10_000).is_empty());
    // Planted: the host had renewed its lease just before it was marked Down.
    let wh = r.engine.world.hosts.get_mut(&h).unwrap();
    wh.last_renewal_at = Some(at - 2_000);
    let v = invariants::no_down_with_fresh_lease(&r.engine.ctl, &r.engine.world, 0, at, 10_000);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].starts_with("[no-down-with-fresh-lease] host kvm1 marked Down 2.0 s after"),
        "{v:?}"
    );
}

#[test]
fn planted_a_failed_deploy_keeping_its_volume_domain_and_port_is_reported() {
    // Every deploy fails: the pool is down when they run.
    let (mut r, report) =
        run("[[faults.scheduled]]\nat = \"0s\"\nkind = \"storage_outage\"\npool = \"zone-ps\"\nfor = \"10m\"\n");
    assert!(report.jobs_failed >= 1, "{}", report.to_text());
    assert!(invariants::failed_op_holds_nothing(&r.engine.ctl, &r.engine.world).is_empty());
    let (vm, volume) = {
        let c = r.engine.ctl.cloud();
        let (_, v) = c
            .vms()
            .find(|(_, v)| v.state == VmState::Error)
            .expect("a failed deploy");
        (v.id, c.volume_at(v.volumes[0]).id)
    };
    // Planted: its root volume, domain and NIC port outlived the unwind.
    let pool = *r.engine.world.pools.keys().next().unwrap();
    r.engine.world.pools.get_mut(&pool).unwrap().volumes.insert(volume);
    let kvm1 = host_named(&r, "kvm1").id;
    let wh = r.engine.world.hosts.get_mut(&kvm1).unwrap();
    wh.domains.entry(vm).or_default();
    wh.ports
        .insert((vm, stratus_core::controller::effects::Mac([2, 0, 0, 0, 0, 7])));
    let v = invariants::failed_op_holds_nothing(&r.engine.ctl, &r.engine.world);
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v.iter().all(|m| m.starts_with("[failed-op-holds-nothing]")));
}

#[test]
fn planted_a_domain_on_a_host_in_maintenance_is_reported() {
    let (mut r, _) = run("[[actions]]\nkind = \"prepare_maintenance\"\nat = \"10m\"\nhost = \"kvm1\"\n");
    assert!(invariants::no_vm_on_maintenance_host(&r.engine.ctl, &r.engine.world).is_empty());
    let kvm1 = host_named(&r, "kvm1").id;
    let vm = r.engine.ctl.cloud().vms().next().unwrap().1.id;
    r.engine
        .world
        .hosts
        .get_mut(&kvm1)
        .unwrap()
        .domains
        .entry(vm)
        .or_default()
        .running = true;
    let v = invariants::no_vm_on_maintenance_host(&r.engine.ctl, &r.engine.world);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].starts_with("[no-vm-on-maintenance-host]") && v[0].contains("kvm1"));
}

#[test]
fn a_deploy_failing_in_a_45_s_storage_outage_leaves_nothing_once_the_pool_returns() {
    // The outage starts at different points of the burst's deploys, so some
    // deploys fail after their volume was created and their undo meets the
    // outage too: retried with backoff, then held by the reconciler, which
    // deletes the volume once the pool is back.
    let mut undo_failed = 0;
    for start_s in (10..=150).step_by(3) {
        let (r, report) = run(&format!(
            "[[faults.scheduled]]\nat = \"{start_s}s\"\nkind = \"storage_outage\"\npool = \"zone-ps\"\nfor = \"45s\"\n"
        ));
        assert!(
            report.invariant_violations.is_empty(),
            "{start_s}s: {:?}",
            report.invariant_violations
        );
        assert!(report.leaks.is_empty(), "{start_s}s: leaked {:?}", report.leaks);
        assert!(
            report.awaiting_cleanup.is_empty(),
            "{start_s}s: {:?}",
            report.awaiting_cleanup
        );
        assert!(report.in_flight.is_empty(), "{start_s}s: {:?}", report.in_flight);
        let log = r.engine.keep_log.as_ref().unwrap();
        if log
            .iter()
            .any(|l| l.contains("\"undo.retry\"") || l.contains("\"leftover\""))
        {
            undo_failed += 1;
            assert!(
                log.iter()
                    .any(|l| l.contains("\"leftover.cleaned\"") || l.contains("\"undo\"")),
                "{start_s}s: the failed undo was finished later"
            );
        }
    }
    assert!(
        undo_failed > 0,
        "no outage start time made an undo fail: the test misses its case"
    );
}

#[test]
fn a_report_with_a_leak_fails_unless_the_scenario_expects_it() {
    let (mut r, report) = run("");
    assert!(report.passed());
    // Planted: a volume on the pool that no record owns.
    let pool = *r.engine.world.pools.keys().next().unwrap();
    let stray = stratus_core::ids::VolumeId(stratus_core::uuid::Uuid::from_u128(7));
    r.engine.world.pools.get_mut(&pool).unwrap().volumes.insert(stray);
    let report = RunReport::build(&r, "danger-lab", 21, 0.0);
    assert_eq!(report.leaks.len(), 1, "{:?}", report.leaks);
    assert!(!report.passed(), "a leak fails the run");
    assert!(report.to_text().contains("LEAKED"));
}
