//! Golden-log tests of the key HA stories: a scripted fault list at virtual
//! times and the expected event log (host states, evidence, fencing, HA,
//! maintenance), compared exactly. Regenerate with `STRATUS_BLESS=1`.

use stratus_sim::runner::{RunOptions, Runner};

const KINDS: &[&str] = &[
    "\"fault\"",
    "\"fault.end\"",
    "\"host.state\"",
    "\"host.resourcestate\"",
    "\"evidence\"",
    "\"host.fenced\"",
    "\"watchdog\"",
    "\"ha.",
    "\"vm.",
    "\"maintenance.",
    "\"alert\"",
];

fn story(file: &str) -> String {
    let path = format!("{}/../scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
    let (s, built) = stratus_sim::scenario::load_and_build(std::path::Path::new(&path)).unwrap();
    let mut r = Runner::new(
        s,
        built.cloud,
        &RunOptions {
            keep_log: true,
            ..Default::default()
        },
    );
    r.run(&mut |_, _| {});
    assert!(r.engine.violations.is_empty(), "{:?}", r.engine.violations);
    let lines: Vec<&String> = r
        .engine
        .keep_log
        .as_ref()
        .unwrap()
        .iter()
        .filter(|l| KINDS.iter().any(|k| l.contains(&format!("\"kind\":{k}"))))
        .collect();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn golden(name: &str, actual: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("STRATUS_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {path}; run with STRATUS_BLESS=1"));
    if actual != expected {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  expected {e}\n  actual   {a}", i + 1))
            .collect();
        panic!(
            "{name} differs ({} vs {} lines):\n{}",
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn host_crash_is_fenced_by_lease_and_its_vms_restart_elsewhere() {
    golden("ha-host-crash.log", &story("ha-host-crash.toml"));
}

#[test]
fn partitioned_host_with_fresh_lease_stays_disconnected() {
    golden("ha-partition.log", &story("ha-partition.toml"));
}

#[test]
fn storage_outage_restarts_nothing() {
    golden("storage-outage.log", &story("storage-outage.toml"));
}

#[test]
fn rolling_maintenance_moves_every_vm_and_re_enables_every_host() {
    golden("maintenance-rolling.log", &story("maintenance-rolling.toml"));
}

#[test]
fn double_fault_fences_by_power_off_and_retries_restarts() {
    golden("double-fault.log", &story("double-fault.toml"));
}
