//! The fuzz canary: with a fencing bypass planted (the test-only cargo feature
//! `canary-fencing-bypass`, switched on at run time), the fuzzer must report
//! it within a few hundred seeds; with the switch off the same seeds are
//! clean. Run by `.ci/suites.d/50-fuzz-canary.sh`:
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

/// Fuzzes `name` with the bypass planted until a seed shows a VM running
/// twice (the world's truth, not only the controller's bookkeeping); returns
/// that seed and how many seeds it took.
fn first_double_run(name: &str, seeds: u64, limit_ms: u64) -> Option<(u64, Vec<String>)> {
    let s = scenario(name);
    for seed in 0..seeds {
        let o = run_seed_within(&s, seed, name, &memory_journal, Some(limit_ms)).unwrap();
        if let Some(f) = o.failure
            && f.violations.iter().any(|v| v.contains(NO_VM_RUNS_TWICE))
        {
            return Some((seed, f.violations));
        }
    }
    None
}

#[test]
fn the_fuzzer_reports_a_planted_fencing_bypass_within_a_few_hundred_seeds() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    FENCING_BYPASS.store(true, Ordering::SeqCst);
    let found = first_double_run("enterprise.toml", 300, 3_600_000);
    FENCING_BYPASS.store(false, Ordering::SeqCst);
    let (seed, violations) = found.expect("300 fuzz seeds never ran a VM twice with fencing bypassed");
    eprintln!("planted fencing bypass: VM ran twice at fuzz seed {seed}");
    assert!(
        violations.iter().any(|v| v.contains(FENCED_BEFORE_HA_RESTART)),
        "the named invariant reports it too: {violations:?}"
    );
    // The same seed without the planted bug is clean: the report is the bug's.
    let s = scenario("enterprise.toml");
    let clean = run_seed_within(&s, seed, "enterprise.toml", &memory_journal, Some(3_600_000)).unwrap();
    assert!(
        clean.failure.is_none(),
        "seed {seed} fails without the bypass: {clean:?}"
    );
}
