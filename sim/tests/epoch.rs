//! The controller reads epoch milliseconds (the scenario's epoch plus
//! simulated time); the event log and the report count from 0. Whatever the
//! epoch, a run gives the same event log and the same outcome: nothing in the
//! core depends on time starting near 0.

use stratus_core::units::SIM_EPOCH_MS;
use stratus_sim::journal::MemoryJournal;
use stratus_sim::report::RunReport;
use stratus_sim::runner::{RunOptions, Runner};
use stratus_sim::scenario::Epoch;

/// The event log and the report (without wall time and epoch) of a run, with
/// management restarts recovered from a journal.
fn run(file: &str, epoch_ms: Option<u64>) -> (Vec<String>, serde_json::Value, u64) {
    let path = format!("{}/../scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
    // Every run also restarts the management server mid-way, from its journal.
    let text = std::fs::read_to_string(&path).unwrap()
        + "\n[[faults.scheduled]]\nat = \"630s\"\nkind = \"management_restart\"\ndowntime = \"20s\"\n";
    let s = stratus_sim::scenario::parse(&text, file).unwrap_or_else(|e| panic!("{e}"));
    let built = stratus_sim::scenario::build(&s).unwrap();
    let opts = RunOptions {
        epoch_ms,
        keep_log: true,
        ..Default::default()
    };
    let mut r = Runner::new(s, built.cloud, &opts);
    r.engine.snapshot_every = 500;
    r.engine.attach_journal(Box::new(MemoryJournal::new())).unwrap();
    r.run(&mut |_, _| {});
    assert!(
        r.engine.violations.is_empty(),
        "{file} at {epoch_ms:?}: {:?}",
        r.engine.violations
    );
    assert_eq!(
        r.engine.recoveries, 1,
        "{file}: recovered from the journal, checked by hash"
    );
    let report = RunReport::build(&r, file, 0, 0.0);
    let mut v = serde_json::to_value(&report).unwrap();
    let epoch = v["epoch"].take();
    assert_eq!(epoch, Epoch { ms: r.engine.epoch }.to_string().as_str());
    // The controller's clock is epoch + simulated time (its last input's).
    let (epoch, ctl_now) = (r.engine.epoch, r.engine.ctl.now().0);
    assert!(
        ctl_now > epoch && ctl_now <= epoch + r.engine.now,
        "{file}: {ctl_now} vs {epoch}"
    );
    let log = r.engine.keep_log.take().unwrap();
    (log, v, epoch)
}

#[test]
fn the_epoch_changes_nothing_but_the_controllers_clock() {
    for file in [
        "seed-lab.toml",
        "ha-host-crash.toml",
        "ha-partition.toml",
        "double-fault.toml",
        "crash-during-maintenance.toml",
    ] {
        let (log, report, epoch) = run(file, None);
        assert_eq!(epoch, SIM_EPOCH_MS, "{file}: the default epoch");
        assert!(log.len() > 100, "{file}: a real run");
        for other in [0, 1_767_225_600_000, 4_102_444_800_000] {
            let (log2, report2, epoch2) = run(file, Some(other));
            assert_eq!(epoch2, other);
            if let Some(i) = (0..log.len().max(log2.len())).find(|i| log.get(*i) != log2.get(*i)) {
                panic!(
                    "{file}: the event log at epoch {other} differs from the default's at line {i}:\n  {:?}\n  {:?}",
                    log.get(i),
                    log2.get(i)
                );
            }
            assert_eq!(report, report2, "{file}: same outcome at epoch {other}");
        }
    }
}
