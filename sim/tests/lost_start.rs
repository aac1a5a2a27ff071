//! A domain defined by a deploy whose start was lost must not outlive the
//! VM's move elsewhere. The shape (first found by fuzz seed 151 of
//! crash-during-maintenance): kvm1's link turns asymmetric (management's calls
//! lost, its pings arrive) after the deploys defined their domains there and
//! before their starts arrive. The VMs are held Unknown, then lost; their HA
//! restarts are placed on kvm1 again and fail there; kvm1 goes to Maintenance,
//! so they finally run elsewhere. The cleanup of the first definitions was
//! dropped while the restart held kvm1, and four defined domains stayed on
//! kvm1 unknown to the ledger. It is now held until the restart's outcome.

use stratus_sim::census;
use stratus_sim::report::RunReport;
use stratus_sim::runner::{RunOptions, Runner};

const SCENARIO: &str = r#"
[scenario]
name = "lost-start-then-restart-on-the-same-host"
description = "deploys whose start is lost on an asymmetric link, restarted on that host again"
seed = 151
duration = "2h"

[settings]
"vm.allocation.algorithm" = "firstfit"

[[zones]]
name = "ha-z1"
guest_cidr = "10.8.0.0/16"

[[zones.image_stores]]
name = "ha-secondary"
url = "nfs://192.0.2.30/export/secondary"
capacity_gib = 2048

[[zones.networks]]
name = "ha-guest"
cidr = "10.8.1.0/24"

[[zones.pods]]
name = "ha-pod1"
gateway = "172.16.8.1"
netmask = "255.255.255.0"
start_ip = "172.16.8.10"
end_ip = "172.16.8.250"

[[zones.pods.clusters]]
name = "ha-c1"
hypervisor = "KVM"

[[zones.pods.clusters.hosts]]
prefix = "kvm"
count = 4
cores = 16
mhz = 2400
memory_gib = 64

[[zones.pods.clusters.pools]]
name = "ha-primary"
type = "nfs"
capacity_gib = 4096

[[offerings]]
name = "web-ha"
cpu = 2
mhz = 1000
memory_mb = 2048
ha = true

[[offerings]]
name = "batch"
cpu = 1
mhz = 1000
memory_mb = 1024

[[templates]]
name = "tiny-linux"
size_gib = 1

[[accounts]]
name = "ops"

# Sixteen HA VMs at once; firstfit packs kvm1 first.
[[workload]]
account = "ops"
offering = "web-ha"
template = "tiny-linux"
network = "ha-guest"
arrival = { kind = "burst", count = 16, at = "0s" }

[[actions]]
kind = "prepare_maintenance"
at = "5m"
host = "kvm1"

[[faults.scheduled]]
at = "55002ms"
kind = "asymmetric_partition"
host = "kvm1"
for = "689070ms"

[[expect]]
kind = "host_resource_state"
host = "kvm1"
state = "Maintenance"

[[expect]]
kind = "all_vms_running"
"#;

fn events(r: &Runner, kind: &str, detail: &str) -> usize {
    r.engine
        .keep_log
        .as_ref()
        .expect("kept")
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .filter(|e| e["kind"] == kind && e["detail"].as_str().is_some_and(|d| d.contains(detail)))
        .count()
}

#[test]
fn a_lost_start_restarted_on_the_same_partitioned_host_leaves_no_domain_behind() {
    let s = stratus_sim::scenario::parse(SCENARIO, "lost-start.toml").unwrap_or_else(|e| panic!("{e}"));
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
    // The shape was reached: starts lost, VMs held Unknown then lost, their
    // HA restarts placed on kvm1 again and failed there.
    assert_eq!(events(&r, "vm.unknown", "held with its resources"), 4);
    assert_eq!(
        events(&r, "ha.scheduled", "it was Unknown and no candidate host runs it"),
        4
    );
    assert_eq!(events(&r, "job.fail", "haRestartVirtualMachine: PlugNic failed"), 4);
    assert_eq!(events(&r, "ha.recovered", "running again"), 4);
    let report = RunReport::build(&r, "lost-start", 151, 0.0);
    assert!(
        report.invariant_violations.is_empty(),
        "{:?}",
        report.invariant_violations
    );
    assert!(report.leaks.is_empty(), "{:?}", report.leaks);
    assert_eq!(r.engine.ctl.leftovers().count(), 0, "nothing left awaiting cleanup");
    // kvm1 holds no domain at all: its VMs run elsewhere, the old definitions are gone.
    let kvm1 = r
        .engine
        .ctl
        .cloud()
        .inv
        .hosts
        .iter()
        .find(|h| h.name == "kvm1")
        .unwrap()
        .id;
    let left: Vec<_> = r.engine.world.hosts[&kvm1].domains.keys().collect();
    assert!(left.is_empty(), "{left:?}");
    let missing = census::missing(&r.engine.world.census(), r.engine.ctl.cloud());
    assert!(missing.is_empty(), "{missing:?}");
    assert!(report.passed(), "{:?}", report.expectations);
}
