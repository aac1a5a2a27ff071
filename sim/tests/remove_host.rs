//! The `remove_host` mid-run action: a drained host leaves the inventory and
//! the simulated datacenter (capacity gone, never a destination again, the
//! removal survives a management restart recovered from the journal), and a
//! host that is not drained is refused with the reason in the report.

use std::path::Path;
use stratus_core::inventory::HostStatus;
use stratus_sim::journal::MemoryJournal;
use stratus_sim::report::RunReport;
use stratus_sim::runner::{RunOptions, Runner};
use stratus_sim::scenario;

fn run(actions: &str) -> (RunReport, Runner) {
    let base =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/maintenance-rolling.toml"))
            .unwrap();
    // The rolling maintenance and its end-state expectations make way for ours.
    let cut = base.find("[[actions]]").unwrap();
    let text = format!(
        "{}{actions}\n[[expect]]\nkind = \"all_vms_running\"\n\n[[expect]]\nkind = \"max_ha_restarts\"\nmax = 0\n",
        &base[..cut]
    );
    let s = scenario::parse(&text, "remove.toml").unwrap_or_else(|e| panic!("{e}"));
    let built = scenario::build(&s).unwrap();
    let opts = RunOptions {
        keep_log: true,
        ..Default::default()
    };
    let mut r = Runner::new(s, built.cloud, &opts);
    // Every management restart is a real recovery from this journal (hash checked).
    r.engine.snapshot_every = 200;
    r.engine.attach_journal(Box::new(MemoryJournal::new())).unwrap();
    r.run(&mut |_, _| {});
    (RunReport::build(&r, "remove", 1, 0.0), r)
}

const DRAIN_THEN_REMOVE: &str = r#"
[[actions]]
kind = "prepare_maintenance"
at = "5m"
host = "kvm1"

[[actions]]
kind = "remove_host"
at = "15m"
host = "kvm1"

[[actions]]
kind = "remove_host"
at = "16m"
host = "kvm2"

[[faults.scheduled]]
at = "20m"
kind = "management_restart"
downtime = "30s"

[[expect]]
kind = "host_state"
host = "kvm1"
state = "Removed"
"#;

#[test]
fn a_drained_host_is_removed_and_one_in_use_is_refused_in_the_report() {
    let (report, r) = run(DRAIN_THEN_REMOVE);
    assert!(report.passed(), "{}", report.to_text());
    assert!(
        report.recoveries >= 1,
        "the management restart was recovered from the journal: {}",
        report.to_text()
    );
    let c = r.engine.ctl.cloud();
    let kvm1 = c.inv.hosts.iter().find(|h| h.name == "kvm1").unwrap();
    assert_eq!(kvm1.status, HostStatus::Removed);
    assert!(c.inv.find_host(kvm1.id).is_none());
    assert!(
        !r.engine.world.hosts.contains_key(&kvm1.id),
        "it left the simulated world"
    );
    // Its capacity is gone: the cluster counts three hosts of 16 x 2400 MHz.
    assert_eq!(
        c.book.cluster[0].cpu.total,
        c.book.host.iter().map(|h| h.cpu.total).sum::<u64>()
    );
    assert_eq!(c.inv.clusters[0].hosts.len(), 3);
    assert!(
        c.vms()
            .all(|(_, v)| v.host.is_none_or(|h| c.inv.host(h).name != "kvm1"))
    );
    assert!(c.audit().ok(), "{:?}", c.audit());
    // kvm2 was not drained: refused, said in the report with when and why.
    assert_eq!(report.actions_refused.len(), 1, "{:?}", report.actions_refused);
    let why = &report.actions_refused[0];
    assert!(
        why.starts_with("at 960 s:") && why.contains("kvm2") && why.contains("not in maintenance mode"),
        "{why}"
    );
    assert!(report.to_text().contains("operator actions refused (1):"));
    let kvm2 = c.inv.hosts.iter().find(|h| h.name == "kvm2").unwrap();
    assert_eq!(kvm2.status, HostStatus::Up);
}

#[test]
fn forced_removal_of_a_host_with_vms_is_refused_naming_them() {
    let (report, r) = run(r#"
[[actions]]
kind = "remove_host"
at = "5m"
host = "kvm1"
forced = true
"#);
    assert_eq!(report.actions_refused.len(), 1, "{}", report.to_text());
    assert!(
        report.actions_refused[0].contains("VM(s) still on it"),
        "{:?}",
        report.actions_refused
    );
    let c = r.engine.ctl.cloud();
    assert!(c.inv.hosts.iter().all(|h| h.status != HostStatus::Removed));
}

/// A crashed host whose VMs HA restarted elsewhere can be removed (forced:
/// it is Down, not in maintenance); its power coming back later finds nothing.
#[test]
fn a_crashed_host_emptied_by_ha_can_be_removed_forced() {
    let (report, r) = run(r#"
[[faults.scheduled]]
at = "5m"
kind = "host_crash"
host = "kvm1"
for = "30m"

[[actions]]
kind = "remove_host"
at = "20m"
host = "kvm1"
forced = true
"#);
    // HA restarted kvm1's VMs: the run's max_ha_restarts = 0 fails, nothing else.
    assert!(report.invariant_violations.is_empty(), "{}", report.to_text());
    assert!(report.actions_refused.is_empty(), "{:?}", report.actions_refused);
    assert!(report.ha.restarted > 0);
    let c = r.engine.ctl.cloud();
    let kvm1 = c.inv.hosts.iter().find(|h| h.name == "kvm1").unwrap();
    assert_eq!(kvm1.status, HostStatus::Removed);
    assert!(!r.engine.world.hosts.contains_key(&kvm1.id));
    assert!(
        c.vms().all(|(_, v)| v.state.as_str() == "Running"),
        "{}",
        report.to_text()
    );
}
