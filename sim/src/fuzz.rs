//! Fuzzing: random fault schedules per seed on top of a scenario; any invariant
//! violation is reported with the seed and a one-line reproducer.

use crate::engine::AuditEvery;
use crate::runner::{RunOptions, Runner};
use crate::scenario::{Duration, Fault, Scenario, ScheduledFault};
use serde::Serialize;
use stratus_core::rng::DetRng;

/// Longest stretch of simulated time one fuzz seed runs.
pub const FUZZ_MAX_MS: u64 = 3_600_000;

#[derive(Clone, Debug, Serialize)]
pub struct FuzzFailure {
    pub seed: u64,
    pub violations: Vec<String>,
    pub faults: Vec<String>,
    pub reproduce: String,
}

/// Adds a random fault schedule drawn from `seed` to the scenario.
pub fn with_random_faults(s: &Scenario, seed: u64, hosts: &[String], pools: &[String]) -> Scenario {
    let mut s = s.clone();
    s.scenario.seed = seed;
    let end = s.scenario.duration.ms.min(FUZZ_MAX_MS);
    let mut rng = DetRng::child(seed, "fuzz");
    let n = 2 + rng.below(7);
    let dur = |rng: &mut DetRng, lo: u64, hi: u64| Duration {
        ms: lo + rng.below((hi - lo) as usize) as u64,
    };
    for _ in 0..n {
        let at = Duration {
            ms: rng.below(end.max(1) as usize) as u64,
        };
        let host = || hosts[0].clone();
        let pick_host = |rng: &mut DetRng| {
            if hosts.is_empty() {
                host()
            } else {
                hosts[rng.below(hosts.len())].clone()
            }
        };
        let fault = match rng.below(8) {
            7 => Fault::VmCrash {
                host: pick_host(&mut rng),
            },
            0 => {
                let back = (rng.below(2) == 0).then(|| dur(&mut rng, 10_000, 1_200_000));
                Fault::HostCrash {
                    host: pick_host(&mut rng),
                    duration: back,
                }
            }
            1 => Fault::HostHang {
                host: pick_host(&mut rng),
                duration: dur(&mut rng, 1_000, 900_000),
            },
            2 => Fault::Partition {
                host: pick_host(&mut rng),
                duration: dur(&mut rng, 1_000, 1_200_000),
            },
            3 if !pools.is_empty() => Fault::StorageOutage {
                pool: pools[rng.below(pools.len())].clone(),
                duration: dur(&mut rng, 1_000, 600_000),
            },
            4 => Fault::MigrationFailure {
                count: 1 + rng.below(3) as u32,
            },
            5 => Fault::OpFailureRate {
                rate: 0.05 + rng.unit() * 0.25,
                duration: dur(&mut rng, 10_000, 600_000),
            },
            _ => Fault::ManagementRestart {
                downtime: dur(&mut rng, 1_000, 180_000),
            },
        };
        s.faults.scheduled.push(ScheduledFault {
            at,
            select: Default::default(),
            fault,
        });
    }
    s.faults.scheduled.sort_by_key(|f| f.at);
    s
}

/// Runs one fuzz seed; returns the violations (empty when every invariant held).
/// Opens the journal a seed's controller writes to (its management restarts
/// recover from it).
pub type JournalFactory<'a> = &'a (dyn Fn() -> Result<Box<dyn crate::journal::InputJournal>, String> + Sync);

/// The journal kept in memory (same codec and recovery as the Store's).
pub fn memory_journal() -> Result<Box<dyn crate::journal::InputJournal>, String> {
    Ok(Box::new(crate::journal::MemoryJournal::new()))
}

pub fn run_seed(
    base: &Scenario,
    seed: u64,
    file: &str,
    journal: JournalFactory<'_>,
) -> Result<Option<FuzzFailure>, String> {
    let hosts: Vec<String> = base.host_names().into_iter().map(|(h, ..)| h).collect();
    let pools: Vec<String> = base
        .zones
        .iter()
        .flat_map(|z| {
            z.pools.iter().map(|p| p.name.clone()).chain(
                z.pods
                    .iter()
                    .flat_map(|p| p.clusters.iter().flat_map(|c| c.pools.iter().map(|p| p.name.clone()))),
            )
        })
        .collect();
    let s = with_random_faults(base, seed, &hosts, &pools);
    let faults: Vec<String> = s
        .faults
        .scheduled
        .iter()
        .map(|f| format!("{} {}", f.at, crate::scenario::describe(&f.fault)))
        .collect();
    let built = crate::scenario::build(&s).map_err(|e| e.to_string())?;
    let mut r = Runner::new(
        s,
        built.cloud,
        &RunOptions {
            seed: Some(seed),
            ..Default::default()
        },
    );
    // Cheap checks after every event; the full audit every 64 events and at the end.
    r.engine.audit_every = AuditEvery::Events(64);
    // Management crashes are real recoveries from the journal, checked by state hash.
    r.engine.snapshot_every = 2_000;
    r.engine
        .attach_journal(journal()?)
        .map_err(|e| format!("journal: {e}"))?;
    r.end = r.end.min(FUZZ_MAX_MS);
    r.run(&mut |_, _| {});
    if r.engine.violations.is_empty() {
        return Ok(None);
    }
    Ok(Some(FuzzFailure {
        seed,
        violations: r.engine.violations.clone(),
        faults,
        reproduce: format!("stratus sim fuzz {file} --seeds {seed}..{}", seed + 1),
    }))
}
