//! The shipped scenario files load and build; malformed scenarios are refused
//! before anything runs, with the file, line and field at fault.

use std::path::{Path, PathBuf};
use std::time::Instant;
use stratus_core::inventory::PoolScope;
use stratus_core::units::GIB;
use stratus_sim::scenario::{self, Duration, ScenarioError};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_file_loads_and_builds() {
    let files = scenario_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["seed-lab.toml", "enterprise.toml", "churn.toml", "at-scale.toml"] {
        assert!(names.iter().any(|n| n == expected), "missing scenarios/{expected}");
    }
    for path in &files {
        let s = scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
        let built = scenario::build(&s).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            built.names.hosts.len(),
            built.cloud.inv.hosts.len(),
            "{}",
            path.display()
        );
        assert_eq!(built.names.hosts.len(), s.host_names().len());
        assert!(!built.names.templates.is_empty() && !built.names.accounts.is_empty());
        // Serializing and parsing again gives the same scenario.
        let again = toml::to_string(&s).unwrap();
        let s2 = scenario::parse(&again, "round-trip").unwrap_or_else(|e| panic!("{e}\n{again}"));
        assert_eq!(format!("{s:?}"), format!("{s2:?}"), "{}", path.display());
    }
}

#[test]
fn seed_lab_is_the_two_host_lab() {
    let (s, b) = scenario::load_and_build(&scenarios_dir().join("seed-lab.toml")).unwrap();
    assert_eq!(s.scenario.duration, Duration::from_ms(2 * 3_600_000));
    assert_eq!(b.names.hosts.keys().collect::<Vec<_>>(), ["kvm1", "kvm2"]);
    let c = &b.cloud;
    let cl = c.cluster_idx(b.names.clusters["lab-cluster1"]).unwrap();
    assert_eq!(c.book.cluster[cl.ix()].cpu.total, 2 * 8 * 2400);
    assert_eq!(c.book.cluster[cl.ix()].mem.total, 64 * GIB);
    let pool = c.pool_idx(b.names.pools["lab-primary"]).unwrap();
    assert_eq!(c.inv.pool(pool).scope, PoolScope::Cluster(cl));
}

#[test]
fn enterprise_settings_and_numbering_apply() {
    let s = scenario::load(&scenarios_dir().join("enterprise.toml")).unwrap();
    let b = scenario::build(&s).unwrap();
    let c = &b.cloud;
    assert_eq!(b.names.hosts.len(), 64);
    // Host numbering continues across clusters that share a prefix.
    let h17 = c.host_idx(b.names.hosts["ent17"]).unwrap();
    assert_eq!(
        c.inv.host(h17).cluster,
        c.cluster_idx(b.names.clusters["cluster-2"]).unwrap()
    );
    let c3 = c.cluster_idx(b.names.clusters["cluster-3"]).unwrap();
    let c1 = c.cluster_idx(b.names.clusters["cluster-1"]).unwrap();
    assert_eq!(c.book.cluster[c3.ix()].mem.total, 16 * 384 * GIB);
    assert_eq!(c.book.cluster[c1.ix()].mem.total, 16 * 256 * GIB);
    assert_eq!(
        c.settings
            .text("vm.allocation.algorithm", stratus_core::settings::Scope::Global),
        "firstfit"
    );
    let zone_pool = c.pool_idx(b.names.pools["ent-primary"]).unwrap();
    assert_eq!(c.inv.pool(zone_pool).scope, PoolScope::Zone);
    assert_eq!(b.names.networks.len(), 2);
}

#[test]
fn churn_has_host_local_pools() {
    let s = scenario::load(&scenarios_dir().join("churn.toml")).unwrap();
    let b = scenario::build(&s).unwrap();
    let c = &b.cloud;
    let local = c.pool_idx(b.names.pools["churn-b-3-local"]).unwrap();
    let host = c.host_idx(b.names.hosts["churn-b-3"]).unwrap();
    assert_eq!(c.inv.pool(local).scope, PoolScope::Host(host));
    assert!(!b.names.pools.contains_key("churn-a-1-local"));
}

#[test]
fn at_scale_builds_quickly() {
    let s = scenario::load(&scenarios_dir().join("at-scale.toml")).unwrap();
    let t = Instant::now();
    let b = scenario::build(&s).unwrap();
    let took = t.elapsed();
    assert_eq!(b.names.hosts.len(), 1_000);
    assert!(b.names.hosts.contains_key("host1") && b.names.hosts.contains_key("host1000"));
    let vms: u32 = s
        .workload
        .iter()
        .map(|w| match w.arrival {
            scenario::Arrival::Ramp { count, .. } | scenario::Arrival::Burst { count, .. } => count,
            scenario::Arrival::Poisson { .. } => 0,
        })
        .sum();
    assert_eq!(vms, 20_000);
    assert_eq!(s.scenario.duration.to_string(), "1d");
    // Well under a second in release builds; generous for unoptimized tests.
    assert!(took.as_secs_f64() < 5.0, "building at-scale took {took:?}");
}

#[test]
fn committed_json_schema_is_current() {
    let path = scenarios_dir().join("scenario.schema.json");
    let fresh = serde_json::to_string_pretty(&scenario::json_schema()).unwrap() + "\n";
    if std::env::var("UPDATE_SCHEMA").as_deref() == Ok("1") {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "scenarios/scenario.schema.json is stale; regenerate it with\n  UPDATE_SCHEMA=1 cargo test -p stratus-sim --test scenario_files committed_json_schema_is_current"
    );
}

#[test]
fn readme_example_is_valid() {
    let readme = std::fs::read_to_string(scenarios_dir().join("README.md")).unwrap();
    let start = readme.find("```toml\n").expect("README has a toml example") + "```toml\n".len();
    let example = &readme[start..start + readme[start..].find("```").unwrap()];
    let s = scenario::parse(example, "README.md").unwrap_or_else(|e| panic!("{e}"));
    let b = scenario::build(&s).unwrap();
    assert_eq!(b.names.hosts.keys().collect::<Vec<_>>(), ["kvm1", "kvm2"]);
}

#[test]
fn loading_a_missing_file_names_it() {
    let e = scenario::load(Path::new("scenarios/nope.toml")).unwrap_err();
    assert_eq!(e.file, "scenarios/nope.toml");
    assert!(
        e.to_string()
            .starts_with("scenarios/nope.toml: cannot read the scenario"),
        "{e}"
    );
}

// ---- malformed scenarios ------------------------------------------------

/// A valid scenario; the tests below break one line of it (line numbers in
/// the comments are those of this text).
const BASE: &str = r#"[scenario]
name = "t"
duration = "1h"

[settings]
"vm.allocation.algorithm" = "firstfit"

[[zones]]
name = "z1"

[[zones.pods]]
name = "p1"
gateway = "172.16.1.1"
netmask = "255.255.255.0"
start_ip = "172.16.1.10"
end_ip = "172.16.1.250"

[[zones.pods.clusters]]
name = "c1"

[[zones.pods.clusters.hosts]]
prefix = "h"
count = 2
cores = 8
mhz = 2400
memory_gib = 32

[[zones.pods.clusters.pools]]
name = "nfs1"
capacity_gib = 1024

[[zones.networks]]
name = "net1"
cidr = "10.1.0.0/24"

[[offerings]]
name = "small"
cpu = 1
mhz = 1000
memory_mb = 1024

[[offerings]]
name = "medium"
cpu = 2
mhz = 2000
memory_mb = 4096

[[templates]]
name = "tiny"
size_gib = 1

[[accounts]]
name = "acct"

[[workload]]
account = "acct"
offering = "small"
template = "tiny"
arrival = { kind = "burst", count = 2 }

[[faults.scheduled]]
at = "30m"
kind = "host_crash"
host = "h1"

[[expect]]
kind = "no_failed_deploys"
"#;

/// BASE with `old` (which must occur once) replaced by `new`, parsed.
fn broken(old: &str, new: &str) -> ScenarioError {
    assert_eq!(BASE.matches(old).count(), 1, "{old:?} must occur once in BASE");
    let text = BASE.replacen(old, new, 1);
    match scenario::parse(&text, "bad.toml") {
        Ok(_) => panic!("accepted after replacing {old:?} by {new:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn check(e: &ScenarioError, line: usize, field: &str, message: &str) {
    assert_eq!(e.file, "bad.toml", "{e}");
    assert_eq!(e.line, Some(line), "{e}");
    assert_eq!(e.field, field, "{e}");
    assert!(e.message.contains(message), "{e}\n  should mention {message:?}");
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("bad.toml:{line}:")), "{shown}");
    assert!(shown.contains(&format!(": {field}: ")), "{shown}");
}

#[test]
fn base_is_valid() {
    let s = scenario::parse(BASE, "base.toml").unwrap();
    scenario::build(&s).unwrap();
}

#[test]
fn bad_toml_syntax() {
    let e = broken("cores = 8", "cores = ");
    check(&e, 24, "zones[0].pods[0].clusters[0].hosts[0].cores", "");
    let e = broken("name = \"acct\"", "name = \"acct");
    assert_eq!((e.file.as_str(), e.line), ("bad.toml", Some(53)), "{e}");
}

#[test]
fn unknown_top_level_field() {
    let e = broken("[scenario]\n", "colour = \"blue\"\n[scenario]\n");
    check(&e, 1, "colour", "unknown field `colour`");
}

#[test]
fn missing_top_level_field() {
    let text = BASE.replacen("[[templates]]\nname = \"tiny\"\nsize_gib = 1\n", "", 1);
    let e = scenario::parse(&text, "bad.toml").unwrap_err();
    assert_eq!(e.to_string(), "bad.toml:1:1: missing field `templates`");
}

#[test]
fn unknown_field_in_a_host_group() {
    let e = broken("memory_gib = 32", "memory_gib = 32\nmemroy_mb = 4");
    check(
        &e,
        27,
        "zones[0].pods[0].clusters[0].hosts[0].memroy_mb",
        "unknown field `memroy_mb`",
    );
}

#[test]
fn missing_field_points_at_its_table() {
    let e = broken("mhz = 2400\n", "");
    check(&e, 21, "zones[0].pods[0].clusters[0].hosts[0]", "missing field `mhz`");
}

#[test]
fn wrong_type() {
    let e = broken("count = 2\n", "count = \"two\"\n");
    check(
        &e,
        23,
        "zones[0].pods[0].clusters[0].hosts[0].count",
        "invalid type: string \"two\"",
    );
    // Inside an internally tagged enum (serde reports the whole table).
    let e = broken("count = 2 }", "count = \"2\" }");
    check(&e, 59, "workload[0].arrival.count", "invalid type");
}

#[test]
fn unknown_offering_in_workload() {
    let e = broken("offering = \"small\"", "offering = \"mediun\"");
    check(
        &e,
        57,
        "workload[0].offering",
        "unknown offering 'mediun' (known: small, medium)",
    );
    assert_eq!(
        e.to_string(),
        "bad.toml:57:1: workload[0].offering: unknown offering 'mediun' (known: small, medium)"
    );
}

#[test]
fn unknown_references_in_workload() {
    let e = broken("account = \"acct\"", "account = \"nobody\"");
    check(&e, 56, "workload[0].account", "unknown account 'nobody' (known: acct)");
    let e = broken("template = \"tiny\"", "template = \"tiny\"\nnetwork = \"net2\"");
    check(&e, 59, "workload[0].network", "unknown network 'net2' (known: net1)");
    let e = broken("template = \"tiny\"", "template = \"tiny\"\nzone = \"z2\"");
    check(&e, 59, "workload[0].zone", "unknown zone 'z2' (known: z1)");
}

#[test]
fn unknown_host_in_a_fault() {
    let e = broken("host = \"h1\"", "host = \"h9\"");
    check(&e, 64, "faults.scheduled[0].host", "unknown host 'h9' (known: h1, h2)");
}

#[test]
fn bad_faults() {
    let e = broken("host = \"h1\"", "hots = \"h1\"");
    check(&e, 64, "faults.scheduled[0].hots", "unknown field `hots`");
    let e = broken("kind = \"host_crash\"", "kind = \"host_crahs\"");
    check(&e, 63, "faults.scheduled[0].kind", "unknown variant `host_crahs`");
    let e = broken("at = \"30m\"", "at = \"2h\"");
    check(&e, 62, "faults.scheduled[0].at", "2h is after the end of the run (1h)");
    let e = broken(
        "kind = \"host_crash\"\nhost = \"h1\"",
        "kind = \"storage_outage\"\npool = \"nfs9\"\nfor = \"5m\"",
    );
    check(&e, 64, "faults.scheduled[0].pool", "unknown pool 'nfs9' (known: nfs1)");
}

#[test]
fn unknown_cluster_in_an_expectation() {
    let e = broken(
        "kind = \"no_failed_deploys\"",
        "kind = \"cluster_allocated_below\"\ncluster = \"c2\"\nresource = \"cpu\"\nbelow = 0.8",
    );
    check(&e, 68, "expect[0].cluster", "unknown cluster 'c2' (known: c1)");
}

#[test]
fn duplicate_cluster_name() {
    let e = broken(
        "capacity_gib = 1024\n",
        "capacity_gib = 1024\n\n[[zones.pods.clusters]]\nname = \"c1\"\n[[zones.pods.clusters.hosts]]\nprefix = \"g\"\ncores = 1\nmhz = 1\nmemory_gib = 1\n",
    );
    check(
        &e,
        33,
        "zones[0].pods[0].clusters[1].name",
        "duplicate cluster name 'c1'",
    );
}

#[test]
fn bad_addresses() {
    let e = broken("cidr = \"10.1.0.0/24\"", "cidr = \"10.1.0.5/24\"");
    check(
        &e,
        34,
        "zones[0].networks[0].cidr",
        "'10.1.0.5/24' is not a network in CIDR form",
    );
    let e = broken("cidr = \"10.1.0.0/24\"", "cidr = \"10.1.0.0/33\"");
    check(&e, 34, "zones[0].networks[0].cidr", "not a network in CIDR form");
    let e = broken("netmask = \"255.255.255.0\"", "netmask = \"255.0.255.0\"");
    check(&e, 14, "zones[0].pods[0].netmask", "not a contiguous netmask");
    let e = broken("gateway = \"172.16.1.1\"", "gateway = \"172.16.1\"");
    check(&e, 13, "zones[0].pods[0].gateway", "not an IPv4 address");
    let e = broken("end_ip = \"172.16.1.250\"", "end_ip = \"172.16.2.250\"");
    check(&e, 16, "zones[0].pods[0].end_ip", "outside the pod subnet");
}

#[test]
fn bad_durations() {
    let e = broken("duration = \"1h\"", "duration = \"1 hour\"");
    check(&e, 3, "scenario.duration", "invalid duration '1 hour'");
    let e = broken("duration = \"1h\"", "duration = \"\"");
    check(&e, 3, "scenario.duration", "empty duration");
    let e = broken("count = 2 }", "count = 2, at = \"5x\" }");
    check(&e, 59, "workload[0].arrival.at", "unknown unit 'x'");
    let e = broken("at = \"30m\"", "at = \"-5m\"");
    check(&e, 62, "faults.scheduled[0].at", "cannot be negative");
    let e = broken("[[expect]]", "[latency]\nstart = [\"8s\", \"2s\"]\n\n[[expect]]");
    check(&e, 67, "latency.start", "minimum is above the maximum");
}

#[test]
fn epoch_is_a_utc_time() {
    let s = scenario::parse(
        &BASE.replace(
            "duration = \"1h\"",
            "duration = \"1h\"\nepoch = \"2026-01-01T00:00:00Z\"",
        ),
        "e.toml",
    )
    .unwrap();
    assert_eq!(s.scenario.epoch.map(|e| e.ms), Some(1_767_225_600_000));
    assert_eq!(scenario::parse(BASE, "e.toml").unwrap().scenario.epoch, None);
    let e = broken(
        "duration = \"1h\"",
        "duration = \"1h\"\nepoch = \"2026-01-01T00:00:00\"",
    );
    check(&e, 4, "scenario.epoch", "must be UTC");
    let e = broken(
        "duration = \"1h\"",
        "duration = \"1h\"\nepoch = \"2026-02-30T00:00:00Z\"",
    );
    check(&e, 4, "scenario.epoch", "no such date");
}

#[test]
fn bad_settings() {
    let e = broken(
        "\"vm.allocation.algorithm\" = \"firstfit\"",
        "\"vm.alocation.algorithm\" = \"firstfit\"",
    );
    check(
        &e,
        6,
        "settings.\"vm.alocation.algorithm\"",
        "did you mean 'vm.allocation.algorithm'?",
    );
    let e = broken(
        "\"vm.allocation.algorithm\" = \"firstfit\"",
        "\"vm.allocation.algorithm\" = \"best\"",
    );
    check(&e, 6, "settings.\"vm.allocation.algorithm\"", "Invalid value 'best'");
    // Unquoted dotted keys work too.
    let e = broken(
        "\"vm.allocation.algorithm\" = \"firstfit\"",
        "vm.allocation.algorithm = \"best\"",
    );
    check(
        &e,
        6,
        "settings.vm.allocation.algorithm",
        "expected one of random, firstfit",
    );
    let e = broken(
        "\"vm.allocation.algorithm\" = \"firstfit\"",
        "\"cpu.overprovisioning.factor\" = 500",
    );
    check(
        &e,
        6,
        "settings.\"cpu.overprovisioning.factor\"",
        "expected a number from 0.1 to 100",
    );
    // Per-cluster settings must be cluster-scoped.
    let e = broken(
        "name = \"c1\"",
        "name = \"c1\"\nsettings = { \"vm.allocation.algorithm\" = \"firstfit\" }",
    );
    check(
        &e,
        20,
        "zones[0].pods[0].clusters[0].settings.\"vm.allocation.algorithm\"",
        "cannot be set per cluster",
    );
    let e = broken(
        "name = \"c1\"",
        "name = \"c1\"\nsettings = { \"mem.overprovisioning.factor\" = true }",
    );
    check(
        &e,
        20,
        "zones[0].pods[0].clusters[0].settings.\"mem.overprovisioning.factor\"",
        "Invalid value 'true'",
    );
}

#[test]
fn impossible_topology() {
    let e = broken("count = 2\n", "count = 0\n");
    check(
        &e,
        23,
        "zones[0].pods[0].clusters[0].hosts[0].count",
        "count must be positive",
    );
    let e = broken("count = 2\n", "count = 129\n");
    check(
        &e,
        23,
        "zones[0].pods[0].clusters[0].hosts[0].count",
        "KVM allows at most 128 per cluster",
    );
    let e = broken("name = \"c1\"", "name = \"c1\"\nhypervisor = \"Hyper-V\"");
    check(
        &e,
        20,
        "zones[0].pods[0].clusters[0].hypervisor",
        "unknown hypervisor 'Hyper-V'",
    );
    let e = broken("capacity_gib = 1024", "capacity_gib = 1024\ntype = \"iscsi\"");
    check(
        &e,
        31,
        "zones[0].pods[0].clusters[0].pools[0].type",
        "unknown shared storage type 'iscsi'",
    );
    let e = broken(
        "memory_gib = 32",
        "memory_gib = 32\nlocal_storage_gib = 100\n[[zones.pods.clusters.pools]]\nname = \"h2-local\"\ncapacity_gib = 1",
    );
    check(
        &e,
        29,
        "zones[0].pods[0].clusters[0].pools[0].name",
        "duplicate pool name 'h2-local'",
    );
    let e = broken("memory_mb = 4096", "memory_mb = 4096\nplanner = \"BestPlanner\"");
    check(&e, 47, "offerings[1].planner", "unknown planner 'BestPlanner'");
    let e = broken("size_gib = 1", "size_gib = 1\nformat = \"VMDK\"");
    check(&e, 51, "templates[0].format", "unknown template format 'VMDK'");
}
