//! Each fault kind, injected into a small lab: the invariants hold and the
//! fault has the effect an operator would expect.

use stratus_core::controller::JobStatus;
use stratus_core::vm::VmState;
use stratus_sim::report::RunReport;
use stratus_sim::runner::{RunOptions, Runner};

const BASE: &str = r#"
[scenario]
name = "fault-lab"
seed = 11
duration = "1h"

[settings]
"vm.allocation.algorithm" = "firstfit"

[[zones]]
name = "z1"

[[zones.networks]]
name = "guest"
cidr = "10.1.0.0/24"

[[zones.pods]]
name = "p1"
gateway = "172.16.1.1"
netmask = "255.255.255.0"
start_ip = "172.16.1.10"
end_ip = "172.16.1.250"

[[zones.pods.clusters]]
name = "c1"
hosts = [{ prefix = "kvm", count = 2, cores = 8, mhz = 2400, memory_gib = 32 }]
pools = [{ name = "ps1", capacity_gib = 2000 }]

[[offerings]]
name = "small"
cpu = 1
mhz = 1000
memory_mb = 1024

[[templates]]
name = "tiny"
size_gib = 2

[[accounts]]
name = "alice"
"#;

fn run(extra: &str) -> (Runner, RunReport) {
    run_with(extra, |_| {})
}

/// Like `run`, with a hook on the world before the run starts.
fn run_with(extra: &str, prepare: impl FnOnce(&mut Runner)) -> (Runner, RunReport) {
    let text = format!("{BASE}\n{extra}");
    let s = stratus_sim::scenario::parse(&text, "fault-lab.toml").unwrap_or_else(|e| panic!("{e}"));
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
    prepare(&mut r);
    r.run(&mut |_, _| {});
    let report = RunReport::build(&r, "fault-lab", 11, 0.0);
    assert!(
        report.invariant_violations.is_empty(),
        "{:?}",
        report.invariant_violations
    );
    (r, report)
}

fn failed(r: &Runner, command: &str) -> Vec<String> {
    r.engine
        .ctl
        .jobs()
        .iter()
        .filter(|j| j.command.as_str() == command && j.status == JobStatus::Failed)
        .map(|j| j.error.clone().unwrap_or_default())
        .collect()
}

const BURST: &str = r#"
[[workload]]
account = "alice"
offering = "small"
template = "tiny"
network = "guest"
arrival = { kind = "burst", count = 4 }
"#;

fn host<'a>(r: &'a Runner, name: &str) -> &'a stratus_sim::world::SimHost {
    r.engine.world.hosts.values().find(|h| h.name == name).unwrap()
}

fn status(r: &Runner, name: &str) -> stratus_core::inventory::HostStatus {
    r.engine
        .ctl
        .cloud()
        .inv
        .hosts
        .iter()
        .find(|h| h.name == name)
        .unwrap()
        .status
}

const LATE: &str = "[[workload]]\naccount = \"alice\"\noffering = \"small\"\ntemplate = \"tiny\"\n";

#[test]
fn host_crash_is_detected_fenced_and_later_deploys_avoid_it() {
    let (r, _) = run(&format!(
        "{BURST}\n[[faults.scheduled]]\nat = \"10m\"\nkind = \"host_crash\"\nhost = \"kvm1\"\n\n\
         {LATE}arrival = {{ kind = \"burst\", count = 1, at = \"20m\" }}\n"
    ));
    let kvm1 = host(&r, "kvm1");
    assert!(kvm1.crashed && kvm1.domains.is_empty(), "a crashed host runs nothing");
    assert_eq!(status(&r, "kvm1"), stratus_core::inventory::HostStatus::Down);
    // The burst was not HA: its VMs are Stopped, not restarted; the late VM lands on kvm2.
    assert!(failed(&r, "deployVirtualMachine").is_empty());
    let c = &r.engine.ctl.cloud();
    assert_eq!(c.vms().filter(|(_, v)| v.state == VmState::Stopped).count(), 4);
    assert_eq!(r.engine.world.total_running(), 1);
}

#[test]
fn short_host_hang_changes_nothing() {
    let (r, _) = run(&format!(
        "{BURST}\n[[faults.scheduled]]\nat = \"10m\"\nkind = \"host_hang\"\nhost = \"kvm1\"\nfor = \"4s\"\n"
    ));
    assert_eq!(
        host(&r, "kvm1").domains.len(),
        4,
        "a hang shorter than a ping timeout is invisible"
    );
    assert_eq!(status(&r, "kvm1"), stratus_core::inventory::HostStatus::Up);
    assert_eq!(r.engine.world.total_running(), 4);
}

#[test]
fn long_host_hang_self_fences_and_management_proves_it_by_the_lease() {
    let (r, _) = run(&format!(
        "{BURST}\n[[faults.scheduled]]\nat = \"10m\"\nkind = \"host_hang\"\nhost = \"kvm1\"\nfor = \"30m\"\n\n\
         {LATE}arrival = {{ kind = \"burst\", count = 1, at = \"15m\" }}\n"
    ));
    let kvm1 = host(&r, "kvm1");
    assert!(
        kvm1.watchdog.fenced_at_ms().is_some(),
        "the watchdog stopped its VMs when the lease could not be renewed"
    );
    assert!(kvm1.domains.is_empty());
    assert!(!kvm1.hung, "the hang ended after 30m");
    assert_eq!(
        status(&r, "kvm1"),
        stratus_core::inventory::HostStatus::Up,
        "back after the hang"
    );
    let h = r
        .engine
        .ctl
        .cloud()
        .inv
        .find_host(
            r.engine
                .ctl
                .cloud()
                .inv
                .hosts
                .iter()
                .find(|x| x.name == "kvm1")
                .unwrap()
                .id,
        )
        .unwrap();
    let ev = &r.engine.ctl.host_health(h).unwrap().evidence;
    assert!(
        ev.iter()
            .any(|e| e.source.starts_with("lease:") && e.detail.starts_with("not renewed")),
        "{ev:?}"
    );
    assert!(
        failed(&r, "deployVirtualMachine").is_empty(),
        "the late deploy avoided the silent host"
    );
}

#[test]
fn partition_with_fresh_lease_is_disconnected_never_down() {
    let (r, report) = run(&format!(
        "{BURST}\n[[faults.scheduled]]\nat = \"5m\"\nkind = \"partition\"\nhost = \"kvm1\"\nfor = \"20m\"\n\n\
         {LATE}arrival = {{ kind = \"burst\", count = 1, at = \"6m\" }}\n"
    ));
    // Nothing was restarted or stopped: the host was alive all along.
    assert!(failed(&r, "deployVirtualMachine").is_empty(), "{:?}", report.failures);
    assert_eq!(r.engine.world.total_running(), 5);
    assert!(r.engine.ctl.cloud().vms().all(|(_, v)| v.state == VmState::Running));
    assert_eq!(status(&r, "kvm1"), stratus_core::inventory::HostStatus::Up, "healed");
    let log = r.engine.keep_log.as_ref().unwrap();
    assert!(
        log.iter().any(|l| l.contains("Alert -> Disconnected")),
        "the partition was seen and judged"
    );
    assert!(!log.iter().any(|l| l.contains("-> Down")), "never Down");
}

#[test]
fn storage_outage_fails_volume_creation_with_the_pool_named() {
    let (r, _) = run(&format!(
        "[[faults.scheduled]]\nat = \"0s\"\nkind = \"storage_outage\"\npool = \"ps1\"\nfor = \"10m\"\n{BURST}"
    ));
    let errs = failed(&r, "deployVirtualMachine");
    assert_eq!(errs.len(), 4);
    assert!(errs[0].contains("storage pool ps1 is unavailable"), "{}", errs[0]);
    assert!(r.engine.ctl.cloud().vms().all(|(_, v)| v.state == VmState::Error));
    assert!(
        r.engine.ctl.cloud().book.pool.iter().all(|p| p.allocated == 0),
        "failed deploys hold no storage"
    );
}

#[test]
fn migration_failure_leaves_the_vm_on_its_source() {
    let (r, _) = run(
        "[[faults.scheduled]]\nat = \"0s\"\nkind = \"migration_failure\"\ncount = 1000\n\n\
         [[workload]]\naccount = \"alice\"\noffering = \"small\"\ntemplate = \"tiny\"\n\
         arrival = { kind = \"burst\", count = 2 }\nops_per_hour = { migrate = 6 }\n",
    );
    let errs = failed(&r, "migrateVirtualMachine");
    assert!(!errs.is_empty());
    assert!(errs.iter().all(|e| e.contains("migration failed")), "{errs:?}");
    assert!(r.engine.ctl.cloud().vms().all(|(_, v)| v.state == VmState::Running));
    assert_eq!(r.engine.world.total_running(), 2);
}

#[test]
fn operation_failure_rate_fails_some_jobs_cleanly() {
    let (r, report) = run(
        "[[faults.scheduled]]\nat = \"0s\"\nkind = \"op_failure_rate\"\nrate = 0.3\nfor = \"1h\"\n\n\
         [[workload]]\naccount = \"alice\"\noffering = \"small\"\ntemplate = \"tiny\"\nnetwork = \"guest\"\n\
         arrival = { kind = \"poisson\", per_hour = 40 }\nlifetime = { kind = \"exponential\", mean = \"20m\" }\n\
         ops_per_hour = { stop_start = 2, reboot = 2, migrate = 2 }\n",
    );
    assert!(report.jobs_failed > 0 && report.jobs_succeeded > 0, "{report:?}");
    // Safety: every running domain belongs to a VM the ledger believes runs
    // there.
    let c = &r.engine.ctl.cloud();
    for (hid, h) in &r.engine.world.hosts {
        for (vm, d) in &h.domains {
            if d.running {
                let v = c.vm(*vm).expect("a running domain has a VM record");
                assert!(
                    matches!(
                        v.state,
                        VmState::Running | VmState::Stopping | VmState::Starting | VmState::Migrating
                    ),
                    "{} runs on {} but the ledger says {}",
                    v.name,
                    h.name,
                    v.state
                );
                let _ = hid;
            }
        }
    }
    // Nothing is lost: what failed undos left behind is either held by the
    // reconciler or belongs to a job still running, and the report says which.
    assert!(report.leaks.is_empty(), "leaked: {:?}", report.leaks);
    let left = r.engine.leaks();
    assert_eq!(
        left.len(),
        report.in_flight.len() + report.awaiting_cleanup.len(),
        "{left:?}"
    );
}

#[test]
fn management_restart_unwinds_in_flight_jobs_and_recovers() {
    let (r, report) = run(&format!(
        "{BURST}\n[[faults.scheduled]]\nat = \"1s\"\nkind = \"management_restart\"\ndowntime = \"2m\"\n\n\
         [[workload]]\naccount = \"alice\"\noffering = \"small\"\ntemplate = \"tiny\"\n\
         arrival = {{ kind = \"burst\", count = 2, at = \"10m\" }}\n"
    ));
    let errs = failed(&r, "deployVirtualMachine");
    assert_eq!(errs.len(), 4, "the burst was in flight when the server died");
    assert!(
        errs.iter().all(|e| e.contains("management server restarted")),
        "{errs:?}"
    );
    assert_eq!(report.jobs_pending, 0);
    let running = r
        .engine
        .ctl
        .cloud()
        .vms()
        .filter(|(_, v)| v.state == VmState::Running)
        .count();
    assert_eq!(running, 2, "deploys after the restart succeed");
    assert_eq!(r.engine.world.total_running(), 2);
}

#[test]
fn same_seed_same_log_and_seeds_differ() {
    let extra = "[[workload]]\naccount = \"alice\"\noffering = \"small\"\ntemplate = \"tiny\"\n\
                 arrival = { kind = \"poisson\", per_hour = 30 }\nlifetime = { kind = \"exponential\", mean = \"10m\" }\n\
                 [faults.random]\nhost_crash_per_day = 20\nop_failure_rate = 0.05\n";
    let sha = |seed: u64| {
        let text = format!("{BASE}\n{extra}");
        let s = stratus_sim::scenario::parse(&text, "x.toml").unwrap();
        let built = stratus_sim::scenario::build(&s).unwrap();
        let mut r = Runner::new(
            s,
            built.cloud,
            &RunOptions {
                seed: Some(seed),
                ..Default::default()
            },
        );
        r.run(&mut |_, _| {});
        assert!(r.engine.violations.is_empty(), "{:?}", r.engine.violations);
        r.engine.log_sha256()
    };
    assert_eq!(sha(1), sha(1));
    assert_ne!(sha(1), sha(2));
}

#[test]
fn vm_crash_on_a_live_host_is_restarted_when_ha_and_stopped_otherwise() {
    const HA: &str = "[[offerings]]\nname = \"web-ha\"\ncpu = 1\nmhz = 1000\nmemory_mb = 1024\nha = true\n";
    let (r, report) = run(&format!(
        "{HA}\n[[workload]]\naccount = \"alice\"\noffering = \"web-ha\"\ntemplate = \"tiny\"\n\
         arrival = {{ kind = \"burst\", count = 1 }}\n\n\
         [[faults.scheduled]]\nat = \"10m\"\nkind = \"vm_crash\"\nhost = \"kvm1\"\n"
    ));
    assert_eq!(report.ha.restarted, 1, "{:?}", report.ha);
    assert!(r.engine.ctl.cloud().vms().all(|(_, v)| v.state == VmState::Running));
    assert_eq!(r.engine.world.total_running(), 1);

    let (r, report) = run(&format!(
        "{BURST}\n[[faults.scheduled]]\nat = \"10m\"\nkind = \"vm_crash\"\nhost = \"kvm1\"\n"
    ));
    assert_eq!(report.ha.restarted, 0);
    assert_eq!(
        r.engine
            .ctl
            .cloud()
            .vms()
            .filter(|(_, v)| v.state == VmState::Stopped)
            .count(),
        1,
        "not HA: left Stopped"
    );
}

/// Runs the lab with kvm1's clock off by `skew_ms`: its lease stamps (and its
/// watchdog) are in that clock, which management must never compare with its own.
fn run_skewed(extra: &str, skew_ms: i64) -> (Runner, RunReport) {
    run_with(extra, |r| {
        let h = r.engine.world.hosts.values_mut().find(|h| h.name == "kvm1").unwrap();
        h.clock_skew_ms = skew_ms;
    })
}

fn host_idx(r: &Runner, name: &str) -> stratus_core::ids::HostIdx {
    let inv = &r.engine.ctl.cloud().inv;
    inv.find_host(inv.hosts.iter().find(|x| x.name == name).unwrap().id)
        .unwrap()
}

#[test]
fn crashed_host_with_a_skewed_clock_is_detected_down_and_fenced() {
    for skew in [30_000, -30_000] {
        let (r, _) = run_skewed(
            &format!("{BURST}\n[[faults.scheduled]]\nat = \"10m\"\nkind = \"host_crash\"\nhost = \"kvm1\"\n"),
            skew,
        );
        let h = host_idx(&r, "kvm1");
        let ctl = &r.engine.ctl;
        assert_eq!(
            status(&r, "kvm1"),
            stratus_core::inventory::HostStatus::Down,
            "skew {skew}"
        );
        assert!(ctl.host_health(h).unwrap().fenced.is_some(), "skew {skew}: fenced");
        let id = ctl.cloud().inv.host(h).id;
        let down = ctl.host_downs().iter().find(|(x, _)| *x == id).expect("went Down").1;
        let down = r.engine.sim_time(down);
        assert!(
            down <= 600_000 + 30_000,
            "skew {skew}: a crashed host is Down within 30 s, not when its clock says so (at {down} ms)"
        );
        let log = r.engine.keep_log.as_ref().unwrap();
        assert!(
            !log.iter().any(|l| l.contains("Alert -> Disconnected")),
            "skew {skew}: a crashed host is never judged alive"
        );
        // Its (non-HA) VMs were stopped in the ledger once it was fenced.
        assert_eq!(
            ctl.cloud().vms().filter(|(_, v)| v.state == VmState::Stopped).count(),
            4,
            "skew {skew}"
        );
    }
}

#[test]
fn partitioned_host_with_a_skewed_clock_is_disconnected_never_down() {
    for skew in [30_000, -30_000] {
        let (r, report) = run_skewed(
            &format!(
                "{BURST}\n[[faults.scheduled]]\nat = \"5m\"\nkind = \"partition\"\nhost = \"kvm1\"\nfor = \"20m\"\n"
            ),
            skew,
        );
        let log = r.engine.keep_log.as_ref().unwrap();
        assert!(!log.iter().any(|l| l.contains("-> Down")), "skew {skew}: never Down");
        assert!(
            log.iter().any(|l| l.contains("Alert -> Disconnected")),
            "skew {skew}: the partition was seen and judged"
        );
        assert!(host(&r, "kvm1").watchdog.fenced_at_ms().is_none(), "skew {skew}");
        assert_eq!(r.engine.world.total_running(), 4, "skew {skew}: {:?}", report.failures);
        assert!(
            r.engine.ctl.cloud().vms().all(|(_, v)| v.state == VmState::Running),
            "skew {skew}"
        );
        let h = host_idx(&r, "kvm1");
        let ev = &r.engine.ctl.host_health(h).unwrap().evidence;
        assert!(
            ev.iter()
                .any(|e| e.source.starts_with("lease:") && e.detail.starts_with("renewed since")),
            "skew {skew}: {ev:?}"
        );
    }
}
