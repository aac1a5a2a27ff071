//! Stories where a host's link breaks and comes back: a migration sent into
//! the partition is settled as soon as the host answers again (not after the
//! migration's 600 s timeout), and faults selected by the primary storage
//! pool the hosts use.

use stratus_sim::report::RunReport;
use stratus_sim::runner::{RunOptions, Runner};
use stratus_sim::scenario;

fn run_text(text: &str) -> (RunReport, Runner) {
    let s = scenario::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let built = scenario::build(&s).unwrap();
    let name = s.scenario.name.clone();
    let opts = RunOptions {
        keep_log: true,
        ..Default::default()
    };
    let mut r = Runner::new(s, built.cloud, &opts);
    r.run(&mut |_, _| {});
    (RunReport::build(&r, &name, 1, 0.0), r)
}

fn log(r: &Runner) -> &[String] {
    r.engine.keep_log.as_deref().unwrap_or(&[])
}

fn t(line: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(line).unwrap()["t"]
        .as_u64()
        .unwrap()
}

const LAB: &str = r#"
[scenario]
name = "link-returns"
seed = 3
duration = "40m"

[[zones]]
name = "z1"

[[zones.pods]]
name = "pod1"
gateway = "172.16.1.1"
netmask = "255.255.255.0"
start_ip = "172.16.1.10"
end_ip = "172.16.1.250"

[[zones.pods.clusters]]
name = "cl1"

[[zones.pods.clusters.hosts]]
prefix = "kvm"
count = 4
cores = 16
mhz = 2400
memory_gib = 128

[[zones.pods.clusters.pools]]
name = "nfs-a"
capacity_gib = 8192

[[zones.pods.clusters]]
name = "cl2"

[[zones.pods.clusters.hosts]]
prefix = "other"
count = 2
cores = 16
mhz = 2400
memory_gib = 128

[[zones.pods.clusters.pools]]
name = "nfs-b"
capacity_gib = 8192

[[offerings]]
name = "app-ha"
cpu = 2
mhz = 2000
memory_mb = 4096
ha = true

[[templates]]
name = "linux"
size_gib = 8

[[accounts]]
name = "ops"

[[workload]]
account = "ops"
offering = "app-ha"
template = "linux"
arrival = { kind = "burst", count = 16 }
"#;

/// "A migration sent into a 90 s partition is settled only after 600 s,
/// holding the host out of maintenance nine minutes after the link came
/// back": the host being evacuated is cut off the moment its evacuation
/// starts, so its migrations go out into the partition.
#[test]
fn a_migration_sent_into_a_partition_is_settled_when_the_host_answers() {
    let text = format!(
        "{LAB}\n{}",
        r#"
[[actions]]
at = "10m"
kind = "prepare_maintenance"
host = "kvm1"

[[triggers]]
when = { host = "kvm1", resource_state = "PrepareForMaintenance" }
fault = { kind = "partition", host = "kvm1", for = "90s" }

[[expect]]
kind = "host_resource_state"
host = "kvm1"
state = "Maintenance"

[[expect]]
kind = "host_never"
state = "Down"

[[expect]]
kind = "all_vms_running"
"#
    );
    let (report, r) = run_text(&text);
    let lines = log(&r);
    let dump = || lines.join("\n");
    assert!(report.passed(), "{}\n{}", report.to_text(), dump());
    let partition = lines
        .iter()
        .find(|l| l.contains("\"fault\"") && l.contains("\"kvm1\""))
        .expect("kvm1 was partitioned");
    let healed = t(partition) + 90_000;
    // The host reaches Maintenance within minutes of the link's return, not
    // after the 600 s migration timeout.
    let maintenance = lines
        .iter()
        .find(|l| l.contains("\"host.resourcestate\"") && l.contains("\"kvm1\"") && l.contains("-> Maintenance"))
        .unwrap_or_else(|| panic!("kvm1 never reached Maintenance:\n{}", dump()));
    let after = t(maintenance).saturating_sub(healed);
    assert!(
        after < 240_000,
        "Maintenance {:.0} s after the link came back:\n{maintenance}",
        after as f64 / 1e3
    );
    // Migrations went out into the partition and got no answer then.
    let settled: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("the host came back without answering"))
        .collect();
    assert!(!settled.is_empty(), "no migration was in doubt:\n{}", dump());
    for l in &settled {
        assert!(t(l) >= healed && t(l) < healed + 60_000, "settled at {l}");
    }
    assert!(
        lines.iter().any(|l| l.contains("Unknown VM found running on kvm1")),
        "the in-doubt VMs were not adopted where they run:\n{}",
        dump()
    );
    // No migration waited out its timeout.
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("timed out waiting for the host") && l.contains("MigrateDomain")),
        "{}",
        dump()
    );
}

/// `pool = "nfs-a"` on a host fault: every host that uses the pool (cl1's
/// four), none of the others.
#[test]
fn a_pool_selector_faults_every_host_using_the_pool() {
    let text = format!(
        "{LAB}\n{}",
        r#"
[[faults.scheduled]]
at = "10m"
kind = "host_crash"
pool = "nfs-a"
for = "5m"
"#
    );
    let (_, r) = run_text(&text);
    let crashed: Vec<String> = log(&r)
        .iter()
        .filter(|l| l.contains("\"fault\"") && l.contains("crash"))
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["subject"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(crashed, ["kvm1", "kvm2", "kvm3", "kvm4"], "{crashed:?}");

    // A storage outage's `pool` is still the pool that fails.
    let outage = format!(
        "{LAB}\n[[faults.scheduled]]\nat = \"10m\"\nkind = \"storage_outage\"\npool = \"nfs-b\"\nfor = \"1m\"\n"
    );
    let s = scenario::parse(&outage, "o.toml").unwrap();
    let f = &s.faults.scheduled[0];
    assert!(f.select.is_empty());
    assert!(matches!(&f.fault, scenario::Fault::StorageOutage { pool, .. } if pool == "nfs-b"));

    // An unknown pool, or a pool beside a host, is refused with its place.
    let bad = |fault: &str| {
        scenario::parse(
            &format!("{LAB}\n[[faults.scheduled]]\nat = \"10m\"\n{fault}\n"),
            "b.toml",
        )
        .unwrap_err()
        .to_string()
    };
    let e = bad("kind = \"partition\"\npool = \"nfs-c\"\nfor = \"1m\"");
    assert!(
        e.starts_with("b.toml:") && e.contains("faults.scheduled[0].pool: unknown pool 'nfs-c'"),
        "{e}"
    );
    let e = bad("kind = \"partition\"\nhost = \"kvm1\"\npool = \"nfs-a\"\nfor = \"1m\"");
    assert!(e.contains("not both"), "{e}");
    let e = bad("kind = \"partition\"\ncluster = \"cl1\"\npool = \"nfs-a\"\nfor = \"1m\"");
    assert!(e.contains("at most one of cluster, pod, zone, pool, all"), "{e}");
}
