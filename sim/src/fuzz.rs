//! Fuzzing: random fault schedules per seed on top of a scenario; any invariant
//! violation is reported with the seed and a one-line reproducer.

use crate::engine::AuditEvery;
use crate::runner::{RunOptions, Runner};
use crate::scenario::{Action, Duration, Fault, Scenario, ScheduledFault};
use serde::Serialize;
use stratus_core::rng::DetRng;

#[derive(Clone, Debug, Serialize)]
pub struct FuzzFailure {
    pub seed: u64,
    /// Invariant violations, then leaks ("leak: ..."): each fails the seed.
    pub violations: Vec<String>,
    pub faults: Vec<String>,
    pub reproduce: String,
}

/// What one seed found. Expectations are the scenario's own claims, made for
/// its own faults: under extra random faults a miss is reported, and fails
/// the sweep only when asked (`--strict-expectations`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SeedOutcome {
    pub failure: Option<FuzzFailure>,
    pub expectations_missed: Vec<String>,
}

/// The host faults the fuzzer draws from: every way a host fails in the
/// world model, the dangerous ones included (hangs neighbours cannot see
/// through, isolation with live storage, agent-only hangs, stopped leases,
/// asymmetric links).
fn host_fault(kind: usize, host: String, duration: Duration) -> Fault {
    match kind {
        0 => Fault::HostHang { host, duration },
        1 => Fault::HostFreeze { host, duration },
        2 => Fault::Partition { host, duration },
        3 => Fault::Isolation { host, duration },
        4 => Fault::AgentHang { host, duration },
        5 => Fault::LeaseStop { host, duration },
        _ => Fault::AsymmetricPartition { host, duration },
    }
}

/// Adds a random fault schedule drawn from `seed` to the scenario, over its
/// whole length, and makes `seed` its seed (the datacenter's too).
pub fn with_random_faults(s: &Scenario, seed: u64, hosts: &[String], pools: &[String]) -> Scenario {
    with_random_faults_within(s, seed, hosts, pools, s.scenario.duration.ms)
}

/// [`with_random_faults`] with every added fault and action in the first
/// `window_ms` of the run.
pub fn with_random_faults_within(
    s: &Scenario,
    seed: u64,
    hosts: &[String],
    pools: &[String],
    window_ms: u64,
) -> Scenario {
    let clusters: Vec<Vec<String>> = {
        let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (h, _, _, c) in s.host_names() {
            if hosts.contains(&h) {
                by.entry(c.to_string()).or_default().push(h);
            }
        }
        by.into_values().collect()
    };
    let mut s = s.clone();
    s.scenario.seed = seed;
    let end = s.scenario.duration.ms.min(window_ms);
    let mut rng = DetRng::child(seed, "fuzz");
    let n = 2 + rng.below(7);
    let dur = |rng: &mut DetRng, lo: u64, hi: u64| Duration {
        ms: lo + rng.below((hi - lo) as usize) as u64,
    };
    let at_ms = |ms: u64| Duration {
        ms: ms.min(end.saturating_sub(1)),
    };
    let add = |s: &mut Scenario, at: Duration, fault: Fault| {
        s.faults.scheduled.push(ScheduledFault {
            at,
            select: Default::default(),
            fault,
        })
    };
    for _ in 0..n {
        let at = Duration {
            ms: rng.below(end.max(1) as usize) as u64,
        };
        let pick_host = |rng: &mut DetRng| hosts[rng.below(hosts.len().max(1)).min(hosts.len() - 1)].clone();
        if hosts.is_empty() {
            break;
        }
        match rng.below(16) {
            0 => {
                let back = (rng.below(2) == 0).then(|| dur(&mut rng, 10_000, 1_200_000));
                let host = pick_host(&mut rng);
                add(&mut s, at, Fault::HostCrash { host, duration: back });
            }
            1..=4 => {
                let kind = rng.below(7);
                let d = dur(&mut rng, 1_000, 1_200_000);
                let host = pick_host(&mut rng);
                add(&mut s, at, host_fault(kind, host, d));
            }
            5 => {
                // The double fault the old model never built: a neighbour
                // crashes for good, then a host of the same cluster hangs or
                // freezes, so nobody in the cluster can vouch for it.
                let c = &clusters[rng.below(clusters.len().max(1)).min(clusters.len().saturating_sub(1))];
                if c.len() >= 2 {
                    let i = rng.below(c.len());
                    let j = (i + 1 + rng.below(c.len() - 1)) % c.len();
                    add(
                        &mut s,
                        at,
                        Fault::HostCrash {
                            host: c[i].clone(),
                            duration: None,
                        },
                    );
                    let later = at_ms(at.ms + 1_000 + rng.below(120_000) as u64);
                    let d = dur(&mut rng, 60_000, 1_200_000);
                    let kind = rng.below(2);
                    add(&mut s, later, host_fault(kind, c[j].clone(), d));
                }
            }
            6 if !pools.is_empty() => {
                let pool = pools[rng.below(pools.len())].clone();
                let d = dur(&mut rng, 1_000, 600_000);
                add(&mut s, at, Fault::StorageOutage { pool, duration: d });
            }
            7 => {
                let count = 1 + rng.below(3) as u32;
                add(&mut s, at, Fault::MigrationFailure { count });
            }
            8 => {
                let rate = 0.05 + rng.unit() * 0.25;
                let d = dur(&mut rng, 10_000, 600_000);
                add(&mut s, at, Fault::OpFailureRate { rate, duration: d });
            }
            9 => {
                let rate = 0.05 + rng.unit() * 0.25;
                let d = dur(&mut rng, 10_000, 600_000);
                add(&mut s, at, Fault::LostReplies { rate, duration: d });
            }
            10 => {
                let host = pick_host(&mut rng);
                let skew_ms = rng.below(600_001) as i64 - 300_000;
                add(&mut s, at, Fault::ClockSkew { host, skew_ms });
            }
            11 => {
                let host = pick_host(&mut rng);
                add(&mut s, at, Fault::VmCrash { host });
            }
            12 => {
                // Maintenance under faults: drain a host (its migrations may
                // meet any fault above), and sometimes cancel midway.
                let host = pick_host(&mut rng);
                if rng.below(3) == 0 {
                    let cancel = at_ms(at.ms + rng.below(300_000) as u64);
                    s.actions.push(Action::CancelMaintenance {
                        at: cancel,
                        host: host.clone(),
                    });
                }
                s.actions.push(Action::PrepareMaintenance { at, host });
            }
            _ => {
                let downtime = dur(&mut rng, 1_000, 180_000);
                add(&mut s, at, Fault::ManagementRestart { downtime });
            }
        }
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

pub fn run_seed(base: &Scenario, seed: u64, file: &str, journal: JournalFactory<'_>) -> Result<SeedOutcome, String> {
    run_seed_within(base, seed, file, journal, None)
}

/// [`run_seed`] over the first `limit_ms` of the scenario only (for tests
/// that sweep many seeds in a debug build); `None` runs its whole length.
pub fn run_seed_within(
    base: &Scenario,
    seed: u64,
    file: &str,
    journal: JournalFactory<'_>,
    limit_ms: Option<u64>,
) -> Result<SeedOutcome, String> {
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
    let window = limit_ms.unwrap_or(u64::MAX);
    let s = with_random_faults_within(base, seed, &hosts, &pools, window);
    let mut faults: Vec<String> = s
        .faults
        .scheduled
        .iter()
        .map(|f| format!("{} {}", f.at, crate::scenario::describe(&f.fault)))
        .collect();
    faults.extend(s.actions.iter().skip(base.actions.len()).map(crate::scenario::describe));
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
    r.end = r.end.min(window);
    r.run(&mut |_, _| {});
    let mut violations = r.engine.violations.clone();
    violations.extend(r.engine.leak_report().leaks.into_iter().map(|l| format!("leak: {l}")));
    let expectations_missed = r
        .expectations()
        .into_iter()
        .filter(|x| !x.ok)
        .map(|x| format!("{}: {}", x.expectation, x.detail))
        .collect();
    let limit = limit_ms.map_or(String::new(), |l| format!(" (first {} s)", l / 1000));
    let failure = (!violations.is_empty()).then(|| FuzzFailure {
        seed,
        violations,
        faults,
        reproduce: format!("stratus sim fuzz {file} --seeds {seed}..{}{limit}", seed + 1),
    });
    Ok(SeedOutcome {
        failure,
        expectations_missed,
    })
}
