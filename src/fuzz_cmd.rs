//! `stratus sim fuzz` (many seeds of random faults, in parallel) and
//! `stratus sim maintain` (maintenance on a scenario's simulated cloud).

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use stratus_sim::fuzz::{FuzzFailure, run_seed};

pub fn run(
    path: &Path,
    (from, to): (u64, u64),
    jobs: Option<usize>,
    json: bool,
    memory_journal: bool,
    strict_expectations: bool,
) -> anyhow::Result<()> {
    let store = || -> Result<Box<dyn stratus_sim::journal::InputJournal>, String> {
        Ok(Box::new(stratus_runtime::StoreJournal::open("sqlite::memory:")?))
    };
    let journal: stratus_sim::fuzz::JournalFactory<'_> = if memory_journal {
        &stratus_sim::fuzz::memory_journal
    } else {
        &store
    };
    let scenario = stratus_sim::scenario::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = path.display().to_string();
    let workers = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let next = AtomicU64::new(from);
    let failures: Mutex<Vec<FuzzFailure>> = Mutex::new(Vec::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // Seeds whose run missed one of the scenario's expectations, with the first miss.
    let missed: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let bar = if !json && std::io::stderr().is_terminal() {
        let b = ProgressBar::new(to - from);
        b.set_style(
            ProgressStyle::with_template("{spinner} fuzz [{bar:40}] {pos}/{len} seeds, {msg}").expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= to {
                        break;
                    }
                    match run_seed(&scenario, seed, &file, journal) {
                        Ok(o) => {
                            if let Some(m) = o.expectations_missed.into_iter().next() {
                                missed.lock().expect("lock").push((seed, m));
                            }
                            if let Some(f) = o.failure {
                                failures.lock().expect("lock").push(f);
                            }
                        }
                        Err(e) => errors.lock().expect("lock").push(format!("seed {seed}: {e}")),
                    }
                    bar.inc(1);
                    let n = failures.lock().expect("lock").len();
                    bar.set_message(format!("{n} failing"));
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut failures = failures.into_inner().expect("lock");
    failures.sort_by_key(|f| f.seed);
    let errors = errors.into_inner().expect("lock");
    let mut missed = missed.into_inner().expect("lock");
    missed.sort();
    let wall = start.elapsed().as_secs_f64();
    if json {
        let v = serde_json::json!({
            "scenario": file,
            "seeds_run": to - from,
            "violations": failures,
            "expectations_missed": missed.iter().map(|(s, m)| serde_json::json!({"seed": s, "first": m})).collect::<Vec<_>>(),
            "errors": errors,
            "wall_seconds": wall,
        });
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!(
            "{} seeds of {file} in {wall:.1} s ({workers} workers): {} with violations or leaks, {} missed an expectation",
            to - from,
            failures.len(),
            missed.len()
        );
        for (seed, m) in missed.iter().take(5) {
            println!("seed {seed}: expectation missed under the random faults: {m}");
        }
        for f in &failures {
            println!(
                "seed {}: {}",
                f.seed,
                f.violations.first().map(String::as_str).unwrap_or("")
            );
            println!("  reproduce: {}", f.reproduce);
        }
        for e in errors.iter().take(5) {
            println!("error: {e}");
        }
        if errors.len() > 5 {
            println!("... and {} more errors", errors.len() - 5);
        }
    }
    if !failures.is_empty() || !errors.is_empty() {
        bail!(
            "{} seeds violated an invariant or leaked",
            failures.len() + errors.len()
        );
    }
    if strict_expectations && !missed.is_empty() {
        bail!("{} seeds missed an expectation", missed.len());
    }
    Ok(())
}

/// Runs the scenario with a maintenance action added and prints what happened.
pub fn maintain(
    path: &Path,
    cluster: Option<String>,
    host: Option<String>,
    at: &str,
    pre_hook: Option<&str>,
    post_hook: Option<&str>,
) -> anyhow::Result<()> {
    use stratus_sim::scenario::{Action, Duration};
    let mut s = stratus_sim::scenario::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let d = |t: &str| Duration::parse(t).map_err(|e| anyhow::anyhow!("{t}: {e}"));
    let at = d(at)?;
    let action = match (cluster, host) {
        (Some(cluster), _) => Action::RollingMaintenance {
            at,
            cluster,
            pre_hook: pre_hook.map(d).transpose()?,
            post_hook: post_hook.map(d).transpose()?,
        },
        (None, Some(host)) => Action::PrepareMaintenance { at, host },
        (None, None) => bail!("give --cluster or --host"),
    };
    s.actions.push(action);
    // Re-validate with the action (names, times), as a scenario file would be.
    let file = path.display().to_string();
    let text = toml::to_string(&s).map_err(|e| anyhow::anyhow!("{e}"))?;
    let s = stratus_sim::scenario::parse(&text, &file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let built = stratus_sim::scenario::build(&s).map_err(|e| anyhow::anyhow!("{e}"))?;
    let opts = stratus_sim::runner::RunOptions {
        keep_log: true,
        ..Default::default()
    };
    let mut r = stratus_sim::runner::Runner::new(s, built.cloud, &opts);
    r.run(&mut |_, _| {});
    for line in r.engine.keep_log.as_ref().expect("kept") {
        let e: serde_json::Value = serde_json::from_str(line)?;
        let kind = e["kind"].as_str().unwrap_or("");
        if kind.starts_with("maintenance") || kind == "host.resourcestate" || kind == "action.refused" {
            println!(
                "{:>9.1} s  {:<22} {:<10} {}",
                e["t"].as_f64().unwrap_or(0.0) / 1000.0,
                kind,
                e["subject"].as_str().unwrap_or(""),
                e["detail"].as_str().unwrap_or("")
            );
        }
    }
    for h in &r.engine.ctl.cloud().inv.hosts {
        println!("host {:<10} {:<13} {}", h.name, h.status.to_string(), h.resource_state);
    }
    if !r.engine.violations.is_empty() {
        bail!("invariants violated: {:?}", r.engine.violations);
    }
    Ok(())
}
