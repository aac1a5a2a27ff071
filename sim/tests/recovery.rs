//! Recovery from the input journal: a restarted management server is rebuilt
//! from the latest snapshot plus the journal after it, and its state hash must
//! equal the state it crashed with. A journal that lost an entry is caught.

use std::sync::{Arc, Mutex};
use stratus_core::controller::{Controller, Input};
use stratus_sim::journal::{InputJournal, MemoryJournal};
use stratus_sim::runner::{RunOptions, Runner};

const LAB: &str = r#"
[scenario]
name = "recovery-lab"
seed = 5
duration = "40m"

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
hosts = [{ prefix = "kvm", count = 3, cores = 8, mhz = 2400, memory_gib = 32 }]
pools = [{ name = "ps1", capacity_gib = 2000 }]

[[offerings]]
name = "small"
cpu = 1
mhz = 1000
memory_mb = 1024
ha = true

[[templates]]
name = "tiny"
size_gib = 2

[[accounts]]
name = "alice"

[[workload]]
account = "alice"
offering = "small"
template = "tiny"
network = "guest"
arrival = { kind = "poisson", per_hour = 60 }
lifetime = { kind = "exponential", mean = "15m" }

[[faults.scheduled]]
at = "12m"
kind = "host_crash"
host = "kvm2"
"#;

/// A journal the test can still read after the runner owns it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<MemoryJournal>>, Arc<Mutex<Option<u64>>>);

impl InputJournal for Shared {
    fn append(&mut self, seq: u64, at_ms: u64, input: &Input) -> Result<(), String> {
        let mut lose = self.1.lock().unwrap();
        if matches!(*lose, Some(from) if seq >= from && matches!(input, Input::Request { .. })) {
            *lose = None;
            return Ok(()); // a lost write: the canary below
        }
        drop(lose);
        self.0.lock().unwrap().append(seq, at_ms, input)
    }
    fn snapshot(&mut self, seq: u64, ctl: &Controller) -> Result<(), String> {
        self.0.lock().unwrap().snapshot(seq, ctl)
    }
    fn recover(&mut self) -> Result<(Controller, u64), String> {
        self.0.lock().unwrap().recover()
    }
}

fn runner(extra: &str, snapshot_every: u64, journal: Shared) -> Runner {
    let text = format!("{LAB}\n{extra}");
    let s = stratus_sim::scenario::parse(&text, "recovery-lab.toml").unwrap_or_else(|e| panic!("{e}"));
    let built = stratus_sim::scenario::build(&s).unwrap();
    let mut r = Runner::new(s, built.cloud, &RunOptions::default());
    r.engine.snapshot_every = snapshot_every;
    r.engine.attach_journal(Box::new(journal)).unwrap();
    r
}

#[test]
fn snapshot_plus_journal_rebuilds_the_exact_state() {
    for every in [1, 50, 1_000_000] {
        let journal = Shared::default();
        let mut r = runner("", every, journal.clone());
        r.run(&mut |_, _| {});
        assert!(r.engine.violations.is_empty(), "{:?}", r.engine.violations);
        assert!(r.engine.inputs() > 500, "the lab is busy enough: {}", r.engine.inputs());
        let (rebuilt, seq) = journal.clone().recover().unwrap();
        assert_eq!(seq, r.engine.inputs());
        assert_eq!(
            rebuilt.state_hash(),
            r.engine.ctl.state_hash(),
            "snapshot every {every}"
        );
        // The snapshot codec round-trips byte for byte.
        let bytes = r.engine.ctl.state_bytes();
        assert_eq!(Controller::from_state_bytes(&bytes).unwrap().state_bytes(), bytes);
    }
}

#[test]
fn management_restart_is_a_real_recovery_checked_by_hash() {
    let journal = Shared::default();
    let mut r = runner(
        "[[faults.scheduled]]\nat = \"20m\"\nkind = \"management_restart\"\ndowntime = \"30s\"\n",
        200,
        journal,
    );
    r.run(&mut |_, _| {});
    assert_eq!(r.engine.recoveries, 1, "{:?}", r.engine.violations);
    assert!(r.engine.violations.is_empty(), "{:?}", r.engine.violations);
    let running = r
        .engine
        .ctl
        .cloud()
        .vms()
        .filter(|(_, v)| v.state == stratus_core::vm::VmState::Running)
        .count();
    assert!(running > 0, "VMs run on after the recovery");
}

#[test]
fn a_lost_journal_write_is_caught_at_recovery() {
    let journal = Shared::default();
    // Lose the first API request journaled after input 300 (snapshots are far
    // apart here, so recovery must replay it).
    *journal.1.lock().unwrap() = Some(300);
    let mut r = runner(
        "[[faults.scheduled]]\nat = \"20m\"\nkind = \"management_restart\"\ndowntime = \"30s\"\n",
        1_000_000,
        journal,
    );
    r.run(&mut |_, _| {});
    assert!(
        r.engine.violations.iter().any(|v| v.starts_with("recovery mismatch")),
        "{:?}",
        r.engine.violations
    );
}

/// A planted durability bug: the journal silently loses every tenth API request.
struct Leaky(MemoryJournal, u64);

impl InputJournal for Leaky {
    fn append(&mut self, seq: u64, at_ms: u64, input: &Input) -> Result<(), String> {
        if matches!(input, Input::Request { .. }) {
            self.1 += 1;
            if self.1.is_multiple_of(10) {
                return Ok(());
            }
        }
        self.0.append(seq, at_ms, input)
    }
    fn snapshot(&mut self, seq: u64, ctl: &Controller) -> Result<(), String> {
        self.0.snapshot(seq, ctl)
    }
    fn recover(&mut self) -> Result<(Controller, u64), String> {
        self.0.recover()
    }
}

#[test]
fn fuzz_canary_a_journal_that_loses_a_write_is_reported() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/enterprise.toml")).unwrap();
    let scenario = stratus_sim::scenario::parse(&text, "enterprise.toml").unwrap();
    let leaky = || -> Result<Box<dyn InputJournal>, String> { Ok(Box::new(Leaky(MemoryJournal::new(), 0))) };
    let honest = stratus_sim::fuzz::memory_journal;
    let mut caught = Vec::new();
    for seed in 0..40 {
        let hour = Some(3_600_000);
        let planted = stratus_sim::fuzz::run_seed_within(&scenario, seed, "enterprise.toml", &leaky, hour).unwrap();
        if let Some(f) = planted.failure
            && f.violations.iter().any(|v| v.starts_with("recovery mismatch"))
        {
            // The same seed with an honest journal is clean: the report is the bug's.
            let clean = stratus_sim::fuzz::run_seed_within(&scenario, seed, "enterprise.toml", &honest, hour).unwrap();
            assert!(
                clean.failure.is_none(),
                "seed {seed} fails without the planted bug: {clean:?}"
            );
            caught.push(seed);
        }
    }
    assert!(
        !caught.is_empty(),
        "40 fuzz seeds never reported the lost journal write"
    );
}
