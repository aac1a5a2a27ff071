//! The fuzz canary: with a fencing bypass planted (the test-only cargo feature
//! `canary-fencing-bypass`, switched on at run time), the fuzzer must report
//! it within a few hundred seeds, as a named invariant and, where the watchdog
//! is slower than detection, as a VM the world runs twice; with the switch
//! off the same seeds are clean. Run by `.ci/suites.d/50-fuzz-canary.sh`:
//! `cargo test -p stratus-sim --features canary-fencing-bypass --test fuzz_canary`.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use stratus_core::controller::canary::FENCING_BYPASS;
use stratus_sim::fuzz::{memory_journal, run_seed_within};
use stratus_sim::invariants::{FENCED_BEFORE_HA_RESTART, NO_VM_RUNS_TWICE};

/// The switch is process-wide: tests here take turns.
static SWITCH: Mutex<()> = Mutex::new(());

fn scenario(name: &str) -> stratus_sim::scenario::Scenario {
    let path = format!("{}/../scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    stratus_sim::scenario::parse(&text, name).unwrap()
}

mod labs;

/// Two clusters of two hosts on a zone-wide pool, HA VMs, and a watchdog
/// slower than detection (`ha.lease.timeout` 60 s): a host declared Down
/// still runs its VMs for a while, so restarting them before the fencing
/// proof runs them twice.
fn slow_watchdog_lab() -> String {
    labs::two_clusters("slow-watchdog", 5, "\"ha.lease.timeout\" = \"60\"\n", 6)
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

fn run_lab(extra: &str) -> Vec<String> {
    let text = format!("{}\n{extra}", slow_watchdog_lab());
    let s = stratus_sim::scenario::parse(&text, "slow-watchdog.toml").unwrap_or_else(|e| panic!("{e}"));
    let built = stratus_sim::scenario::build(&s).unwrap();
    let mut r = stratus_sim::runner::Runner::new(s, built.cloud, &Default::default());
    r.run(&mut |_, _| {});
    let mut v = r.engine.violations.clone();
    v.extend(r.engine.leak_report().leaks);
    v
}

#[test]
fn neighbour_crashed_first_then_host_hung_runs_a_vm_twice_with_the_bypass() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    FENCING_BYPASS.store(true, Ordering::SeqCst);
    let planted = run_lab(NEIGHBOUR_CRASHED_THEN_HANG);
    FENCING_BYPASS.store(false, Ordering::SeqCst);
    assert!(
        planted.iter().any(|v| v.contains(NO_VM_RUNS_TWICE)),
        "the world saw no VM run twice: {planted:?}"
    );
    assert!(
        planted.iter().any(|v| v.contains(FENCED_BEFORE_HA_RESTART)),
        "{planted:?}"
    );
    let honest = run_lab(NEIGHBOUR_CRASHED_THEN_HANG);
    assert!(honest.is_empty(), "{honest:?}");
}

#[test]
fn the_fuzzer_sees_a_vm_run_twice_with_the_bypass_within_a_few_hundred_seeds() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let s = stratus_sim::scenario::parse(&slow_watchdog_lab(), "slow-watchdog.toml").unwrap();
    FENCING_BYPASS.store(true, Ordering::SeqCst);
    let mut twice = Vec::new();
    for seed in 0..300 {
        let o = run_seed_within(&s, seed, "slow-watchdog.toml", &memory_journal, None).unwrap();
        if o.failure
            .is_some_and(|f| f.violations.iter().any(|v| v.contains(NO_VM_RUNS_TWICE)))
        {
            twice.push(seed);
            if twice.len() == 3 {
                break;
            }
        }
    }
    FENCING_BYPASS.store(false, Ordering::SeqCst);
    eprintln!("fencing bypass: a VM ran twice at fuzz seeds {twice:?}");
    assert!(
        !twice.is_empty(),
        "300 fuzz seeds never ran a VM twice with fencing bypassed"
    );
    for seed in twice {
        let clean = run_seed_within(&s, seed, "slow-watchdog.toml", &memory_journal, None).unwrap();
        assert!(
            clean.failure.is_none(),
            "seed {seed} fails without the bypass: {clean:?}"
        );
    }
}

#[test]
fn the_fuzzer_reports_a_planted_fencing_bypass_on_enterprise() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let s = scenario("enterprise.toml");
    let hour = Some(3_600_000);
    FENCING_BYPASS.store(true, Ordering::SeqCst);
    let mut found = None;
    for seed in 0..300 {
        let o = run_seed_within(&s, seed, "enterprise.toml", &memory_journal, hour).unwrap();
        if o.failure
            .is_some_and(|f| f.violations.iter().any(|v| v.contains(FENCED_BEFORE_HA_RESTART)))
        {
            found = Some(seed);
            break;
        }
    }
    FENCING_BYPASS.store(false, Ordering::SeqCst);
    let seed = found.expect("300 fuzz seeds of enterprise.toml never reported the fencing bypass");
    eprintln!("fencing bypass on enterprise.toml: reported at fuzz seed {seed}");
    let clean = run_seed_within(&s, seed, "enterprise.toml", &memory_journal, hour).unwrap();
    assert!(
        clean.failure.is_none(),
        "seed {seed} fails without the bypass: {clean:?}"
    );
}
