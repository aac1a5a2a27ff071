//! Golden-log tests of the key HA stories: a scripted fault list at virtual
//! times and the expected event log (host states, evidence, fencing, HA,
//! maintenance), compared exactly. Regenerate with `STRATUS_BLESS=1`.
//! Each story also asserts the behaviour it is named after, so a re-bless
//! cannot make a wrong story pass.

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

/// A story's outcome: the filtered log, every log line, and the final state.
struct Story {
    log: String,
    all: Vec<String>,
    r: Runner,
}

impl Story {
    fn count(&self, kind: &str, detail: &str) -> usize {
        self.all
            .iter()
            .filter(|l| l.contains(&format!("\"kind\":\"{kind}\"")) && l.contains(detail))
            .count()
    }

    fn all_vms_running_once(&self) {
        let c = self.r.engine.ctl.cloud();
        let running = c
            .vms()
            .filter(|(_, v)| v.state == stratus_core::vm::VmState::Running)
            .count();
        assert_eq!(running, c.vm_count(), "every VM runs at the end");
        assert_eq!(self.r.engine.world.total_running(), running, "each once, in the world too");
    }
}

fn story(file: &str) -> Story {
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
    let all = r.engine.keep_log.clone().unwrap();
    let lines: Vec<&String> = all
        .iter()
        .filter(|l| KINDS.iter().any(|k| l.contains(&format!("\"kind\":{k}"))))
        .collect();
    let log = lines.iter().map(|l| format!("{l}\n")).collect();
    Story { log, all, r }
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
    let st = story("ha-host-crash.toml");
    assert_eq!(st.count("host.state", "kvm1\",\"detail\":\"Alert -> Down"), 1);
    assert_eq!(st.count("host.fenced", "lease stale for"), 1, "fenced by the lease, not powered off");
    assert!(st.count("ha.recovered", "") > 0);
    assert_eq!(st.count("ha.scheduled", ""), st.count("ha.recovered", ""), "every HA VM recovered");
    st.all_vms_running_once();
    golden("ha-host-crash.log", &st.log);
}

#[test]
fn partitioned_host_with_fresh_lease_stays_disconnected() {
    let st = story("ha-partition.toml");
    assert!(st.count("host.state", "-> Disconnected") > 0);
    assert_eq!(st.count("host.state", "-> Down"), 0, "never Down");
    assert_eq!(st.count("ha.scheduled", ""), 0, "nothing restarted");
    st.all_vms_running_once();
    golden("ha-partition.log", &st.log);
}

#[test]
fn storage_outage_restarts_nothing() {
    let st = story("storage-outage.toml");
    assert_eq!(st.count("host.state", "-> Down"), 0);
    assert_eq!(st.count("ha.scheduled", ""), 0);
    assert_eq!(st.count("watchdog", ""), 0, "a storage blip alone never fences");
    golden("storage-outage.log", &st.log);
}

#[test]
fn rolling_maintenance_moves_every_vm_and_re_enables_every_host() {
    let st = story("maintenance-rolling.toml");
    let hosts = st.r.engine.ctl.cloud().inv.hosts.len();
    assert_eq!(st.count("host.resourcestate", "-> Maintenance: evacuated"), hosts);
    assert!(st.r.engine.ctl.cloud().inv.hosts.iter().all(|h| {
        h.resource_state == stratus_core::inventory::ResourceState::Enabled
            && h.status == stratus_core::inventory::HostStatus::Up
    }));
    st.all_vms_running_once();
    golden("maintenance-rolling.log", &st.log);
}

#[test]
fn double_fault_fences_by_power_off_and_retries_restarts() {
    let st = story("double-fault.toml");
    assert_eq!(st.count("host.fenced", "powered off by the fence driver"), 2);
    assert!(st.count("ha.retry", "") > 0, "restarts met the outage and were retried");
    assert_eq!(st.count("ha.scheduled", ""), st.count("ha.recovered", ""));
    st.all_vms_running_once();
    golden("double-fault.log", &st.log);
}
