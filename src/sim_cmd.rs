//! `stratus sim ...`: scenario runs on the simulated datacenter.

use anyhow::{Context, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufWriter, IsTerminal};
use std::path::PathBuf;
use std::time::Instant;
use stratus_sim::report::RunReport;
use stratus_sim::runner::{RunOptions, Runner};

#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// Run a scenario and print a summary; exits non-zero if an invariant or expectation fails.
    Run {
        /// The scenario file (see scenarios/README.md).
        scenario: PathBuf,
        /// Replace the scenario's seed everywhere it is used (datacenter build and run):
        /// `--seed N` reproduces a file that says `seed = N`.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the scenario's epoch: the controller's wall clock at
        /// simulated time 0, UTC (e.g. 2026-01-01T00:00:00Z). The event log
        /// and the report count from 0 whatever it is.
        #[arg(long, value_parser = parse_epoch)]
        epoch: Option<u64>,
        /// Write the event log as JSON lines to this file.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Print one JSON object instead of the text summary.
        #[arg(long)]
        json: bool,
        /// Run twice and fail if the two event logs differ.
        #[arg(long)]
        check_determinism: bool,
        /// Run the full capacity/records audit after every event, whatever the size.
        #[arg(long)]
        paranoid: bool,
        /// Where controller inputs are journaled (write-ahead) and management
        /// restarts recover from: `sqlite::memory:`, `sqlite://FILE` (kept
        /// after the run) or `postgres://…`.
        #[arg(long, default_value = "sqlite::memory:")]
        db: String,
        /// Do not journal controller inputs (management restarts then keep the
        /// in-memory controller instead of recovering it; for A/B timing).
        #[arg(long, conflicts_with = "db")]
        no_journal: bool,
    },
    /// Maintenance on a scenario's simulated cloud: a rolling maintenance of
    /// `--cluster` (one host at a time, with optional hooks) or one `--host`;
    /// prints the evacuation plans and every step.
    Maintain {
        scenario: PathBuf,
        #[arg(long, conflicts_with = "host", required_unless_present = "host")]
        cluster: Option<String>,
        #[arg(long)]
        host: Option<String>,
        /// When to start, in simulated time (e.g. 5m).
        #[arg(long, default_value = "1m")]
        at: String,
        #[arg(long)]
        pre_hook: Option<String>,
        #[arg(long)]
        post_hook: Option<String>,
    },
    /// Random fault schedules per seed over the scenario's whole length
    /// (crashes, hangs, freezes, partial and asymmetric partitions, agent-only
    /// hangs, stopped leases, clock skew, lost replies, storage outages,
    /// migration failures, maintenance, management restarts); any invariant
    /// violation or leak prints the seed and a one-line reproducer, and exits
    /// non-zero. Missed expectations are counted (fatal with
    /// `--strict-expectations`).
    Fuzz {
        scenario: PathBuf,
        /// Seed range, `A..B` (B excluded).
        #[arg(long, value_parser = parse_range)]
        seeds: (u64, u64),
        /// Worker threads (default: available cores).
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        json: bool,
        /// Journal each seed's inputs in an in-memory SQLite Store (the
        /// default) or, with `memory`, in process memory (same codec and
        /// recovery, faster for long sweeps).
        #[arg(long, default_value = "store", value_parser = ["store", "memory"])]
        journal: String,
        /// Fail when a seed misses one of the scenario's expectations.
        #[arg(long)]
        strict_expectations: bool,
    },
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("'{s}' is not a range like 0..1000"))?;
    let a: u64 = a.trim().parse().map_err(|_| format!("'{a}' is not a seed"))?;
    let b: u64 = b.trim().parse().map_err(|_| format!("'{b}' is not a seed"))?;
    if b <= a {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok((a, b))
}

pub fn run(cmd: SimCommand) -> anyhow::Result<()> {
    match cmd {
        SimCommand::Fuzz {
            scenario,
            seeds,
            jobs,
            json,
            journal,
            strict_expectations,
        } => crate::fuzz_cmd::run(&scenario, seeds, jobs, json, journal == "memory", strict_expectations),
        SimCommand::Maintain {
            scenario,
            cluster,
            host,
            at,
            pre_hook,
            post_hook,
        } => crate::fuzz_cmd::maintain(&scenario, cluster, host, &at, pre_hook.as_deref(), post_hook.as_deref()),
        SimCommand::Run {
            scenario,
            seed,
            epoch,
            events,
            json,
            check_determinism,
            paranoid,
            db,
            no_journal,
        } => {
            let journal = (!no_journal).then_some(db.as_str());
            let report = run_once(&scenario, seed, epoch, events.as_ref(), paranoid, !json, journal)?;
            let mut ok = report.passed();
            let mut determinism = None;
            if check_determinism {
                // The second run journals in memory: a kept --db file already holds the first.
                let again = run_once(
                    &scenario,
                    seed,
                    epoch,
                    None,
                    paranoid,
                    false,
                    journal.map(|_| "sqlite::memory:"),
                )?;
                let same = again.event_log_sha256 == report.event_log_sha256 && again.events == report.events;
                determinism = Some(same);
                ok &= same;
            }
            if json {
                let mut v = serde_json::to_value(&report)?;
                if let Some(same) = determinism {
                    v["deterministic"] = serde_json::Value::Bool(same);
                }
                println!("{}", serde_json::to_string(&v)?);
            } else {
                print!("{}", report.to_text());
                if let Some(same) = determinism {
                    println!(
                        "determinism: {}",
                        if same {
                            "two runs, identical event logs"
                        } else {
                            "EVENT LOGS DIFFER"
                        }
                    );
                }
            }
            if !ok {
                bail!("scenario {} failed", scenario.display());
            }
            Ok(())
        }
    }
}

fn parse_epoch(text: &str) -> Result<u64, String> {
    stratus_sim::scenario::Epoch::parse(text).map(|e| e.as_ms())
}

fn run_once(
    path: &std::path::Path,
    seed: Option<u64>,
    epoch_ms: Option<u64>,
    events: Option<&PathBuf>,
    paranoid: bool,
    show_progress: bool,
    journal: Option<&str>,
) -> anyhow::Result<RunReport> {
    // `--seed` replaces the file's seed everywhere it is used (the datacenter's
    // build too), so `--seed N` reproduces a file that says `seed = N`.
    let file_seed = stratus_sim::scenario::load(path)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .scenario
        .seed;
    let (scenario, built) =
        stratus_sim::scenario::load_and_build_seeded(path, seed).map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = scenario.scenario.name.clone();
    let overridden = seed.is_some();
    let seed = seed.unwrap_or(file_seed);
    let opts = RunOptions {
        seed: Some(seed),
        epoch_ms,
        audit_every_event: paranoid,
        keep_log: false,
    };
    let start = Instant::now();
    let mut runner = Runner::new(scenario, built.cloud, &opts);
    if let Some(url) = journal {
        let store = stratus_runtime::StoreJournal::open(url).map_err(|e| anyhow::anyhow!("--db: {e}"))?;
        if store.last_seq().map_err(|e| anyhow::anyhow!("--db: {e}"))? > 0 {
            anyhow::bail!("--db {url}: the store already holds a journal; a run starts from an empty one");
        }
        runner
            .engine
            .attach_journal(Box::new(store))
            .map_err(|e| anyhow::anyhow!("journal: {e}"))?;
    }
    if let Some(p) = events {
        let f = std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?;
        runner.engine.log_file = Some(Box::new(BufWriter::new(f)));
    }
    let bar = if show_progress && std::io::stderr().is_terminal() {
        let b = ProgressBar::new(runner.end.max(1));
        b.set_style(
            ProgressStyle::with_template("{spinner} simulated {msg} [{bar:40}] {percent}%").expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let t0 = Instant::now();
    let mut progress = |now: u64, end: u64| {
        // Only show the bar for runs that take over a second.
        if t0.elapsed().as_secs_f64() > 1.0 || now >= end {
            bar.set_position(now);
            bar.set_message(format!("{:.0}s", now as f64 / 1000.0));
        }
    };
    runner.run(&mut progress);
    bar.finish_and_clear();
    if let Some(mut f) = runner.engine.log_file.take() {
        f.flush()?;
    }
    let mut report = RunReport::build(&runner, &name, seed, start.elapsed().as_secs_f64());
    report.file_seed = file_seed;
    report.seed_source = if overridden { "--seed" } else { "scenario file" }.to_string();
    Ok(report)
}

use std::io::Write;
